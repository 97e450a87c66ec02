"""The prompt audio cache: resolved prompts → ready-to-play WAVs at the bridge rate (the soxr adapter).

Owns `var/prompts/`: one file per spoken text, keyed by sha256(text, voice, rate, clock rate,
conditioning version); one file per recording (keyed by its bytes) and per tone; one file per
multi-segment prompt (the segments joined with short gaps). Every file is 16-bit mono PCM at the
bridge's clock rate, resampled with soxr, trimmed of leading/trailing silence and levelled to
about -16 dBFS, so pjsua2's players can stream them with no Python on the media path.
`render_all` fills the cache for every prompt without parameters; prompts with parameters are
rendered on demand by `PromptCache.wav_for` (call it from a worker thread, never the media path).

Must not touch: pyttsx3 (speech comes from any `Synth`, normally `ivr.speech.tts.Speaker`), SIP, the
clock. Files are written to a temporary name and moved into place, so a reader never sees half a
file and two workers rendering the same key do no harm.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import uuid
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr

from ivr.catalog import Catalog, Recording, Resolved, Segment, Text, Tone, resolve, static_prompts
from ivr.events import Params, PromptId

CONDITIONING = "v1"         # bump when the DSP below changes: old cache entries stop matching
TARGET_DBFS = -16.0
PEAK_LIMIT = 0.89           # about -1 dBFS: levelling never clips
GAP_MS = 150
SILENCE_DBFS = -45.0        # 10 ms windows quieter than this (relative to the peak) are silence
EDGE_MS = 30                # keep a little air at both ends so plosives are not clipped

Progress = Callable[[int, int, str], None]      # (done, total, label)


class Synth(Protocol):
    rate: int

    def voice_for(self, lang: str) -> str: ...

    def render(self, text: str, lang: str, out_path: str | os.PathLike) -> int: ...


@dataclass(frozen=True, slots=True)
class RenderReport:
    prompts: int        # prompt files made ready
    synthesized: int    # of which needed the TTS engine (0 on a warm cache)


# ---- signal conditioning (numpy + soxr) ------------------------------------------------------

def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Float mono samples in [-1, 1] and the rate of a 8/16/32-bit PCM WAV."""
    with wave.open(os.fspath(path), "rb") as w:
        width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV is not supported (use 16-bit PCM)")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x, rate


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def trim(x: np.ndarray, rate: int) -> np.ndarray:
    win = max(1, rate // 100)
    n = len(x) // win
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * win].reshape(n, win) ** 2, axis=1))
    peak = float(rms.max())
    if peak <= 0.0:
        return x[:0]
    loud = np.flatnonzero(rms > peak * 10 ** (SILENCE_DBFS / 20))
    edge = rate * EDGE_MS // 1000
    start = max(0, loud[0] * win - edge)
    end = min(len(x), (loud[-1] + 1) * win + edge)
    return x[start:end]


def level(x: np.ndarray) -> np.ndarray:
    """Scale the voiced part to TARGET_DBFS RMS, but never past PEAK_LIMIT."""
    if len(x) == 0:
        return x
    peak = float(np.max(np.abs(x)))
    if peak == 0.0:
        return x
    # measure loudness on the voiced samples only, so pauses between words don't pull it down
    voiced = x[np.abs(x) > peak * 0.05]
    rms = float(np.sqrt(np.mean(voiced ** 2)))
    gain = min(10 ** (TARGET_DBFS / 20) / rms, PEAK_LIMIT / peak)
    return (x * gain).astype(np.float32)


def condition(x: np.ndarray, rate: int, clock_rate: int) -> np.ndarray:
    if rate != clock_rate:
        x = soxr.resample(x, rate, clock_rate, quality="HQ").astype(np.float32)
    return level(trim(x, clock_rate))


def tone(spec: Tone, clock_rate: int) -> np.ndarray:
    t = np.arange(clock_rate * spec.ms // 1000) / clock_rate
    amp = 10 ** (TARGET_DBFS / 20) * np.sqrt(2)      # a sine's RMS is its amplitude / sqrt(2)
    x = amp * np.sin(2 * np.pi * spec.hz * t)
    ramp = min(len(x) // 2, clock_rate // 100)       # 10 ms fades: no clicks
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp)
        x[:ramp] *= fade
        x[-ramp:] *= fade[::-1]
    return x.astype(np.float32)


# ---- the cache -------------------------------------------------------------------------------

def _key(*parts: object) -> str:
    h = hashlib.sha256()
    for p in (CONDITIONING, *parts):
        h.update(repr(p).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:32]


class PromptCache:
    """Rendered prompt audio under `cache_dir` (normally var/prompts/). Thread-safe."""

    def __init__(self, synth: Synth, cache_dir: str | os.PathLike, clock_rate: int = 8000,
                 gap_ms: int = GAP_MS) -> None:
        if clock_rate not in (8000, 16000, 32000, 44100, 48000):
            raise ValueError(f"clock rate {clock_rate} Hz is not a bridge rate")
        self.synth = synth
        self.dir = Path(cache_dir)
        self.clock_rate = clock_rate
        self.gap_ms = gap_ms
        self._count_lock = threading.Lock()
        self.synthesized = 0            # TTS renders done by this cache (misses)

    def _path(self, key: str) -> Path:
        return self.dir / f"{key}.wav"

    def text_wav(self, text: str, lang: str) -> Path:
        voice = self.synth.voice_for(lang)
        path = self._path(_key("text", text, voice, self.synth.rate, self.clock_rate))
        if path.exists():
            return path
        raw = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.raw.wav")   # unique: workers may race
        try:
            rate = self.synth.render(text, lang, raw)
            x, _ = read_wav(raw)
        finally:
            if raw.exists():
                raw.unlink()
        write_wav(path, condition(x, rate, self.clock_rate), self.clock_rate)
        with self._count_lock:
            self.synthesized += 1
        return path

    def recording_wav(self, source: str | os.PathLike) -> Path:
        data = Path(source).read_bytes()
        path = self._path(_key("rec", hashlib.sha256(data).hexdigest(), self.clock_rate))
        if not path.exists():
            x, rate = read_wav(source)
            write_wav(path, condition(x, rate, self.clock_rate), self.clock_rate)
        return path

    def tone_wav(self, spec: Tone) -> Path:
        path = self._path(_key("tone", spec.hz, spec.ms, self.clock_rate))
        if not path.exists():
            write_wav(path, tone(spec, self.clock_rate), self.clock_rate)
        return path

    def segment_wav(self, seg: Segment, lang: str) -> Path:
        match seg:
            case Text(text):
                return self.text_wav(text, lang)
            case Recording(path):
                return self.recording_wav(path)
            case Tone():
                return self.tone_wav(seg)
        raise TypeError(f"not a segment: {seg!r}")

    def wav_for(self, resolved: Resolved) -> Path:
        """The one WAV to play for a resolved prompt (rendering what is missing)."""
        parts = [self.segment_wav(s, resolved.lang) for s in resolved.segments]
        if not parts:
            raise ValueError(f"{resolved.prompt.value}: nothing to play")
        if len(parts) == 1:
            return parts[0]
        path = self._path(_key("join", tuple(p.name for p in parts), self.gap_ms, self.clock_rate))
        if not path.exists():
            gap = np.zeros(self.clock_rate * self.gap_ms // 1000, np.float32)
            pieces: list[np.ndarray] = []
            for p in parts:
                pieces += [read_wav(p)[0], gap]
            write_wav(path, np.concatenate(pieces[:-1]), self.clock_rate)
        return path


def render_all(cache: PromptCache, catalog: Catalog, langs: Iterable[str] | None = None,
               progress: Progress | None = None,
               extra: Iterable[tuple[PromptId, Params]] = ()) -> RenderReport:
    """Render every prompt without parameters, and the `extra` (prompt, params) known ahead
    (the help's key list of the configured keypad), for each language, into the cache.

    `progress(done, total, label)` is called after each prompt (label "de/welcome")."""
    languages = tuple(langs) if langs is not None else catalog.languages
    fixed = [(p, ()) for p in static_prompts()] + list(extra)
    jobs = [(lang, p, values) for lang in languages for p, values in fixed]
    before = cache.synthesized
    for done, (lang, prompt, values) in enumerate(jobs, 1):
        cache.wav_for(resolve(catalog, prompt, values, lang))
        if progress is not None:
            progress(done, len(jobs), f"{lang}/{prompt.value}")
    return RenderReport(prompts=len(jobs), synthesized=cache.synthesized - before)


def progress_line(done: int, total: int, label: str, width: int = 30) -> str:
    """One line of a text progress bar for `confbot prompts render`: '[#####.....]  12/70 de/muted'."""
    filled = width * done // total if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total} {label}"
