"""Live speech input for one call: tail the caller's recording, cut utterances, recognise them.

Owns the asyncio side of speech input: following a WAV file that a pjsua2 recorder grows in
/dev/shm (the patched recorder appends every 20 ms; its header's size fields stay 0 until the
recorder closes, so the 44-byte header is skipped and never trusted), feeding the frames to the
VAD (`ivr.vad`), and handing each finished utterance to the recogniser (`ivr.speech.Recognizer`,
or anything with its `recognize`) in a worker thread (`asyncio.to_thread`). Results become
`SpeechRecognized(text, keyword)` events passed to `emit`. The media side never waits for us:
the recorder writes to tmpfs whatever Python does, and we read only what is already there.

Which grammar is live is the driver's decision: `listen(recognizer)` when a menu asks (the
grammar of that menu), `listen(None)` when nothing is asked. A result that comes back after the
menu changed is dropped, so an answer can never land in the wrong menu.

Must not touch: the recorder itself (bot.sip starts and stops it), vosk, the call flow. It is
wiring (tests/test_layering.py): it joins a core (the VAD) to an adapter's output in time.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Protocol

from ivr.events import SpeechRecognized
from ivr.speech import Recognition
from ivr.vad import EnergyVad, Utterance, VadConfig

WAV_HEADER_BYTES = 44
POLL_S = 0.02               # the recorder's own cadence
READ_LIMIT = 1 << 20        # a burst larger than this is read over several polls

log = logging.getLogger(__name__)


class Recognize(Protocol):
    def recognize(self, pcm: bytes) -> Recognition: ...


class SpeechTap:
    """One call's speech input. `run()` until the call ends (or `stop()`); `listen()` per menu."""

    def __init__(self, path: str | os.PathLike, emit: Callable[[SpeechRecognized], None], *,
                 sample_rate: int, vad: VadConfig | None = None, poll_s: float = POLL_S) -> None:
        self.path = os.fspath(path)
        self.emit = emit
        self.vad = EnergyVad(vad or VadConfig(sample_rate=sample_rate))
        if self.vad.config.sample_rate != sample_rate:
            raise ValueError(f"VAD at {self.vad.config.sample_rate} Hz for a {sample_rate} Hz recording")
        self.poll_s = poll_s
        self._recognizer: Recognize | None = None
        self._generation = 0            # bumped by listen(): results of older menus are stale
        self._queue: asyncio.Queue[tuple[int, Recognize, Utterance]] = asyncio.Queue()
        self._stopped = asyncio.Event()
        self.bytes_read = 0             # audio bytes consumed past the header (for tests, logs)

    def listen(self, recognizer: Recognize | None) -> None:
        """Recognise from now on with this menu's recogniser (None: stop recognising). Audio of a
        half-heard utterance belongs to the previous question and is dropped."""
        self._recognizer = recognizer
        self._generation += 1
        self.vad.reset()

    def stop(self) -> None:
        self._stopped.set()

    async def run(self) -> None:
        worker = asyncio.create_task(self._recognise_loop())
        try:
            await self._tail()
            await self._queue.join()    # utterances already heard still get their answer
        finally:
            worker.cancel()

    # ---- the file side ------------------------------------------------------------------

    async def _tail(self) -> None:
        fd, ident, offset = None, None, WAV_HEADER_BYTES
        try:
            while not self._stopped.is_set():
                if fd is None:
                    fd, ident = self._open()
                    offset = WAV_HEADER_BYTES
                if fd is not None:
                    st = os.stat(self.path) if os.path.exists(self.path) else None
                    shrunk = offset > WAV_HEADER_BYTES and st is not None and st.st_size < offset
                    if st is None or (st.st_dev, st.st_ino) != ident or shrunk:
                        os.close(fd)        # the recording was replaced or truncated: start over
                        fd = None
                        self.vad.reset()
                        continue
                    chunk = os.pread(fd, min(READ_LIMIT, st.st_size - offset), offset) if st.st_size > offset else b""
                    if chunk:
                        offset += len(chunk)
                        self.bytes_read += len(chunk)
                        self._feed(chunk)
                        if len(chunk) == READ_LIMIT:
                            continue        # more is waiting: read it before sleeping
                await self._sleep()
            if fd is not None:              # the call ended: whatever is left is final
                self._feed(b"", final=True)
        finally:
            if fd is not None:
                os.close(fd)

    def _open(self) -> tuple[int | None, tuple[int, int] | None]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None, None               # the recorder has not started yet
        st = os.fstat(fd)
        return fd, (st.st_dev, st.st_ino)

    async def _sleep(self) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), self.poll_s)
        except asyncio.TimeoutError:
            pass

    def _feed(self, pcm: bytes, final: bool = False) -> None:
        if self._recognizer is None:
            return                          # nobody asked: the audio is not even analysed
        events = self.vad.push(pcm) + (self.vad.flush() if final else [])
        for ev in events:
            if isinstance(ev, Utterance):
                self._queue.put_nowait((self._generation, self._recognizer, ev))

    # ---- the recogniser side ------------------------------------------------------------

    async def _recognise_loop(self) -> None:
        while True:
            generation, recognizer, utt = await self._queue.get()
            try:
                if generation != self._generation:
                    continue                # the menu changed before we got to it
                result = await asyncio.to_thread(recognizer.recognize, utt.pcm)
                if generation != self._generation or not result.text:
                    continue                # ... or while we were recognising
                self.emit(SpeechRecognized(result.text, result.keyword))
            except Exception:               # one bad utterance must not deafen the call
                log.exception("speech recognition failed on %s", self.path)
            finally:
                self._queue.task_done()
