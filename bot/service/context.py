"""What the IVR drivers share: `IvrContext`, built once by the composition root (the prompts,
the store and its worker threads, the name-recording folder, the clock, the speech model and
the recognisers of each menu, background work that outlives its call).

Used by `bot.service.driver` (one driver per call), `bot.service.voice`, `bot.service.runs` and
`bot.service.lockouts`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bot.service.prompts import Prompts
from bot.store.calls import CallRecords, call_log
from ivr.speech.asr import GrammarSource, Menu, Recognizer, grammar_for
from ivr.speech.render import read_wav
from ivr.speech.tap import Recognize

log = logging.getLogger("confbot.ivr")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class IvrContext:
    """Everything the drivers share, built once by the composition root."""
    prompts: Prompts
    store: object | None = None          # bot.booking.ledger.Ledger + bot.store.calls.CallRecords
    names_dir: Path = Path("var/names")
    clock: Callable[[], datetime] = utcnow
    default_language: str = "de"
    threeway_parties: int = 3
    # call-record writes: one thread, so they stay in order; each commits (fsync) on its own
    store_executor: concurrent.futures.Executor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, "confbot-cdr"))
    # PIN look-ups: reads (WAL lets them run beside the writes), never queued behind records
    pin_executor: concurrent.futures.Executor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(2, "confbot-pin"))
    # speech input: a loaded ivr.speech.asr.SpeechModel (None: keys only), the words of each menu
    # (injectable: tests with a Korean model map Korean words to keys), the language-menu order
    speech: object | None = None
    grammars: GrammarSource = grammar_for
    languages: tuple[str, ...] = ("de", "en")
    speech_dir: Path = Path("/dev/shm")

    def __post_init__(self) -> None:
        # the calls table: the store itself once it mixes CallRecords in, else a view over it
        self.cdr = call_log(self.store) if self.store is not None else None
        self._recognizers: dict[tuple[Menu, str, int], Recognize | None] = {}
        self.background: set[asyncio.Future] = set()   # clean-ups that outlive their call

    def recognizer(self, menu: Menu, language: str, sample_rate: int) -> Recognize | None:
        """The (shared, thread-safe) recogniser of `menu` in `language`; None without words."""
        key = (menu, language, sample_rate)
        if key not in self._recognizers:
            grammar = self.grammars(menu, language, self.languages)
            self._recognizers[key] = (Recognizer(self.speech, grammar, sample_rate)
                                      if grammar is not None and self.speech is not None else None)
        return self._recognizers[key]

    def keep(self, fut: asyncio.Future) -> None:
        """Hold a strong reference to background work until it is done."""
        self.background.add(fut)
        fut.add_done_callback(self.background.discard)

    def transcribe(self, path: str) -> "asyncio.Future[str] | None":
        """A recorded name as text for the owner of conference state, recognised free-form in a worker thread
        (a second or two); None when speech input is off."""
        model = self.speech
        if model is None:
            return None

        def work() -> str:
            x, rate = read_wav(path)
            pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
            return model.transcribe(pcm, rate)
        return asyncio.get_running_loop().run_in_executor(None, work)

    def record(self, fn: Callable[[CallRecords], None]) -> None:
        """Run a call-record write on the store's worker thread (ordered, off the loop)."""
        if self.cdr is None:
            return
        fut = self.store_executor.submit(fn, self.cdr)
        fut.add_done_callback(lambda f: f.exception() and log.error("call record: %s", f.exception()))

