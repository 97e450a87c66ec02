"""Watches the bookings of running conferences (asyncio wiring): their end and their cancellation.

Every `interval` seconds it re-reads, from the store, the booking of each conference that has
callers — so a cancel or a change made by mail, by `confbot booking cancel` in another process,
or by an extension is seen within seconds — feeds them to the `bot.conference.endwatch.EndWatch` core and
carries out what it decides: tells the callers' flows (`ConferenceNotice`, `ConferenceClosed`:
they say it in each caller's language and hang up), asks the store to extend a booking (the
lines are re-checked in the same transaction as any booking), hangs up calls in the room that
have no flow of their own (an invitee still deciding, a referred call) and logs every step.
Must not decide anything itself, and must not touch the bridge (`bot.service.voice` does).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot.conference.endwatch import Close, EndWatch, Extended, TryExtend, Warn
from bot.booking.ledger import Reserved
from ivr import events as ev

log = logging.getLogger("confbot.voice")

INTERVAL_SECONDS = 5.0


class BookingWatch:
    def __init__(self, voice, store, interval: float = INTERVAL_SECONDS) -> None:
        self.voice, self.store, self.interval = voice, store, interval
        self.core = EndWatch(voice.settings.conference)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception:     # a failed round is logged; the next one tries again
                log.exception("booking watch")

    async def tick(self) -> None:
        self.core.settings = self.voice.settings.conference     # follows config reloads
        refs = self._live_references()
        bookings = await self._read(lambda: {r: self.store.get(r) for r in refs}) if refs else {}
        for ref, b in bookings.items():      # a booking changed by mail: its new size applies
            if b is not None and b.active:
                self.voice.members.conf.set_limit(ref, b.participants)
        now = self.voice.ivr.clock()
        decisions = self.core.tick(bookings, now)
        while decisions:
            d = decisions.pop(0)
            match d:
                case Warn(ref, minutes):
                    n = self._tell(ref, ev.ConferenceNotice(minutes))
                    log.info("conference %s ends in %d min (%d callers told)", ref, minutes, n)
                case TryExtend(ref, end, minutes):
                    try:
                        decisions += await self._extend(d, now)
                    except Exception:   # the store failed: treat it as refused, end on time
                        log.exception("conference %s: extension failed", ref)
                        decisions += self.core.extension_done(d, False, now)
                case Extended(ref, minutes):
                    n = self._tell(ref, ev.ConferenceNotice(minutes, extended=True))
                    log.info("conference %s extended by %d min (%d callers told)", ref, minutes, n)
                case Close(ref, why):
                    self._close(ref, why)

    async def _extend(self, attempt: TryExtend, now: datetime) -> list:
        capacity = self.voice.settings.capacity
        result = await asyncio.get_running_loop().run_in_executor(
            self.voice.ivr.store_executor, lambda: self.store.change(
                attempt.reference, now, capacity, end=attempt.end, keep_pins=True))
        if isinstance(result, Reserved):
            log.info("conference %s: booking extended to %s", attempt.reference,
                     result.booking.end.isoformat())
            return self.core.extension_done(attempt, True, now)
        log.info("conference %s cannot be extended (%s): it ends on time", attempt.reference,
                 getattr(result, "detail", None) or getattr(result, "reason", result))
        booking = await self._read(lambda: self.store.get(attempt.reference))
        return self.core.extension_done(attempt, False, now,
                                        booking.end if booking is not None else None)

    def _close(self, ref: str, why: ev.Closing) -> None:
        told = self._drivers(ref)
        for driver in told:
            driver.feed(ev.ConferenceClosed(why))
        others = [c for c in self.voice.rooms().get(ref, ()) if c not in {d.call for d in told}]
        for call in others:       # no flow of its own here (an invitee, a referred call)
            self.voice.hangup(call, cause=why.value)
        log.info("conference %s: %s; %d callers told, %d more hung up", ref, why.value,
                 len(told), len(others))

    def _tell(self, ref: str, event) -> int:
        drivers = self._drivers(ref)
        for driver in drivers:
            driver.feed(event)
        return len(drivers)

    def _drivers(self, ref: str) -> list:
        return [d for d in list(self.voice.drivers.values()) if _reference(d) == ref]

    def _live_references(self) -> set[str]:
        return {r for d in self.voice.drivers.values() if (r := _reference(d)) is not None}

    async def _read(self, fn):
        return await asyncio.get_running_loop().run_in_executor(self.voice.ivr.pin_executor, fn)


def _reference(driver) -> str | None:
    booking = getattr(driver.flow, "booking", None)
    return booking.reference if booking is not None and not driver.closed else None
