"""Keeps the conference bridge equal to the mixer core: the service side of reconciliation.

Owns when to reconcile and what is counted and logged. The bridge can drift from the core
(a route diff refused, a port gone or renewed behind the core's back), so, like a Kubernetes
controller's level-triggered loop, this asks the SIP adapter to compare and repair: after every
failure report (`RoutesFailed`, a lost `ApplyRoutes`/`Reconcile`) and every `interval` seconds.
One `Reconcile(desired)` is one bridge read on the owner thread; the adapter applies the repair
(`bot.conference.reconcile.repair`) in the same step and answers `BridgeReconciled`. Runs on the asyncio
loop. Must not import pjsua2 or decide routes (the core's routes are what it asks for).

Why one reconcile at a time is enough: the owner thread posts events in the order it runs
commands, so a failure reported while a reconcile is in flight came from a batch that ran before
it, and that reconcile already sees (and repairs) its result.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.conference.mixer import Route
from bot.sip.events import (ApplyRoutes, BridgeReconciled, Command, CommandFailed, Reconcile,
                           RoutesFailed)

log = logging.getLogger("confbot.bridge")

RECONCILE_SECONDS = 30.0   # the periodic check: cheap (one read of the bridge), rarely needed
RETRY_SECONDS = 1.0        # after a failure: lets a racing hangup land first, and rate-limits
LOGGED = 8                 # repairs named in one log line


class BridgeWatch:
    """`on_event` takes the adapter's reports; the counters are for tests and metrics."""

    def __init__(self, desired: Callable[[], frozenset[Route]],
                 submit: Callable[[Command], None], *,
                 interval: float | None = RECONCILE_SECONDS, retry: float = RETRY_SECONDS) -> None:
        self._desired = desired
        self._submit = submit
        self.interval = interval
        self.retry = retry
        self.reconciles = 0      # reconciles answered
        self.repaired = 0        # repair diffs the bridge took
        self.failed_ops = 0      # route diffs the bridge refused (batches and repairs)
        self.unreachable = 0     # desired routes without a port in the bridge, per reconcile
        self.last: BridgeReconciled | None = None
        self._in_flight = False
        self._again = False
        self._delay = retry      # doubles while repairs keep failing, up to the interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self.interval:
            self._task = loop.create_task(self._periodic())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._loop = None

    def check(self) -> None:
        """Reconcile now (or right after the one in flight, whose read may predate the cause)."""
        if self._in_flight:
            self._again = True
            return
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._in_flight = True
        self._submit(Reconcile(self._desired()))

    def on_event(self, event: RoutesFailed | BridgeReconciled | CommandFailed) -> None:
        match event:
            case RoutesFailed(failed):
                self.failed_ops += len(failed)
                self._soon()
            case BridgeReconciled(repairs, failed, unreachable):
                self._answered(event, repairs, failed, unreachable)
            case CommandFailed(Reconcile()):
                log.warning("bridge reconcile failed: %s", event.error)
                self._in_flight = False
                self._soon()
            case CommandFailed(ApplyRoutes()):
                log.warning("route batch failed: %s", event.error)
                self._soon()

    def _answered(self, event: BridgeReconciled, repairs, failed, unreachable) -> None:
        self._in_flight = False
        self.reconciles += 1
        self.last = event
        took = len(repairs) - len(failed)
        self.repaired += took
        self.failed_ops += len(failed)
        self.unreachable += len(unreachable)
        if repairs:
            shown = ", ".join(map(str, repairs[:LOGGED])) + (" ..." if len(repairs) > LOGGED else "")
            log.warning("bridge drifted from the core: repaired %d route(s)%s: %s", took,
                        f" ({len(failed)} failed again)" if failed else "", shown)
        if unreachable:
            log.info("bridge reconcile: %d route(s) wanted by the core have no port in the "
                     "bridge, e.g. %s", len(unreachable), unreachable[0])
        # a repair that keeps failing (a port pjmedia refuses) is retried ever less often
        self._delay = min(self._delay * 2, self.interval or 60.0) if failed else self.retry
        if self._again:
            self._again = False
            self.check()
        elif failed:
            self._soon()

    def _soon(self) -> None:
        """A reconcile `retry` seconds from now (later while repairs fail), unless one is in flight (it covers this) or
        already due."""
        if self._in_flight or self._retry is not None or self._loop is None:
            return
        self._retry = self._loop.call_later(self._delay, self._retry_due)

    def _retry_due(self) -> None:
        self._retry = None
        self.check()

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self._in_flight:
                self.check()
