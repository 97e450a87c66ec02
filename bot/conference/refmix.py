"""The numpy reference mixer (pure): what each sink hears, given routes and one frame per source.

It is the test oracle for the mixer core and for the bridge adapter — never on the media path
(pjmedia's C bridge mixes the live calls). Owns `mix` (FreeSWITCH semantics, STYLE lesson 10:
an int32 sum of level-scaled int16 sources, clipped once to int16) and a few signal helpers the
audio tests share: `tone`, `rms`, `tone_amplitude`. Must not import the mixer core or any I/O.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import numpy as np

INT16_MIN, INT16_MAX = -32768, 32767


class RouteLike(Protocol):
    src: str
    dst: str
    level: float


def mix(routes: Iterable[RouteLike], frames: Mapping[str, np.ndarray],
        sinks: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Per sink (every route's dst, plus `sinks`): the int16 frame it hears.

    Each routed source frame is scaled by the route's level and rounded to integers (exact for
    level 1.0), summed in int32 — so loud talkers add up without wrapping — and clipped to int16
    once, at the end. A sink with no routes hears digital silence. Every routed source must have
    a frame; all frames must be 1-D int16 of one length.
    """
    routes = list(routes)
    lengths = {f.shape for f in frames.values()}
    if len(lengths) > 1:
        raise ValueError(f"frames differ in shape: {sorted(lengths)}")
    for sid, f in frames.items():
        if f.dtype != np.int16 or f.ndim != 1:
            raise ValueError(f"frame of {sid!r} must be 1-D int16, not {f.dtype} {f.shape}")
    missing = sorted({r.src for r in routes} - frames.keys())
    if missing:
        raise ValueError(f"no frame for routed sources {missing}")
    n = next(iter(lengths))[0] if lengths else 0
    acc: dict[str, np.ndarray] = {s: np.zeros(n, np.int32) for s in sinks}
    for r in routes:
        frame = frames[r.src].astype(np.int32)
        scaled = frame if r.level == 1.0 else np.rint(frame * r.level).astype(np.int32)
        if r.dst in acc:
            acc[r.dst] += scaled
        else:
            acc[r.dst] = scaled.copy()
    return {s: np.clip(a, INT16_MIN, INT16_MAX).astype(np.int16) for s, a in acc.items()}


def tone(freq_hz: float, n: int, rate: int = 8000, amplitude: int = 4000) -> np.ndarray:
    """An int16 sine of n samples."""
    t = np.arange(n) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def rms(frame: np.ndarray) -> float:
    return float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if frame.size else 0.0


def tone_amplitude(frame: np.ndarray, freq_hz: float, rate: int = 8000) -> float:
    """Peak amplitude of the `freq_hz` component (exact when the frame holds whole periods, i.e.
    freq_hz is a multiple of rate / len(frame); choose test tones that way)."""
    n = frame.size
    spectrum = np.fft.rfft(frame.astype(np.float64))
    k = int(round(freq_hz * n / rate))
    return float(2 * abs(spectrum[k]) / n)


def dominant_frequency(frame: np.ndarray, rate: int = 8000) -> float:
    """The frequency of the strongest non-DC bin."""
    spectrum = np.abs(np.fft.rfft(frame.astype(np.float64)))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / frame.size)
