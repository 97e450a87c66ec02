"""One run of the voice service in the call records (wiring over `bot.store.calls`): begins a run in
the store before SIP starts (closing the rows a crashed run left open), beats its heartbeat while
it runs, and ends it after SIP has stopped.

Owns the run's number, which prefixes every call id of the run ("call-12-3"), so call records of
two runs never share an id, and the heartbeat task: the heartbeat is the "last known time" the
next start closes a crashed run's calls at. Store calls go through the IVR context's store
worker (the thread every call-record write uses, so they stay in order with them). Must not
decide anything about calls; `bot.service.voice` asks it for a prefix and tells it when it stops.
"""
from __future__ import annotations

import asyncio
import logging

from bot.store.calls import RESTARTED, STOPPED

log = logging.getLogger("confbot.voice")

HEARTBEAT_SECONDS = 10.0


class ServiceRun:
    def __init__(self, ctx, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.ctx = ctx                      # bot.service.context.IvrContext with a store
        self.heartbeat_seconds = heartbeat_seconds
        self.run: int | None = None
        self._task: asyncio.Task | None = None

    @classmethod
    def for_context(cls, ctx) -> "ServiceRun | None":
        """None without call records (no IVR context or no store): the stack then prefixes its
        ids with the start time."""
        return cls(ctx) if ctx is not None and getattr(ctx, "cdr", None) is not None else None

    async def _in_store(self, fn, *args):
        return await asyncio.wrap_future(self.ctx.store_executor.submit(fn, *args))

    async def begin(self) -> str:
        """Open the run; returns the call-id prefix."""
        self.run, closed = await self._in_store(self.ctx.cdr.begin_run, self.ctx.clock())
        if closed:
            log.warning("closed %d call record(s) an earlier run left open (it did not stop "
                        "cleanly): end cause %r", closed, RESTARTED)
        log.info("service run %d: call ids call-%d-N", self.run, self.run)
        self._task = asyncio.create_task(self._beat(), name="run-heartbeat")
        return str(self.run)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self._in_store(self.ctx.cdr.heartbeat, self.run, self.ctx.clock())
            except Exception:   # noqa: BLE001 - a busy or failing store must not stop the calls
                log.exception("service run %d: heartbeat not written", self.run)

    async def end(self) -> None:
        """After the stack stopped (its call ends are queued on the store worker before this)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.run is None:
            return
        closed = await self._in_store(self.ctx.cdr.end_run, self.run, self.ctx.clock())
        if closed:
            log.warning("service run %d: %d call(s) had no reported end, closed as %r",
                        self.run, closed, STOPPED)
        self.run = None
