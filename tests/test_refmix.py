"""The reference mixer as the audio oracle: routes from the core, tones in, spectra out.

Every source plays its own sine; a frame of 1,600 samples at 8 kHz (200 ms) holds whole periods
of any multiple of 5 Hz, so each tone sits in exactly one FFT bin and "absent" means ~0.
"""
from __future__ import annotations

import numpy as np
import pytest

from bot.conference.mixer import Direction, Mixer, Role, gain
from bot.conference.refmix import dominant_frequency, mix, rms, tone, tone_amplitude

N = 1600
AMP = 4000
PRESENT = 0.95 * AMP     # a tone routed at level 1.0
ABSENT = 2.0             # below int16 rounding noise: the tone is not there


def tones_for(ids) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    freqs = {i: 300 + 100 * k for k, i in enumerate(ids)}
    return freqs, {i: tone(f, N, amplitude=AMP) for i, f in freqs.items()}


def heard(frame: np.ndarray, freqs: dict[str, int]) -> set[str]:
    """Whose tones are in a frame (each either clearly present or clearly absent)."""
    out = set()
    for who, f in freqs.items():
        a = tone_amplitude(frame, f)
        assert a > PRESENT * 0.3 or a < ABSENT, f"{who}'s tone is ambiguous at {a:.1f}"
        if a >= ABSENT:
            out.add(who)
    return out


def hear_all(m: Mixer, ids) -> dict[str, set[str]]:
    freqs, frames = tones_for(ids)
    members = [i for i in ids if not i.startswith("src")]
    out = mix(m.routes(), frames, sinks=members)
    return {i: heard(out[i], freqs) for i in members}


def test_each_member_hears_exactly_the_others_in_its_room():
    m = Mixer()
    for i in ("a", "b", "c", "d"):
        m.join(i, "main")
    for i in ("x", "y"):
        m.join(i, "other")
    got = hear_all(m, ["a", "b", "c", "d", "x", "y"])
    assert got == {"a": {"b", "c", "d"}, "b": {"a", "c", "d"}, "c": {"a", "b", "d"},
                   "d": {"a", "b", "c"}, "x": {"y"}, "y": {"x"}}


def test_unity_routes_add_sample_exactly():
    m = Mixer()
    for i in ("a", "b", "c"):
        m.join(i, "main")
    freqs, frames = tones_for(["a", "b", "c"])
    out = mix(m.routes(), frames)
    assert np.array_equal(out["a"], frames["b"] + frames["c"])
    assert tone_amplitude(out["a"], freqs["b"]) == pytest.approx(AMP, rel=1e-3)


def test_muted_member_is_silent_to_others_and_still_hears():
    m = Mixer()
    for i in ("a", "b", "c"):
        m.join(i, "main")
    m.set_muted("a", True)
    assert hear_all(m, ["a", "b", "c"]) == {"a": {"b", "c"}, "b": {"c"}, "c": {"b"}}


def test_alone_in_a_room_hears_digital_silence():
    m = Mixer()
    m.join("a", "main")
    _, frames = tones_for(["a"])
    out = mix(m.routes(), frames, sinks=["a"])
    assert rms(out["a"]) == 0.0


def test_listener_and_whisper_coaching():
    m = Mixer()
    for i in ("mod", "c1", "c2"):
        m.join(i, "main")
    m.add_listener("op", "main", Role.OPERATOR)
    m.whisper("op", "mod")
    got = hear_all(m, ["mod", "c1", "c2", "op"])
    assert got == {"mod": {"c1", "c2", "op"}, "c1": {"mod", "c2"}, "c2": {"mod", "c1"},
                   "op": {"mod", "c1", "c2"}}


def test_separee_is_isolated_from_its_parent_room():
    m = Mixer()
    for i in ("mod", "c1", "c2", "c3"):
        m.join(i, "main")
    m.move("c1", "sep")
    m.move("c2", "sep")
    got = hear_all(m, ["mod", "c1", "c2", "c3"])
    assert got == {"mod": {"c3"}, "c3": {"mod"}, "c1": {"c2"}, "c2": {"c1"}}


def test_announcement_reaches_the_room_and_hold_music_only_its_member():
    m = Mixer()
    for i in ("a", "b"):
        m.join(i, "main")
    m.add_source("src-ann", room="main")
    m.add_source("src-moh", member="a")
    m.set_deaf("a", True)
    m.set_muted("a", True)   # a is on hold
    got = hear_all(m, ["a", "b", "src-ann", "src-moh"])
    assert got == {"a": {"src-moh"}, "b": {"src-ann"}}


def test_volume_steps_scale_the_heard_amplitude_by_three_db_each():
    m = Mixer()
    for i in ("a", "b"):
        m.join(i, "main")
    m.set_volume("a", -2)                       # a talks 6 dB quieter
    m.set_volume("b", 1, Direction.LISTEN)      # b hears 3 dB louder
    freqs, frames = tones_for(["a", "b"])
    out = mix(m.routes(), frames)
    assert tone_amplitude(out["b"], freqs["a"]) == pytest.approx(AMP * gain(-2) * gain(1), rel=2e-3)
    assert tone_amplitude(out["a"], freqs["b"]) == pytest.approx(AMP, rel=2e-3)
    assert gain(-2) * gain(1) == pytest.approx(10 ** (-3 / 20))


def test_sum_clips_to_int16_instead_of_wrapping():
    m = Mixer()
    for i in ("a", "b", "c"):
        m.join(i, "main")
    loud = np.full(N, 30000, np.int16)
    out = mix(m.routes(), {"a": loud, "b": loud, "c": -loud})
    assert out["c"].min() == 32767          # 60000 clipped, not wrapped negative
    assert np.all(out["a"] == 0)            # 30000 - 30000: int32 sum before clipping


def test_a_routed_source_without_a_frame_is_an_error():
    m = Mixer()
    m.join("a", "main")
    m.join("b", "main")
    with pytest.raises(ValueError, match="'b'"):
        mix(m.routes(), {"a": tone(400, N)})


def test_tone_helpers_find_the_frequency():
    t = tone(1234.5, 8000 * 2)
    assert dominant_frequency(t) == pytest.approx(1234.5, abs=0.5)
    assert rms(t) == pytest.approx(4000 / np.sqrt(2), rel=1e-3)
