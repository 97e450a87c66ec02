"""Text to speech: the pyttsx3 adapter (the only module that imports pyttsx3).

Owns one pyttsx3 engine behind a lock, the voice per language (`gmw/de`, `gmw/en-us`, else the
first voice whose language starts with the code), the speaking rate, and writing one utterance
to one WAV file at the engine's own rate (22,050 Hz mono for espeak-ng). Resampling, trimming,
levels and the cache belong to `ivr.speech.render`; this module must not touch them.

pyttsx3 2.99 quirks handled here:
- pyttsx3.init() returns a process-wide engine per driver (its own weak registry), and the
  espeak driver is not thread-safe: every use goes through the one module lock below.
- only one `save_to_file` per `runAndWait` (queued saves keep only the last), so render() is one
  save + one run;
- the driver remembers the last file and re-writes it on a later run: each render writes a fresh
  temporary name, checks that it was really written (a WAV with frames), then moves it into
  place with `os.replace`, so a stale re-write can never land on a real prompt;
- the driver prints "Audio saved to ..." on stdout: swallowed, other output passed through.
- the espeak driver runs espeak-ng asynchronously (AUDIO_OUTPUT_RETRIEVAL), and a rate set with
  `setProperty("rate")` races with the synchronous voice change: in a trial one render in three
  came out at the previous rate. The rate therefore travels inside the text as espeak's embedded
  speed command (ctrl-A, "<wpm>S"), which applies to exactly that utterance; control characters
  in the text itself are removed so a mail's title cannot smuggle commands in.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import uuid
import wave
from collections.abc import Mapping
from pathlib import Path

import pyttsx3

PREFERRED_VOICES: Mapping[str, str] = {"de": "gmw/de", "en": "gmw/en-us"}
DEFAULT_RATE = 160          # words per minute; espeak's 175-200 is hurried on a phone line

# pyttsx3 keeps one engine per driver for the whole process, so the lock must be as wide.
_ENGINE_LOCK = threading.Lock()


class TtsUnavailable(RuntimeError):
    """The speech engine cannot start (espeak-ng missing) or has no voice for a language."""


class TtsFailed(RuntimeError):
    """The engine ran but produced no audio file."""


class Speaker:
    def __init__(self, rate: int = DEFAULT_RATE,
                 voices: Mapping[str, str] = PREFERRED_VOICES) -> None:
        if not 60 <= rate <= 400:
            raise ValueError(f"speaking rate {rate} wpm is outside 60..400")
        self.rate = rate
        with _ENGINE_LOCK:
            try:
                self._engine = pyttsx3.init()
                available = [(v.id, [str(lang) for lang in (v.languages or [])])
                             for v in self._engine.getProperty("voices")]
            except Exception as exc:  # ctypes OSError, RuntimeError, ImportError from the driver
                raise TtsUnavailable(
                    "cannot start the speech engine (pyttsx3 with espeak-ng): "
                    f"{type(exc).__name__}: {exc}. Install the Debian packages "
                    "espeak-ng and libespeak-ng1 (apt-get install espeak-ng).") from exc
        self._voices = available
        self._preferred = dict(voices)
        self._chosen: dict[str, str] = {}

    def voice_for(self, lang: str) -> str:
        """The voice id for a language code ("de", "en", "en-GB")."""
        if lang in self._chosen:
            return self._chosen[lang]
        ids = {vid for vid, _ in self._voices}
        code = lang.lower().replace("_", "-")
        base = code.split("-")[0]
        # an exact preference, a voice named for the code ("roa/fr"), one speaking exactly it
        # ("en-gb"), the base preference, then any voice of the base language
        named = next((vid for vid in ids if vid.lower().rsplit("/", 1)[-1] == code), None)
        exact = next((vid for vid, langs in self._voices if code in (lc.lower() for lc in langs)), None)
        prefix = next((vid for vid, langs in self._voices
                       if any(lc.lower().split("-")[0] == base for lc in langs)), None)
        candidates = (self._preferred.get(code), named, exact, self._preferred.get(base), prefix)
        choice = next((v for v in candidates if v in ids), None)
        if choice is None:
            raise TtsUnavailable(f"no espeak-ng voice for language '{lang}'")
        self._chosen[lang] = choice
        return choice

    def render(self, text: str, lang: str, out_path: str | os.PathLike) -> int:
        """Speak `text` in `lang` into the WAV `out_path`; returns its sample rate."""
        clean = "".join(ch if ch.isprintable() else " " for ch in text).strip()
        if not clean:
            raise ValueError("nothing to say: empty text")
        voice = self.voice_for(lang)
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tts.wav")
        try:
            for _attempt in range(2):
                with _ENGINE_LOCK:
                    self._engine.setProperty("voice", voice)
                    with _quiet_stdout():
                        self._engine.save_to_file(f"\x01{self.rate}S {clean}", str(tmp))
                        self._engine.runAndWait()
                rate = _written_rate(tmp)
                if rate:
                    os.replace(tmp, out)
                    return rate
            raise TtsFailed(f"espeak-ng wrote no audio for {text[:60]!r} ({voice})")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _written_rate(path: Path) -> int:
    """The sample rate of a WAV with at least one frame, else 0."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getframerate() if w.getnframes() > 0 else 0
    except (OSError, EOFError, wave.Error):
        return 0


@contextlib.contextmanager
def _quiet_stdout():
    real = sys.stdout
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    rest = "".join(line for line in buf.getvalue().splitlines(keepends=True)
                   if not line.startswith("Audio saved to "))
    if rest and real is not None:
        real.write(rest)
