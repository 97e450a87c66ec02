"""The end of booked conferences (pure): when a live conference is warned, extended or closed.

Owns `EndWatch`. The service feeds it, every few seconds, the current booking of each conference
that has callers (`tick`), and the store's answer to an extension it asked for
(`extension_done`); it returns what to do. Must not touch the store, clocks, calls or config
files: `bot.service.bookingwatch` reads the bookings, asks the store and tells the callers' flows.

Theory of operation, per conference (booking reference), with [conference] settings
W = warn_minutes, X = extend_minutes, M = extend_max_minutes:
    cancelled (or gone) ............................. Close(CANCELLED), once
    now ≥ end − W, not yet decided for this end:
        extended + X ≤ M ............................ TryExtend(end + X); the store re-checks
                                                      the lines: done → Extended(X), the new
                                                      end is decided again at new end − W;
                                                      refused → Warn (if W > 0)
        otherwise ................................... Warn(minutes left), if W > 0
    now ≥ end, no extension pending ................. Close(ENDED), once
A booking whose end is moved by mail is simply decided again for its new end.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.booking.domain import Booking
from bot.config.settings import ConferenceSettings


class Closing(enum.Enum):
    """Why the service ends a running conference (the flows say it: `ivr.events`)."""
    ENDED = "booking ended"              # the booked time (and any extension) is over
    CANCELLED = "conference cancelled"   # cancelled by mail or `confbot booking cancel`
    BY_MODERATOR = "ended by a moderator"   # a moderator's end key (bot.conference.owner.end)


@dataclass(frozen=True, slots=True)
class Warn:
    reference: str
    minutes: int             # until the booked end, rounded up


@dataclass(frozen=True, slots=True)
class TryExtend:
    reference: str
    end: datetime            # the new end to ask the store for (lines re-checked)
    minutes: int


@dataclass(frozen=True, slots=True)
class Extended:
    reference: str
    minutes: int


@dataclass(frozen=True, slots=True)
class Close:
    reference: str
    why: Closing


Decision = Warn | TryExtend | Extended | Close


@dataclass
class _Live:
    decided_for: datetime | None = None    # the end the warn/extend decision was made for
    extended_minutes: int = 0
    pending: TryExtend | None = None
    closed: bool = False


@dataclass
class EndWatch:
    settings: ConferenceSettings
    _live: dict[str, _Live] = field(default_factory=dict)

    def tick(self, bookings: Mapping[str, Booking | None], now: datetime) -> list[Decision]:
        """`bookings`: every conference with callers now → its booking as stored (None: gone)."""
        for gone in set(self._live) - set(bookings):
            del self._live[gone]       # nobody left: a later caller starts afresh
        out: list[Decision] = []
        for reference, booking in bookings.items():
            out += self._decide(reference, booking, self._live.setdefault(reference, _Live()), now)
        return out

    def extension_done(self, attempt: TryExtend, ok: bool, now: datetime,
                       end: datetime | None = None) -> list[Decision]:
        """The store's answer to `attempt` (`end`: the booking's end as it now stands)."""
        live = self._live.get(attempt.reference)
        if live is None or live.pending != attempt:
            return []
        live.pending = None
        if ok:
            live.extended_minutes += attempt.minutes
            return [Extended(attempt.reference, attempt.minutes)]
        return self._warning(attempt.reference, end, now)

    def _decide(self, reference: str, b: Booking | None, live: _Live,
                now: datetime) -> list[Decision]:
        if live.closed or live.pending is not None:
            return []
        if b is None or not b.active:
            live.closed = True
            return [Close(reference, Closing.CANCELLED)]
        s = self.settings
        if now >= b.end - timedelta(minutes=s.warn_minutes) and live.decided_for != b.end:
            live.decided_for = b.end
            if s.extend_max_minutes and live.extended_minutes + s.extend_minutes \
                    <= s.extend_max_minutes:
                live.pending = TryExtend(reference, b.end + timedelta(minutes=s.extend_minutes),
                                         s.extend_minutes)
                return [live.pending]
            if now < b.end:
                return self._warning(reference, b.end, now)
        if now >= b.end:
            live.closed = True
            return [Close(reference, Closing.ENDED)]
        return []

    def _warning(self, reference: str, end: datetime | None, now: datetime) -> list[Decision]:
        if not self.settings.warn_minutes or end is None or now >= end:
            return []
        return [Warn(reference, max(1, math.ceil((end - now).total_seconds() / 60)))]
