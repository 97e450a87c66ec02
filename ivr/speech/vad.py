"""End-of-speech detection (pure): an energy voice-activity detector over 16-bit mono PCM.

Owns cutting a caller's audio stream into utterances: 20 ms frames, each voiced when its level
is above both an absolute floor and the tracked noise floor plus a margin; an utterance starts
after `start_ms` of voiced frames in a row and ends after `hangover_ms` of unvoiced frames in a
row (the hang-over bridges the short pauses inside and between words). The utterance carries
`pre_roll_ms` of the audio before its start, so word onsets are not clipped and the recogniser
gets some silence for context. Bursts shorter than `min_speech_ms` (a click, a short tone) are
dropped; a caller who never pauses is cut at `max_utterance_ms`.

Must not touch: files, threads, clocks or the recogniser. Time here is sample time (ms of audio
pushed), not wall-clock time. `ivr.speech.tap` feeds it and hands utterances on.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -100.0       # the level reported for digital silence (log of zero)


@dataclass(frozen=True, slots=True)
class VadConfig:
    sample_rate: int = 16000
    frame_ms: int = 20
    threshold_dbfs: float = -45.0   # frames quieter than this are never speech
    margin_db: float = 10.0         # ... nor frames less than this above the noise floor
    start_ms: int = 60              # voiced audio in a row that starts an utterance
    hangover_ms: int = 500          # unvoiced audio in a row that ends it
    pre_roll_ms: int = 300          # audio kept from before the start
    min_speech_ms: int = 150        # voiced audio an utterance needs in total to count
    max_utterance_ms: int = 8000    # a caller who never pauses is cut here
    floor_rise_ms: int = 2000       # time constant of the noise floor creeping up (it falls fast)

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.frame_ms <= 0 or self.sample_rate * self.frame_ms % 1000:
            raise ValueError(f"{self.frame_ms} ms frames at {self.sample_rate} Hz are not whole samples")
        for name in ("start_ms", "hangover_ms", "max_utterance_ms"):
            if getattr(self, name) < self.frame_ms:
                raise ValueError(f"{name} must be at least one frame ({self.frame_ms} ms)")

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate * self.frame_ms // 1000 * 2

    def frames(self, ms: int) -> int:
        """Whole frames covering `ms` (at least one)."""
        return max(1, -(-ms // self.frame_ms))


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int                      # stream time of the first voiced frame


@dataclass(frozen=True, slots=True)
class Utterance:
    pcm: bytes                      # pre-roll + speech + the hang-over's silence, 16-bit mono
    start_ms: int                   # stream time of the first voiced frame
    end_ms: int                     # stream time just after the last voiced frame
    cut: bool = False               # ended by max_utterance_ms, not by a pause


VadEvent = SpeechStarted | Utterance


def frame_dbfs(frame: bytes) -> float:
    """RMS level of one 16-bit frame relative to full scale."""
    x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    if x.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(x * x))) / 32768.0
    return max(SILENCE_DBFS, 20.0 * np.log10(rms)) if rms > 0 else SILENCE_DBFS


class EnergyVad:
    """Push PCM bytes in any chunking; get `SpeechStarted` and finished `Utterance`s back."""

    def __init__(self, config: VadConfig = VadConfig()) -> None:
        self.config = config
        self._start_frames = config.frames(config.start_ms)
        self._hang_frames = config.frames(config.hangover_ms)
        self._min_frames = config.frames(config.min_speech_ms)
        self._max_frames = config.frames(config.max_utterance_ms)
        self._rise = config.frame_ms / config.floor_rise_ms
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new menu): a half-heard utterance is dropped."""
        cfg = self.config
        self._rest = b""
        self._frame_no = 0                              # frames seen so far
        self._floor: float | None = None
        self._before: deque[bytes] = deque(maxlen=cfg.frames(cfg.pre_roll_ms) + self._start_frames)
        self._run = 0                                   # voiced frames in a row (not yet speaking)
        self._speaking = False
        self._body: list[bytes] = []
        self._start_frame = 0
        self._last_voiced = 0                           # frame number after the last voiced one
        self._voiced = 0                                # voiced frames in this utterance
        self._quiet = 0                                 # unvoiced frames in a row while speaking

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def noise_floor_dbfs(self) -> float | None:
        return self._floor

    def push(self, pcm: bytes) -> list[VadEvent]:
        data = self._rest + pcm
        size = self.config.frame_bytes
        whole = len(data) - len(data) % size
        self._rest = data[whole:]
        out: list[VadEvent] = []
        for at in range(0, whole, size):
            out += self._frame(data[at:at + size])
        return out

    def flush(self) -> list[VadEvent]:
        """The stream ended: an utterance in progress ends here (if it was long enough)."""
        self._rest = b""
        return self._finish(cut=False) if self._speaking else []

    # ---- one frame ----------------------------------------------------------------------

    def _ms(self, frame_no: int) -> int:
        return frame_no * self.config.frame_ms

    def _voiced_now(self, db: float) -> bool:
        cfg = self.config
        if self._floor is None:
            self._floor = db
        voiced = db > cfg.threshold_dbfs and db > self._floor + cfg.margin_db
        # The floor follows quiet frames down quickly and creeps up slowly, so steady noise is
        # learnt in a few seconds while a word (louder, and short) barely moves it. While an
        # utterance runs it is frozen, or a long word would teach the floor its own level.
        if not self._speaking:
            step = 0.3 if db < self._floor else self._rise
            self._floor += step * (db - self._floor)
        return voiced

    def _frame(self, frame: bytes) -> list[VadEvent]:
        voiced = self._voiced_now(frame_dbfs(frame))
        self._frame_no += 1
        if not self._speaking:
            self._before.append(frame)
            self._run = self._run + 1 if voiced else 0
            if self._run < self._start_frames:
                return []
            self._speaking = True
            self._start_frame = self._frame_no - self._run
            self._body = list(self._before)             # pre-roll + the voiced run
            self._before.clear()
            self._voiced, self._quiet, self._last_voiced = self._run, 0, self._frame_no
            self._run = 0
            return [SpeechStarted(self._ms(self._start_frame))]
        self._body.append(frame)
        if voiced:
            self._voiced += 1
            self._quiet = 0
            self._last_voiced = self._frame_no
        else:
            self._quiet += 1
        if self._quiet >= self._hang_frames:
            return self._finish(cut=False)
        if self._frame_no - self._start_frame >= self._max_frames:
            return self._finish(cut=True)
        return []

    def _finish(self, cut: bool) -> list[VadEvent]:
        body, voiced = b"".join(self._body), self._voiced
        start, end = self._ms(self._start_frame), self._ms(self._last_voiced)
        self._speaking, self._body, self._voiced, self._quiet = False, [], 0, 0
        if voiced < self._min_frames:
            return []
        return [Utterance(body, start, end, cut)]
