"""Live speech input for one call: tail the caller's recording, cut utterances, recognise them.

Owns the asyncio side of speech input: following a WAV file that a pjsua2 recorder grows in
/dev/shm (the patched recorder appends every 20 ms; its header's size fields stay 0 until the
recorder closes, so the 44-byte header is skipped and never trusted), feeding the frames to the
VAD (`ivr.speech.vad`), and handing each finished utterance to the recogniser (`ivr.speech.asr.Recognizer`,
or anything with its `recognize`) in a worker thread (`asyncio.to_thread`). Results become
`SpeechRecognized(text, keyword)` events passed to `emit`. The media side never waits for us:
the recorder writes to tmpfs whatever Python does, and we read only what is already there.

Which grammar is live is the driver's decision: `listen(recognizer)` when a menu asks (the
grammar of that menu), `listen(None)` when nothing is asked. A result that comes back after the
menu changed is dropped, so an answer can never land in the wrong menu.

`SpeechInput` is the per-call wiring around it (bot.service.driver owns one per call when speech is
configured): after every action list of the flow it decides what is heard. A list that asks a
question (`CollectDigits`; the menu is read by `ivr.speech.asr.menu_asked`) starts the caller's
recorder (a file in /dev/shm) if it is not running and listens with that menu's recogniser; a
list that leaves the menus (JoinRoom, RecordName, DialOut, TransferToOperator, Hangup) stops
listening, stops the recorder and deletes its file, so a caller sitting in a conference for
hours costs no tmpfs and no CPU. Other lists (a digit of a PIN, a finished prompt) change
nothing. The voice service keys recorders by call, so a new recorder is started only after the
previous one has reported that it stopped (`pause()` is what the name recording awaits).

Must not touch: the recorder itself (the voice service starts and stops it; bot.sip.stack runs it),
vosk, the call flow. It is wiring (tests/test_layering.py): it joins a core (the VAD) to an
adapter's output in time.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ivr.events import (CollectDigits, DialOut, Hangup, JoinRoom, RecordName, SpeechRecognized,
                        TransferToOperator)
from ivr.speech.asr import Menu, Recognition, menu_asked
from ivr.speech.vad import EnergyVad, Utterance, VadConfig

WAV_HEADER_BYTES = 44
POLL_S = 0.02               # the recorder's own cadence
READ_LIMIT = 1 << 20        # a burst larger than this is read over several polls
STOP_TIMEOUT_S = 3.0        # a recorder that does not report its stop by then is given up on
LEAVING = (JoinRoom, RecordName, DialOut, TransferToOperator, Hangup)   # no menu after these

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
        self._queue: asyncio.Queue[tuple[int, Recognize, Utterance, float]] = asyncio.Queue()
        self._stopped = asyncio.Event()
        self.bytes_read = 0             # audio bytes consumed past the header (for tests, logs)
        self.latencies_ms: list[int] = []   # end of speech detected → result emitted, per result

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
                self._queue.put_nowait((self._generation, self._recognizer, ev, time.monotonic()))

    # ---- the recogniser side ------------------------------------------------------------

    async def _recognise_loop(self) -> None:
        while True:
            generation, recognizer, utt, cut_at = await self._queue.get()
            try:
                if generation != self._generation:
                    continue                # the menu changed before we got to it
                result = await asyncio.to_thread(recognizer.recognize, utt.pcm)
                if generation != self._generation or not result.text:
                    continue                # ... or while we were recognising
                ms = int(1000 * (time.monotonic() - cut_at))
                if len(self.latencies_ms) < 100:
                    self.latencies_ms.append(ms)
                log.info("%s: heard %r → %r (%.1f s of audio, recognised in %d ms, %d ms hang-over)",
                         os.path.basename(self.path), result.text, result.keyword,
                         len(utt.pcm) / 2 / self.vad.config.sample_rate, ms,
                         self.vad.config.hangover_ms)
                self.emit(SpeechRecognized(result.text, result.keyword))
            except Exception:               # one bad utterance must not deafen the call
                log.exception("speech recognition failed on %s", self.path)
            finally:
                self._queue.task_done()


# ---- one call's speech input, driven by the flow's actions ------------------------------------

class RecorderPort(Protocol):
    """What `SpeechInput` asks of the voice service (bot.service.voice.VoiceService has both)."""
    def start_recording(self, call: str, path: str) -> "asyncio.Future[str]": ...
    def stop_recording(self, call: str) -> None: ...


class SpeechInput:
    """The caller's recorder + a `SpeechTap` on it + the grammar of the menu being asked.

    `recognizer_for(menu)` gives the recogniser of a menu in the call's current language (None:
    no words for it, keys only). `after(actions)` after each action list; `pause()` before
    another recording of this call; `close()` at the end (returns what to await)."""

    def __init__(self, call: str, voice: RecorderPort,
                 recognizer_for: Callable[[Menu], Recognize | None],
                 emit: Callable[[SpeechRecognized], None], *, sample_rate: int,
                 directory: str | os.PathLike = "/dev/shm", vad: VadConfig | None = None) -> None:
        self.call, self.voice, self.recognizer_for = call, voice, recognizer_for
        self.path = Path(directory) / f"confbot-{call}.wav"
        self.tap = SpeechTap(self.path, emit, sample_rate=sample_rate, vad=vad)
        self.menu: Menu | None = None       # the menu listened to now (None: not listening)
        self.closed = False
        self._wanted = False                # the recorder should run
        self._recorder: asyncio.Future | None = None
        self._stopping: asyncio.Future | None = None
        self._tap_task: asyncio.Task | None = None

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def after(self, actions: Sequence[object]) -> None:
        """The flow returned `actions` (already executed): listen to what they ask, if anything."""
        if self.closed:
            return
        if any(isinstance(a, LEAVING) for a in actions):
            self._listen(None)
            self._stop()
        elif any(isinstance(a, CollectDigits) for a in actions):
            menu = menu_asked(actions)
            self._listen(menu)

    def _listen(self, menu: Menu | None) -> None:
        recognizer = self.recognizer_for(menu) if menu is not None else None
        self.menu = menu if recognizer is not None else None
        self.tap.listen(recognizer)
        if recognizer is not None:
            self._start()

    async def pause(self) -> None:
        """Stop listening and recording; returns when the recorder has stopped (the call may
        then be recorded otherwise, e.g. its name). The next question starts it again."""
        self._listen(None)
        await asyncio.shield(self._stop())

    def close(self) -> asyncio.Future:
        """The call is over: stop everything; the returned future is done when the recorder has
        stopped, its file is deleted and the tap has finished."""
        if not self.closed:
            self.closed = True
            self._listen(None)
            self.tap.stop()
        stopping = self._stop()
        tap = self._tap_task if self._tap_task is not None else _done()
        return asyncio.ensure_future(_settle(stopping, tap))

    # ---- the recorder ----------------------------------------------------------------------

    def _start(self) -> None:
        self._wanted = True
        if self._recorder is not None or self.closed:
            return
        if self._stopping is not None and not self._stopping.done():
            # the previous recorder of this call has not reported its stop yet: start after it
            self._stopping.add_done_callback(lambda _f: self._wanted and self._start())
            return
        if self._tap_task is None:
            self._tap_task = asyncio.ensure_future(self.tap.run())
            self._tap_task.add_done_callback(self._tap_done)
        done = self.voice.start_recording(self.call, str(self.path))
        self._recorder = done
        done.add_done_callback(self._recorder_gone)

    def _stop(self) -> asyncio.Future:
        self._wanted = False
        if self._recorder is not None:
            done, self._recorder = self._recorder, None
            self.voice.stop_recording(self.call)
            self._stopping = asyncio.ensure_future(self._discard(done))
        return self._stopping if self._stopping is not None else _done()

    async def _discard(self, done: asyncio.Future) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(done), STOP_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("%s: the speech recorder did not report its stop", self.call)
        finally:
            self.path.unlink(missing_ok=True)

    def _recorder_gone(self, done: asyncio.Future) -> None:
        if self._recorder is done:          # it ended without being asked (no media, call gone)
            self._recorder = None
            log.warning("%s: the speech recorder stopped by itself; keys only until the next "
                        "question", self.call)
            self.path.unlink(missing_ok=True)

    def _tap_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: speech tap failed: %r", self.call, task.exception())


def _done() -> asyncio.Future:
    f = asyncio.get_running_loop().create_future()
    f.set_result(None)
    return f


async def _settle(*parts: asyncio.Future) -> None:
    results = await asyncio.gather(*parts, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
            log.error("speech input clean-up: %r", r)
