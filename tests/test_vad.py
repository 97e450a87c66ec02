"""The energy VAD (ivr.speech.vad) on synthetic signals: where utterances start and end, what they carry."""
from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.vad import EnergyVad, SpeechStarted, Utterance, VadConfig, frame_dbfs

RATE = 16000
CFG = VadConfig(sample_rate=RATE)
RNG_SEED = 7


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000)


def noise(ms: int, dbfs: float, seed: int = RNG_SEED) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0.0, 1.0, RATE * ms // 1000)
    return x / np.sqrt(np.mean(x * x)) * 10 ** (dbfs / 20)


def voice(ms: int, dbfs: float = -20.0) -> np.ndarray:
    """A vowel-like tone: 150 Hz fundamental with harmonics, at an RMS of `dbfs`."""
    t = np.arange(RATE * ms // 1000) / RATE
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    return x / np.sqrt(np.mean(x * x)) * 10 ** (dbfs / 20)


def pcm(*parts: np.ndarray) -> bytes:
    x = np.concatenate(parts)
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def run(data: bytes, cfg: VadConfig = CFG, chunk: int = 640) -> list:
    vad = EnergyVad(cfg)
    out = []
    for at in range(0, len(data), chunk):
        out += vad.push(data[at:at + chunk])
    return out + vad.flush()


def utterances(events: list) -> list[Utterance]:
    return [e for e in events if isinstance(e, Utterance)]


def test_frame_level_of_a_full_scale_square_is_zero_dbfs_and_of_silence_the_floor():
    assert frame_dbfs(pcm(np.full(320, 1.0))) == pytest.approx(0.0, abs=0.01)
    assert frame_dbfs(pcm(voice(20, -20.0))) == pytest.approx(-20.0, abs=0.3)
    assert frame_dbfs(bytes(640)) == -100.0


def test_a_word_between_silences_is_one_utterance_with_its_start_and_end():
    events = run(pcm(silence(1000), voice(600), silence(1000)))
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    start, utt = events
    assert start.at_ms == 1000
    assert utt.start_ms == 1000 and utt.end_ms == 1600 and not utt.cut


def test_the_utterance_carries_pre_roll_speech_and_hangover_audio():
    events = run(pcm(silence(1000), voice(600), silence(1000)))
    utt = utterances(events)[0]
    # 300 ms pre-roll + 600 ms voice + 500 ms hang-over of silence
    assert len(utt.pcm) == (300 + 600 + 500) * RATE // 1000 * 2
    x = np.frombuffer(utt.pcm, "<i2")
    ms = RATE // 1000
    assert not x[: 300 * ms].any(), "the pre-roll is the silence before the word"
    assert np.abs(x[300 * ms: 900 * ms]).max() > 3000, "the word itself is inside"
    assert not x[900 * ms:].any(), "the hang-over is the silence after it"


def test_pauses_shorter_than_the_hangover_stay_inside_one_utterance():
    syllables = [voice(200), silence(240), voice(200), silence(300), voice(200)]
    events = run(pcm(silence(500), *syllables, silence(800)))
    [utt] = utterances(events)
    assert (utt.start_ms, utt.end_ms) == (500, 500 + 200 + 240 + 200 + 300 + 200)


def test_a_pause_longer_than_the_hangover_separates_two_utterances():
    events = run(pcm(silence(500), voice(400), silence(700), voice(400), silence(800)))
    spans = [(u.start_ms, u.end_ms) for u in utterances(events)]
    assert spans == [(500, 900), (1600, 2000)]


def test_an_utterance_still_running_is_not_reported_until_the_hangover_has_passed():
    vad = EnergyVad(CFG)
    assert not utterances(vad.push(pcm(silence(500), voice(400), silence(400))))
    assert vad.speaking
    assert len(utterances(vad.push(pcm(silence(100))))) == 1
    assert not vad.speaking


def test_a_click_shorter_than_min_speech_is_dropped():
    events = run(pcm(silence(500), voice(100, -6.0), silence(1000)))
    assert SpeechStarted in {type(e) for e in events}   # it did look like the start of speech
    assert utterances(events) == []


def test_quiet_sound_below_the_absolute_threshold_is_never_speech():
    assert run(pcm(silence(300), voice(800, -55.0), silence(800))) == []


def test_steady_line_noise_is_learnt_and_speech_above_it_still_found():
    data = pcm(noise(1500, -35.0) + 0, voice(600, -12.0) + noise(600, -35.0, seed=8),
               noise(1000, -35.0, seed=9))
    events = run(data)
    spans = [(u.start_ms, u.end_ms) for u in utterances(events)]
    assert spans == [(1500, 2100)]


def test_noise_alone_gives_no_utterance_even_when_loud():
    assert utterances(run(pcm(noise(4000, -25.0)))) == []


def test_a_talker_who_never_pauses_is_cut_at_the_maximum():
    cfg = VadConfig(sample_rate=RATE, max_utterance_ms=2000)
    events = run(pcm(silence(200), voice(5000), silence(800)), cfg)
    utts = utterances(events)
    assert utts[0].cut and utts[0].end_ms - utts[0].start_ms == 2000
    assert not utts[-1].cut and utts[-1].end_ms == 5200
    assert sum(u.end_ms - u.start_ms for u in utts) == 5000


def test_chunking_does_not_change_the_result():
    data = pcm(silence(700), voice(300), silence(300), voice(500), silence(900))
    expected = [(u.start_ms, u.end_ms, u.pcm) for u in utterances(run(data, chunk=640))]
    for chunk in (2, 333, 1000, 7777):
        assert [(u.start_ms, u.end_ms, u.pcm) for u in utterances(run(data, chunk=chunk))] == expected


def test_flush_ends_an_utterance_cut_short_by_the_end_of_the_stream():
    vad = EnergyVad(CFG)
    assert not utterances(vad.push(pcm(silence(400), voice(500))))
    [utt] = vad.flush()
    assert (utt.start_ms, utt.end_ms) == (400, 900)


def test_reset_forgets_a_half_heard_utterance():
    vad = EnergyVad(CFG)
    vad.push(pcm(silence(400), voice(500)))
    vad.reset()
    assert vad.push(pcm(silence(800))) == [] and vad.flush() == []


def test_works_at_the_telephone_rate_too():
    cfg = VadConfig(sample_rate=8000)
    x = np.concatenate([silence(600), voice(400), silence(800)])[::2]   # 16 kHz → 8 kHz
    events = run(pcm(x), cfg, chunk=320)
    assert [(u.start_ms, u.end_ms) for u in utterances(events)] == [(600, 1000)]
    assert len(utterances(events)[0].pcm) == (300 + 400 + 500) * 8 * 2


@pytest.mark.parametrize("bad", [dict(sample_rate=11025, frame_ms=20), dict(hangover_ms=5),
                                 dict(frame_ms=0)])
def test_impossible_configs_are_refused(bad):
    with pytest.raises(ValueError):
        VadConfig(**bad)
