"""PIN lockouts that outlive the process (wiring between `ivr.guard` and `bot.store.lockouts`).

Owns `StoredPinGuard` (the service's one `PinGuard`: a lock it starts is also handed to the
keeper, which writes it to the store) and `LockoutKeeper`: at the start of the voice service it
restores every lock still running (a brute-forcer gains nothing by waiting for a restart); while
the service runs it polls the store every POLL_SECONDS for locks `confbot lockout clear` has
lifted and lifts them in the guard too. Polling, not a look-up on every "locked" answer: the
guard stays the only judge (pure, synchronous, no I/O on the event loop), and a clear takes
effect within one poll. Store calls go through the IVR context's store worker, so a lock is
written before any later poll reads. Must not decide who is locked (`ivr.guard`) or touch SQL
(`bot.store.lockouts`).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from ivr.guard import Lockout, PinGuard, PinLimits, Scope

log = logging.getLogger("confbot.voice")

POLL_SECONDS = 2.0


class StoredPinGuard(PinGuard):
    def __init__(self, limits: PinLimits, started: Callable[[Lockout], None]) -> None:
        super().__init__(limits)
        self._started = started

    def failed(self, caller: str, at: datetime) -> Lockout | None:
        lock = super().failed(caller, at)
        if lock is not None:
            self._started(lock)
        return lock


class LockoutKeeper:
    def __init__(self, limits: PinLimits, ctx, poll_seconds: float = POLL_SECONDS) -> None:
        self.ctx = ctx                        # bot.service.context.IvrContext whose store keeps locks
        self.guard = StoredPinGuard(limits, self._started)
        self.poll_seconds = poll_seconds
        self._lifted: set[int] = set()        # cleared rows already applied (or from before)
        self._task: asyncio.Task | None = None

    @classmethod
    def for_context(cls, limits: PinLimits, ctx) -> "LockoutKeeper | None":
        store = getattr(ctx, "store", None)
        return cls(limits, ctx) if hasattr(store, "lockout_started") else None

    async def _in_store(self, fn, *args):
        return await asyncio.wrap_future(self.ctx.store_executor.submit(fn, *args))

    async def start(self) -> None:
        store, now = self.ctx.store, self.ctx.clock()
        active = await self._in_store(store.active_lockouts, now)
        cleared = await self._in_store(store.cleared_lockouts, now)
        for row in active:
            self.guard.restore(Lockout(Scope(row.scope), row.caller, row.failures, row.since,
                                       row.until))
        if active:
            log.info("PIN lockouts still running, kept from before the restart: %s",
                     ", ".join(_who(r.caller) + f" until {r.until:%H:%M:%S} UTC" for r in active))
        self._lifted = {row.id for row in cleared}
        self._task = asyncio.create_task(self._poll_loop(), name="lockout-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _started(self, lock: Lockout) -> None:
        fut = self.ctx.store_executor.submit(self.ctx.store.lockout_started, lock.scope.value,
                                             lock.caller, lock.failures, lock.since, lock.until)
        fut.add_done_callback(
            lambda f: f.exception() and log.error("PIN lockout not stored: %s", f.exception()))

    async def poll(self) -> list[str]:
        """Lift in the guard what was cleared in the store since the last poll; returns who."""
        cleared = await self._in_store(self.ctx.store.cleared_lockouts, self.ctx.clock())
        lifted = []
        for row in cleared:
            if row.id in self._lifted:
                continue
            if row.scope == Scope.GLOBAL.value:
                self.guard.clear_global()
            else:
                self.guard.clear(row.caller or "")
            lifted.append(_who(row.caller))
            log.info("PIN lockout of %s lifted by %s", _who(row.caller), row.cleared_by or "?")
        # rows whose lock has run out drop out of the query; forget them here too
        self._lifted = {row.id for row in cleared}
        return lifted

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.poll()
            except Exception:   # noqa: BLE001 - a busy store must not stop the service
                log.exception("PIN lockouts: polling the store failed")


def _who(caller: str | None) -> str:
    return f"caller {caller}" if caller is not None else "all unknown callers"
