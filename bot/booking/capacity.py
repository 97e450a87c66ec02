"""The capacity planner (pure): does a booking fit, and if not, which nearby slots do?

Owns the booking rules (too short/long/far ahead, in the past, participant bounds), the line
arithmetic over overlapping reservations, and the search for the nearest free slots. It takes
the reservations already held (`Hold`s, fetched by the store) and returns values: `Fits`,
`Full` (from `bot.booking.ledger`) or `Refused`. Must not touch sqlite, sockets, threads or clocks;
`now` is always passed in. The store decides *which* rows to hand over (by index); this
module never assumes it got exactly the overlapping ones and filters again.

Theory of operation. The lines held over time form a step function that only changes at the
start/end points of holds. A window [start, end) fits `n` participants iff the highest step
inside the window plus `n` stays within `total_lines`. For proposals, the same step function is
turned into maximal "free intervals" where `n` more lines fit; an aligned candidate start `s`
fits iff [s, s + duration) lies inside one free interval (one bisect per candidate). Candidates
are visited nearest-first outward from the requested start, so the first three hits are the
three nearest free slots within the searched horizon.
"""
from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

from bot.booking import domain as booking
from bot.booking.ledger import Full, Refused, Slot
from bot.config.settings import CapacitySettings

MIN_MINUTES = 5
PROPOSAL_COUNT = 3
# A start this little in the past still books (defined with the booking domain, so the mail
# parser applies the same grace).
PAST_GRACE = booking.PAST_GRACE
# Proposal search widens through these horizons (± around the requested start); each step
# needs the holds of its horizon only, so the common case fetches a day, not the whole year.
HORIZONS = (timedelta(days=1), timedelta(days=7), timedelta(days=31))

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class Reason(enum.StrEnum):
    """Why a request is refused (the `Refused.reason` strings of bot.booking.ledger)."""
    PAST = "past"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    TOO_FAR_AHEAD = "too_far_ahead"
    TOO_MANY_PARTICIPANTS = "too_many_participants"
    NO_PARTICIPANTS = "no_participants"


@dataclass(frozen=True, slots=True)
class Hold:
    """Lines held by one active booking over [start, end)."""
    start: datetime
    end: datetime
    lines: int


@dataclass(frozen=True, slots=True)
class Fits:
    """The request fits. `free_lines`: lines still free at the busiest instant once it is booked."""
    free_lines: int


Verdict = Fits | Full | Refused


def validate(start: datetime, end: datetime, participants: int, now: datetime,
             capacity: CapacitySettings, *, check_past: bool = True) -> Refused | None:
    """The booking rules that need no knowledge of other bookings. `check_past=False` is for a
    change to a booking that has already begun (its start is not being moved)."""
    _require_aware(start, end, now)
    minutes = booking.elapsed(start, end).total_seconds() / 60   # real minutes, not wall clock
    if participants < 1:
        return Refused(Reason.NO_PARTICIPANTS, "A conference needs at least one participant.")
    if participants > capacity.room_max or participants > capacity.total_lines:
        limit = min(capacity.room_max, capacity.total_lines)
        return Refused(Reason.TOO_MANY_PARTICIPANTS,
                       f"{participants} participants asked for; a conference holds at most {limit}.")
    if minutes < MIN_MINUTES:
        return Refused(Reason.TOO_SHORT,
                       f"A conference lasts at least {MIN_MINUTES} minutes.")
    if minutes > capacity.max_minutes:
        return Refused(Reason.TOO_LONG,
                       f"{minutes:.0f} minutes asked for; a conference lasts at most "
                       f"{capacity.max_minutes} minutes.")
    if check_past and start < now - PAST_GRACE:
        return Refused(Reason.PAST, "The requested start time is in the past.")
    if start > now + timedelta(days=capacity.max_days_ahead):
        return Refused(Reason.TOO_FAR_AHEAD,
                       f"Conferences can be booked at most {capacity.max_days_ahead} days ahead.")
    return None


def peak(holds: Iterable[Hold], start: datetime, end: datetime) -> int:
    """The most lines held at any instant of [start, end) (0 when nothing overlaps)."""
    events: list[tuple[datetime, int]] = []
    for h in holds:
        if h.start < end and start < h.end and h.lines > 0:
            events.append((max(h.start, start), h.lines))
            events.append((h.end, -h.lines))
    # At equal instants ends (-) sort before starts (+): windows are half-open, so a booking
    # ending at 10:00 and one starting at 10:00 never share a line.
    events.sort()
    level = best = 0
    for when, delta in events:
        if when >= end:
            break
        level += delta
        best = max(best, level)
    return best


def assess(start: datetime, end: datetime, participants: int, holds: Iterable[Hold],
           now: datetime, capacity: CapacitySettings, *, check_past: bool = True) -> Verdict:
    """Rules first, then lines. A `Full` comes back without proposals; the caller fetches a
    horizon (`proposal_horizons`) and fills them in with `propose`."""
    refused = validate(start, end, participants, now, capacity, check_past=check_past)
    if refused is not None:
        return refused
    free = capacity.total_lines - peak(holds, start, end)
    if participants > free:
        return Full("lines", max(free, 0), ())
    return Fits(free - participants)


def proposal_horizons(start: datetime, end: datetime, now: datetime,
                      capacity: CapacitySettings) -> tuple[Slot, ...]:
    """Widening windows whose holds the store fetches, one after another, until `propose`
    finds enough slots. The last one covers every allowed start (now .. max_days_ahead)."""
    start, end = _in_utc(start), _in_utc(end)   # arithmetic on elapsed time, not wall clock
    duration = end - start
    earliest, latest = _start_bounds(now, capacity)
    windows = []
    for h in (*HORIZONS, None):
        lo = earliest if h is None else max(earliest, start - h)
        hi = latest if h is None else min(latest, start + h)
        if lo > hi:
            continue
        window = Slot(lo, hi + duration)
        if not windows or windows[-1] != window:
            windows.append(window)
        if lo == earliest and hi == latest:
            break
    return tuple(windows)


def propose(holds: Iterable[Hold], start: datetime, end: datetime, participants: int,
            now: datetime, capacity: CapacitySettings, window: Slot,
            count: int = PROPOSAL_COUNT) -> tuple[Slot, ...]:
    """Up to `count` free slots as long as [start, end), nearest to `start` (earlier wins a
    tie), aligned to `slot_step_minutes`, not before `now`, not beyond `max_days_ahead`, and
    inside `window` (whose holds must all be in `holds`). Returned in chronological order."""
    _require_aware(start, end, now)
    start, end = _in_utc(start), _in_utc(end)   # arithmetic on elapsed time, not wall clock
    duration = end - start
    if duration <= timedelta(0) or participants > capacity.total_lines:
        return ()
    earliest, latest = _start_bounds(now, capacity)
    lo = max(earliest, window.start)
    hi = min(latest, window.end - duration)
    if lo > hi:
        return ()
    intervals = free_intervals(holds, participants, capacity.total_lines, window.start, window.end)
    starts = [a for a, _ in intervals]
    found = []
    for s in _aligned_outward(start, lo, hi, capacity.slot_step_minutes):
        i = bisect_right(starts, s) - 1
        if i >= 0 and intervals[i][1] >= s + duration:
            found.append(Slot(s, s + duration))
            if len(found) == count:
                break
    return tuple(sorted(found, key=lambda slot: slot.start))


def search(fetch: Callable[[Slot], Iterable[Hold]], start: datetime, end: datetime,
           participants: int, now: datetime, capacity: CapacitySettings,
           count: int = PROPOSAL_COUNT) -> tuple[Slot, ...]:
    """The nearest free slots, widening the horizon until `count` are found or every allowed
    start was tried. `fetch(window)` returns the holds overlapping `window` (the store's
    indexed query); only as many windows are fetched as needed."""
    found: tuple[Slot, ...] = ()
    for window in proposal_horizons(start, end, now, capacity):
        found = propose(fetch(window), start, end, participants, now, capacity, window, count)
        if len(found) == count:
            break
    return found


def free_intervals(holds: Iterable[Hold], participants: int, total_lines: int,
                   lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Maximal intervals within [lo, hi) where `participants` more lines fit."""
    budget = total_lines - participants
    deltas: dict[datetime, int] = {}
    level = 0
    for h in holds:
        if h.start < hi and lo < h.end and h.lines > 0:
            if h.start <= lo:
                level += h.lines
            else:
                deltas[h.start] = deltas.get(h.start, 0) + h.lines
            if h.end < hi:
                deltas[h.end] = deltas.get(h.end, 0) - h.lines
    out: list[tuple[datetime, datetime]] = []
    open_at = lo if level <= budget else None
    for when in sorted(deltas):
        level += deltas[when]
        if level <= budget and open_at is None:
            open_at = when
        elif level > budget and open_at is not None:
            if when > open_at:
                out.append((open_at, when))
            open_at = None
    if open_at is not None and open_at < hi:
        out.append((open_at, hi))
    return out


def _start_bounds(now: datetime, capacity: CapacitySettings) -> tuple[datetime, datetime]:
    """Earliest and latest aligned start a proposal may have."""
    step = capacity.slot_step_minutes * 60
    now_s = _seconds(now)
    first = -(-now_s // step) * step            # ceil: never in the past
    limit = _seconds(now + timedelta(days=capacity.max_days_ahead))
    last = (limit // step) * step               # floor: never beyond max_days_ahead
    return _at(first), _at(last)


def _aligned_outward(centre: datetime, lo: datetime, hi: datetime,
                     step_minutes: int) -> Iterator[datetime]:
    """Aligned instants in [lo, hi] ordered by distance from `centre`, earlier first on ties.
    Alignment is to the UTC epoch, i.e. to the wall clock in every whole-quarter-hour zone."""
    step = step_minutes * 60
    c, first, last = _seconds(centre), _seconds(lo), _seconds(hi)
    first = -(-first // step) * step
    after = max(-(-c // step) * step, first)    # first aligned instant at/after the centre
    before = min(after - step, (last // step) * step)
    while True:
        more_before, more_after = before >= first, after <= last
        if not (more_before or more_after):
            return
        if more_before and (not more_after or c - before <= after - c):
            yield _at(before)
            before -= step
        else:
            yield _at(after)
            after += step


def _seconds(dt: datetime) -> int:
    delta = dt - _EPOCH
    return delta.days * 86400 + delta.seconds


def _at(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def _require_aware(*stamps: datetime) -> None:
    for dt in stamps:
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"naive datetime {dt!r}: the planner needs timezone-aware times")


def _in_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
