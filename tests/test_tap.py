"""The speech tap (ivr.speech.tap): a growing WAV in /dev/shm → VAD → recogniser in a worker → events.

The recogniser here is a stand-in with the real one's interface: it "hears" the dominant
frequency of the utterance (150 Hz → "1", 400 Hz → "2"), so the tests prove that the right audio
reached it. tests/test_speech.py runs the same path with the real vosk recogniser.
"""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from ivr.events import SpeechRecognized
from ivr.speech.asr import Recognition
from ivr.speech.tap import WAV_HEADER_BYTES, SpeechTap
from speech_fixtures import GrowingWav, dominant_hz, shm_dir, silence, to_pcm, tone  # noqa: F401

RATE = 16000
FAST = 0.002                    # most tests write their 20 ms frames faster than real time
pytestmark = pytest.mark.timeout(20)


class ToneEars:
    """Recognises a tone's pitch as a key; remembers what it was given and on which thread."""

    KEYS = {150: "1", 400: "2"}

    def __init__(self, release: threading.Event | None = None, fail_first: bool = False) -> None:
        self.heard: list[bytes] = []
        self.threads: set[int] = set()
        self.release = release
        self.fail_first = fail_first

    def recognize(self, pcm: bytes) -> Recognition:
        self.threads.add(threading.get_ident())
        self.heard.append(pcm)
        if self.release is not None:
            self.release.wait(10)
        if self.fail_first and len(self.heard) == 1:
            raise RuntimeError("decoder exploded")
        hz = round(dominant_hz(pcm, RATE))
        key = self.KEYS.get(hz)
        return Recognition(f"tone {hz}", key, 1.0 if key else 0.2)


def word(hz: float, ms: int = 400) -> np.ndarray:
    return np.concatenate([tone(ms, hz, RATE), silence(700, RATE)])


async def run_tap(path, pcm: bytes, ears, *, every_s: float = FAST, until: int = 1,
                  before_write=None, header: bool = True) -> tuple[list[SpeechRecognized], SpeechTap]:
    """Grow `path` with `pcm` while a tap listens with `ears`; stop after `until` events or when
    the writer is done and the tap has caught up."""
    events: list[SpeechRecognized] = []
    tap = SpeechTap(path, events.append, sample_rate=RATE)
    tap.listen(ears)
    gate = threading.Event()
    writer = GrowingWav(path, pcm, RATE, every_s=every_s, gate=gate, header=header)
    writer.start()
    task = asyncio.create_task(tap.run())
    if before_write is not None:
        await before_write(tap)
    gate.set()
    while len(events) < until and not (writer.done.is_set() and tap.bytes_read >= len(pcm)):
        await asyncio.sleep(0.01)
    tap.stop()
    await asyncio.wait_for(task, 5)
    return events, tap


def test_an_utterance_in_a_recording_grown_every_20ms_becomes_a_speech_event(shm_dir):
    """Real-time cadence, as the patched recorder writes it."""
    ears = ToneEars()
    pcm = to_pcm(silence(300, RATE), word(150))
    events, tap = asyncio.run(run_tap(shm_dir / "call.wav", pcm, ears, every_s=0.02))
    assert events == [SpeechRecognized("tone 150", "1")]
    assert threading.main_thread().ident not in ears.threads, "recognition ran on a worker"


def test_the_header_is_skipped_and_only_audio_reaches_the_vad(shm_dir):
    ears = ToneEars()
    pcm = to_pcm(silence(500, RATE), word(150))
    events, tap = asyncio.run(run_tap(shm_dir / "call.wav", pcm, ears, until=2))   # read it all
    assert tap.bytes_read == len(pcm) == (shm_dir / "call.wav").stat().st_size - WAV_HEADER_BYTES
    [heard] = ears.heard
    pre_roll = np.frombuffer(heard, "<i2")[: 300 * RATE // 1000]
    assert not pre_roll.any(), "the pre-roll is silence, not 'RIFF....WAVEfmt '"


def test_two_answers_come_back_in_the_order_they_were_said(shm_dir):
    ears = ToneEars()
    pcm = to_pcm(silence(200, RATE), word(150), word(400), word(150))
    events, _ = asyncio.run(run_tap(shm_dir / "call.wav", pcm, ears, until=3))
    assert [e.keyword for e in events] == ["1", "2", "1"]


def test_speech_outside_the_grammar_is_reported_without_a_keyword(shm_dir):
    events, _ = asyncio.run(run_tap(shm_dir / "call.wav", to_pcm(silence(200, RATE), word(1000)), ToneEars()))
    assert events == [SpeechRecognized("tone 1000", None)]


def test_when_no_menu_listens_nothing_is_recognised(shm_dir):
    ears = ToneEars()

    async def deaf(tap):
        tap.listen(None)

    pcm = to_pcm(silence(200, RATE), word(150))
    events, tap = asyncio.run(run_tap(shm_dir / "call.wav", pcm, ears, before_write=deaf))
    assert events == [] and ears.heard == []
    assert tap.bytes_read == len(pcm), "the file was still followed"


def test_an_answer_that_arrives_after_the_menu_changed_is_dropped(shm_dir):
    release = threading.Event()
    ears = ToneEars(release=release)

    async def main():
        events: list[SpeechRecognized] = []
        path = shm_dir / "call.wav"
        tap = SpeechTap(path, events.append, sample_rate=RATE)
        tap.listen(ears)
        GrowingWav(path, to_pcm(silence(200, RATE), word(150)), RATE, every_s=FAST).start()
        task = asyncio.create_task(tap.run())
        while not ears.heard:
            await asyncio.sleep(0.01)
        tap.listen(ToneEars())          # the flow moved on to another question
        release.set()
        await asyncio.sleep(0.1)
        tap.stop()
        await asyncio.wait_for(task, 5)
        return events

    assert asyncio.run(main()) == []


def test_a_recording_that_appears_after_the_tap_started_is_picked_up(shm_dir):
    async def late(tap):
        await asyncio.sleep(0.15)
        assert tap.bytes_read == 0

    events, _ = asyncio.run(run_tap(shm_dir / "late.wav", to_pcm(silence(200, RATE), word(400)),
                                    ToneEars(), before_write=late))
    assert [e.keyword for e in events] == ["2"]


def test_a_failing_recognition_is_logged_and_the_next_utterance_still_heard(shm_dir, caplog):
    ears = ToneEars(fail_first=True)
    pcm = to_pcm(silence(200, RATE), word(150), word(400))
    events, _ = asyncio.run(run_tap(shm_dir / "call.wav", pcm, ears, until=1))
    assert [e.keyword for e in events] == ["2"]
    assert "speech recognition failed" in caplog.text


def test_stopping_mid_utterance_still_recognises_what_was_said(shm_dir):
    """The call ends while the caller is still talking (no hang-over silence in the file)."""
    ears = ToneEars()

    async def main():
        events: list[SpeechRecognized] = []
        path = shm_dir / "call.wav"
        pcm = to_pcm(silence(200, RATE), tone(500, 150, RATE))
        tap = SpeechTap(path, events.append, sample_rate=RATE)
        tap.listen(ears)
        writer = GrowingWav(path, pcm, RATE, every_s=FAST)
        writer.start()
        task = asyncio.create_task(tap.run())
        while tap.bytes_read < len(pcm):
            await asyncio.sleep(0.01)
        assert events == [] and tap.vad.speaking
        tap.stop()
        await asyncio.wait_for(task, 5)
        return events

    assert [e.keyword for e in asyncio.run(main())] == ["1"]


def test_a_replaced_recording_is_followed_from_its_own_header(shm_dir):
    ears = ToneEars()

    async def main():
        events: list[SpeechRecognized] = []
        path = shm_dir / "call.wav"
        tap = SpeechTap(path, events.append, sample_rate=RATE)
        tap.listen(ears)
        first = GrowingWav(path, to_pcm(silence(200, RATE), word(150)), RATE, every_s=FAST)
        first.start()
        task = asyncio.create_task(tap.run())
        while not events:
            await asyncio.sleep(0.01)
        tmp = shm_dir / "next.wav"
        second = GrowingWav(tmp, b"", RATE)
        second.run()                                    # header only, written synchronously
        tmp.replace(path)                               # a new recorder, a new file
        with open(path, "ab") as f:
            f.write(to_pcm(silence(200, RATE), word(400)))
        while len(events) < 2:
            await asyncio.sleep(0.01)
        tap.stop()
        await asyncio.wait_for(task, 5)
        return events

    assert [e.keyword for e in asyncio.run(main())] == ["1", "2"]


def test_a_vad_at_another_rate_than_the_recording_is_refused(shm_dir):
    from ivr.speech.vad import VadConfig
    with pytest.raises(ValueError):
        SpeechTap(shm_dir / "x.wav", print, sample_rate=8000, vad=VadConfig(sample_rate=16000))
