"""Helpers for the speech-input tests: a stand-in for the patched pjsua2 recorder (a WAV in
/dev/shm whose header sizes stay 0, grown by a thread every 20 ms) and synthetic signals."""
from __future__ import annotations

import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest


def wav_header_with_zero_sizes(rate: int) -> bytes:
    """What pjmedia's WAV writer puts first: sizes are filled in only when it closes."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0, b"WAVE", b"fmt ", 16, 1, 1,
                       rate, rate * 2, 2, 16, b"data", 0)


class GrowingWav(threading.Thread):
    """Writes the header, then appends `pcm` one 20 ms frame per `every_s`, flushing each, like
    the recorder on the media clock. `gate` (if given) holds the writing back until set."""

    def __init__(self, path: Path, pcm: bytes, rate: int, every_s: float = 0.02,
                 gate: threading.Event | None = None, header: bool = True) -> None:
        super().__init__(daemon=True)
        self.path, self.pcm, self.rate, self.every_s = path, pcm, rate, every_s
        self.gate, self.header = gate, header
        self.done = threading.Event()

    def run(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        frame = self.rate * 20 // 1000 * 2
        with open(self.path, "wb", buffering=0) as f:
            if self.header:
                f.write(wav_header_with_zero_sizes(self.rate))
            for at in range(0, len(self.pcm), frame):
                f.write(self.pcm[at:at + frame])
                time.sleep(self.every_s)
        self.done.set()


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A private directory in /dev/shm (tmpfs, like the recorder's), removed afterwards."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="confbot-tap-", dir=base) as d:
        yield Path(d)


def tone(ms: int, hz: float, rate: int, dbfs: float = -18.0) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return np.sin(2 * np.pi * hz * t) * np.sqrt(2) * 10 ** (dbfs / 20)


def silence(ms: int, rate: int) -> np.ndarray:
    return np.zeros(rate * ms // 1000)


def to_pcm(*parts: np.ndarray) -> bytes:
    return (np.clip(np.concatenate(parts), -1, 1) * 32767).astype("<i2").tobytes()


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])
