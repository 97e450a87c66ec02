"""ivr.speech.tts + ivr.speech.render through the real espeak-ng: every prompt becomes playable 8 kHz audio.

These tests speak with the real engine (pyttsx3 → libespeak-ng) into a temporary cache and judge
the result as signals: rate, format, duration, level, dominant frequency of tones.
"""
from __future__ import annotations

import datetime as dt
import shutil
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr import catalog

from ivr.speech import render

from ivr.speech import tts
from ivr.catalog import Text
from ivr.prompt_ids import PROMPT_PARAMS, PromptId

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
LANGS = ("de", "en")
RATE = 8000


def dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 1e-9))


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def sine_wav(path: Path, hz: float, seconds: float, rate: int, channels: int = 1) -> None:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(x, channels).tobytes())


def load_8k(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), path
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


@pytest.fixture(scope="module")
def speaker():
    return tts.Speaker()


@pytest.fixture(scope="module")
def cat():
    return catalog.load(PROMPTS, LANGS)


@pytest.fixture(scope="module")
def warm(speaker, cat, tmp_path_factory):
    """A cache filled once by render_all, with the progress calls it made."""
    cache = render.PromptCache(speaker, tmp_path_factory.mktemp("prompts"), RATE)
    calls: list[tuple[int, int, str]] = []
    report = render.render_all(cache, cat, LANGS, progress=lambda *a: calls.append(a))
    return cache, report, calls


SAMPLE = {"n": 3, "count": 5, "tries_left": 2, "minutes": 5, "start": dt.datetime(2024, 12, 3, 10, 30),
          "name": "Anna Schmidt", "inviter": "Bob Meyer", "title": "Budget", "keys": "*#",
          "number": 2, "seat": 7}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("prompt", [p for p in PromptId if p is not PromptId.BEEP], ids=lambda p: p.value)
def test_every_prompt_renders_to_speech_at_8khz(warm, cat, prompt, lang):
    cache, _, _ = warm
    params = {k: SAMPLE[k] for k in PROMPT_PARAMS.get(prompt, ())}
    resolved = catalog.resolve(cat, prompt, params, lang)
    x = load_8k(cache.wav_for(resolved))
    seconds = len(x) / RATE
    chars = sum(len(s.text) for s in resolved.segments if isinstance(s, Text))
    assert 0.25 < seconds < 20, seconds
    assert 3 < chars / seconds < 30, (chars, seconds)          # a speaking pace, not a glitch
    assert dbfs(x) > -30                                        # speech, not near-silence
    voiced = x[np.abs(x) > 0.01]
    assert -20 < dbfs(voiced) < -11                              # levelled near -16 dBFS
    assert np.max(np.abs(x)) < 0.95                              # and not clipped


def test_render_all_reports_progress_for_every_static_prompt(warm):
    _, report, calls = warm
    total = len(LANGS) * len(catalog.static_prompts())
    assert report.prompts == total
    assert [c[0] for c in calls] == list(range(1, total + 1))
    assert {c[1] for c in calls} == {total}
    assert calls[0][2] == "de/welcome" and calls[-1][2] == "en/beep"
    # every text of both languages needed the engine once; the beep is one shared tone
    assert report.synthesized == total - len(LANGS)


def test_the_second_render_is_a_cache_hit(warm, cat):
    cache, _, _ = warm
    files = sorted(cache.dir.glob("*.wav"))
    stamps = {f: f.stat().st_mtime_ns for f in files}
    again = render.render_all(cache, cat, LANGS)
    assert again.synthesized == 0
    assert sorted(cache.dir.glob("*.wav")) == files
    assert {f: f.stat().st_mtime_ns for f in files} == stamps


def test_render_all_also_renders_the_help_of_the_configured_keypad(tmp_path, speaker, cat):
    from ivr.conference import help_prompts
    from ivr.keypad import compile_keypad
    cache = render.PromptCache(speaker, tmp_path / "cache", RATE)
    extra = help_prompts(compile_keypad({"*6": "toggle_mute", "*1": "help"}))
    report = render.render_all(cache, cat, ["en"], extra=extra)
    assert report.prompts == len(catalog.static_prompts()) + 2
    before = cache.synthesized
    cache.wav_for(catalog.resolve(cat, PromptId.KEY_TOGGLE_MUTE, {"keys": "*6"}, "en"))
    assert cache.synthesized == before              # already there when a caller presses *1


def test_the_cache_key_holds_voice_rate_and_clock_rate(warm, speaker, tmp_path):
    cache, _, _ = warm
    de = cache.text_wav("Konferenz", "de")
    en = cache.text_wav("Konferenz", "en")
    assert de != en
    slow = render.PromptCache(tts.Speaker(rate=120), cache.dir, RATE)
    assert slow.text_wav("Konferenz", "de") != de
    assert len(load_8k(slow.text_wav("Konferenz", "de"))) > len(load_8k(de))   # slower is longer
    wide = render.PromptCache(speaker, cache.dir, 16000)
    wav = wide.text_wav("Konferenz", "de")
    assert wav != de and wave.open(str(wav)).getframerate() == 16000


def test_the_beep_is_a_1khz_tone(warm, cat):
    cache, _, _ = warm
    x = load_8k(cache.wav_for(catalog.resolve(cat, PromptId.BEEP, (), "en")))
    assert abs(dominant_hz(x, RATE) - 1000) < 10
    assert 0.2 < len(x) / RATE < 0.3
    assert -18 < dbfs(x) < -15


def test_a_recorded_override_wins(tmp_path, speaker):
    TONE_HZ = 1900   # far from a voice's strongest harmonic (the German welcome's is ~222 or ~445 Hz)
    for lang in LANGS:
        shutil.copy(PROMPTS / f"{lang}.toml", tmp_path / f"{lang}.toml")
    (tmp_path / "en").mkdir()
    sine_wav(tmp_path / "en" / "welcome.wav", TONE_HZ, 1.0, 16000, channels=2)
    cat = catalog.load(tmp_path, LANGS)
    cache = render.PromptCache(speaker, tmp_path / "cache", RATE)
    x = load_8k(cache.wav_for(catalog.resolve(cat, PromptId.WELCOME, (), "en")))
    assert abs(dominant_hz(x, RATE) - TONE_HZ) < 5
    assert 0.95 < len(x) / RATE < 1.05
    assert cache.synthesized == 0                   # the recording needed no speech engine
    speech = load_8k(cache.wav_for(catalog.resolve(cat, PromptId.WELCOME, (), "de")))
    assert abs(dominant_hz(speech, RATE) - TONE_HZ) > 50 and cache.synthesized == 1


def test_a_recorded_name_is_joined_with_the_speech(warm, cat, tmp_path):
    cache, _, _ = warm
    name = tmp_path / "name.wav"
    sine_wav(name, 600, 0.5, 22050)
    x = load_8k(cache.wav_for(catalog.resolve(cat, PromptId.JOIN_ANNOUNCE, {"name": name}, "de")))
    head = x[: int(0.45 * RATE)]
    assert abs(dominant_hz(head, RATE) - 600) < 5
    gap = x[int(0.52 * RATE): int(0.62 * RATE)]            # the ~150 ms pause after the name
    assert dbfs(gap) < -60
    rest = x[int(0.7 * RATE):]
    assert len(rest) / RATE > 0.8 and dbfs(rest) > -30    # "ist der Konferenz beigetreten."


def test_renders_from_several_threads_are_all_whole(speaker, tmp_path):
    cache = render.PromptCache(speaker, tmp_path, RATE)
    texts = [f"Sie sind der {w} Teilnehmer." for w in ("erste", "zweite", "dritte", "vierte")]
    out: dict[str, Path] = {}

    def work(text):
        out[text] = cache.text_wav(text, "de")

    threads = [threading.Thread(target=work, args=(t,)) for t in texts * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(out.values())) == 4
    for path in out.values():
        assert len(load_8k(path)) / RATE > 1.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp files left


def test_each_render_writes_its_own_file_and_leaves_earlier_ones_alone(speaker, tmp_path):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    assert speaker.render("eins", "de", a) == 22050
    first = a.read_bytes()
    speaker.render("Dies ist ein deutlich längerer Satz.", "de", b)
    assert a.read_bytes() == first                     # the driver's re-write never hits a.wav
    assert b.stat().st_size > 2 * len(first)


def test_voices_by_language(speaker):
    assert speaker.voice_for("de") == "gmw/de"
    assert speaker.voice_for("en") == "gmw/en-us"
    assert speaker.voice_for("en-GB") == "gmw/en"        # espeak's "en" is British English
    assert speaker.voice_for("fr") == "roa/fr"
    assert speaker.voice_for("de-AT") == "gmw/de"        # no Austrian voice: the German one
    with pytest.raises(tts.TtsUnavailable, match="no espeak-ng voice for language 'xx'"):
        speaker.voice_for("xx")


def test_empty_text_is_refused(speaker, tmp_path):
    with pytest.raises(ValueError):
        speaker.render("  ", "de", tmp_path / "x.wav")


def test_a_missing_engine_names_the_debian_package(monkeypatch):
    def broken_init(*_a, **_k):
        raise OSError("libespeak-ng.so.1: cannot open shared object file")
    monkeypatch.setattr(tts.pyttsx3, "init", broken_init)
    with pytest.raises(tts.TtsUnavailable, match="apt-get install espeak-ng"):
        tts.Speaker()


def test_the_rate_applies_to_every_render_even_when_it_changes(tmp_path):
    fast, slow = tts.Speaker(rate=300), tts.Speaker(rate=120)
    frames = []
    for i, speaker in enumerate([fast, slow] * 3):
        speaker.render("Konferenz", "de", tmp_path / f"{i}.wav")
        frames.append(wave.open(str(tmp_path / f"{i}.wav")).getnframes())
    assert max(frames[0::2]) < 0.6 * min(frames[1::2]), frames


def test_control_characters_in_a_text_cannot_change_the_rate(speaker, tmp_path):
    speaker.render("Konferenz", "de", tmp_path / "plain.wav")
    speaker.render("\x01450S Konferenz", "de", tmp_path / "smuggled.wav")
    plain = wave.open(str(tmp_path / "plain.wav")).getnframes()
    smuggled = wave.open(str(tmp_path / "smuggled.wav")).getnframes()
    assert smuggled > 0.8 * plain


def test_progress_line_draws_a_bar():
    assert render.progress_line(0, 70, "de/welcome", width=10) == "[..........]  0/70 de/welcome"
    assert render.progress_line(35, 70, "x", width=10) == "[#####.....] 35/70 x"
    assert render.progress_line(70, 70, "en/beep", width=10).startswith("[##########] 70/70")
