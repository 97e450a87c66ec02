"""Abuse guards shared by all calls (pure; time is always passed in).

Owns `PinGuard` (brute-force lockout for PIN entry: failures counted per caller ID and globally
in sliding windows) and `DialOutGuard` (toll-fraud limits for dial-outs: per call, per booking,
per caller, and which numbers may be dialled). One instance of each lives for the whole service
and is handed to every `CallFlow` by the composition root; they keep counts in memory only.
The locks themselves outlive the process through the adapter (`bot.service.lockouts`): it stores each
`Lockout` that `failed` returns, `restore`s the running ones at the next start (so waiting for
a restart does not lift a lock) and calls `clear` / `clear_global` when an admin lifts one.
Counted failures that have not yet locked anybody are forgotten by a restart (acceptable: a
restart is rarer than the windows are long).
Must not read clocks, files or config: limits arrive as frozen dataclasses.

Caller IDs are whatever the network presents. Withheld IDs ("", "anonymous") share one bucket:
a brute-forcer hiding its number locks out only other hidden callers, never everybody — unless
the global limit trips, and then callers who recently entered a good PIN still get in.
"""
from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

ANONYMOUS = "anonymous"


def caller_key(caller: str) -> str:
    c = caller.strip().lower()
    return ANONYMOUS if c in ("", ANONYMOUS, "unknown", "restricted", "private") else c


# ---- PIN brute force ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PinLimits:
    caller_failures: int = 5                       # this many wrong PINs from one caller ...
    caller_window: timedelta = timedelta(minutes=15)   # ... within this window ...
    caller_lock: timedelta = timedelta(minutes=15)     # ... lock that caller this long
    global_failures: int = 50                      # this many from everybody ...
    global_window: timedelta = timedelta(minutes=1)
    global_lock: timedelta = timedelta(minutes=5)      # ... everybody not known-good waits
    known_good: timedelta = timedelta(hours=24)    # a good PIN makes a caller ID known-good


class Admission(enum.Enum):
    ALLOWED = "allowed"
    CALLER_LOCKED = "caller_locked"
    GLOBAL_LOCKED = "global_locked"


class Scope(enum.Enum):
    CALLER = "caller"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Lockout:
    """The record of a lock that has just started (log it; the flow turns it into a Log)."""
    scope: Scope
    caller: str | None
    failures: int
    since: datetime
    until: datetime

    @property
    def message(self) -> str:
        who = f"caller {self.caller}" if self.scope is Scope.CALLER else "all unknown callers"
        return (f"PIN lockout: {who} locked until {self.until.isoformat()} after "
                f"{self.failures} wrong PINs")


class PinGuard:
    def __init__(self, limits: PinLimits = PinLimits()) -> None:
        self.limits = limits
        self._failures: dict[str, deque[datetime]] = {}
        self._global: deque[datetime] = deque()
        self._locked: dict[str, datetime] = {}
        self._global_until: datetime | None = None
        self._good: dict[str, datetime] = {}

    def admit(self, caller: str, at: datetime) -> Admission:
        key = caller_key(caller)
        until = self._locked.get(key)
        if until is not None and at < until:
            return Admission.CALLER_LOCKED
        if self._global_until is not None and at < self._global_until and not self._known_good(key, at):
            return Admission.GLOBAL_LOCKED
        return Admission.ALLOWED

    def failed(self, caller: str, at: datetime) -> Lockout | None:
        """Count one wrong PIN; return the lock this failure starts, if any."""
        lim, key = self.limits, caller_key(caller)
        mine = self._failures.setdefault(key, deque())
        _slide(mine, at - lim.caller_window)
        mine.append(at)
        _slide(self._global, at - lim.global_window)
        self._global.append(at)
        self._sweep(at)
        if len(mine) >= lim.caller_failures and not (key in self._locked and at < self._locked[key]):
            self._locked[key] = at + lim.caller_lock
            return Lockout(Scope.CALLER, key, len(mine), at, at + lim.caller_lock)
        global_active = self._global_until is not None and at < self._global_until
        if len(self._global) >= lim.global_failures and not global_active:
            self._global_until = at + lim.global_lock
            return Lockout(Scope.GLOBAL, None, len(self._global), at, self._global_until)
        return None

    def succeeded(self, caller: str, at: datetime) -> None:
        key = caller_key(caller)
        self._failures.pop(key, None)
        if key != ANONYMOUS:
            self._good[key] = at

    def restore(self, lock: Lockout) -> None:
        """Take over a lock that started earlier (in a previous run of the service)."""
        if lock.scope is Scope.CALLER:
            key = caller_key(lock.caller or "")
            self._locked[key] = max(self._locked.get(key, lock.until), lock.until)
        else:
            self._global_until = max(self._global_until or lock.until, lock.until)

    def clear(self, caller: str) -> bool:
        """Lift a caller's lock (an admin's decision) and forget its counted wrong PINs, so it
        gets its full tries again. False when it was not locked."""
        key = caller_key(caller)
        self._failures.pop(key, None)
        return self._locked.pop(key, None) is not None

    def clear_global(self) -> bool:
        """Lift the lock of all unknown callers and forget the global count of wrong PINs."""
        was = self._global_until is not None
        self._global_until = None
        self._global.clear()
        return was

    def _known_good(self, key: str, at: datetime) -> bool:
        seen = self._good.get(key)
        return seen is not None and at - seen < self.limits.known_good

    def _sweep(self, at: datetime) -> None:
        """Forget expired state so spoofed caller IDs cannot grow memory without bound."""
        if len(self._failures) + len(self._locked) + len(self._good) < 4096:
            return
        cut = at - self.limits.caller_window
        self._failures = {k: d for k, d in self._failures.items() if d and d[-1] >= cut}
        self._locked = {k: u for k, u in self._locked.items() if u > at}
        self._good = {k: t for k, t in self._good.items() if at - t < self.limits.known_good}


def _slide(times: deque[datetime], cut: datetime) -> None:
    while times and times[0] <= cut:
        times.popleft()


# ---- dial-out toll fraud ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DialOutLimits:
    per_call: int = 3                 # dial-outs one call may start
    per_booking: int = 10             # over the booking's life (3PTY calls count per caller only)
    per_caller: int = 6               # per caller ID ...
    caller_window: timedelta = timedelta(hours=1)   # ... in this window
    min_digits: int = 3
    max_digits: int = 15              # E.164 maximum
    # International and premium-rate prefixes (German numbering plan) are refused by default.
    blocked_prefixes: tuple[str, ...] = ("00", "0900", "0137", "0138", "0180", "0190", "118",
                                         "0700", "0701")


class DialVerdict(enum.Enum):
    ALLOWED = "allowed"
    CALL_LIMIT = "call_limit"
    BOOKING_LIMIT = "booking_limit"
    CALLER_LIMIT = "caller_limit"
    NUMBER_REFUSED = "number_refused"


class DialOutGuard:
    def __init__(self, limits: DialOutLimits = DialOutLimits()) -> None:
        self.limits = limits
        self._by_booking: dict[str, int] = {}
        self._by_caller: dict[str, deque[datetime]] = {}

    def may_dial(self, caller: str, booking: str | None, at: datetime, placed_by_call: int) -> DialVerdict:
        """May this caller start another dial-out at all (asked before the number is entered)?"""
        lim = self.limits
        if placed_by_call >= lim.per_call:
            return DialVerdict.CALL_LIMIT
        if booking is not None and self._by_booking.get(booking, 0) >= lim.per_booking:
            return DialVerdict.BOOKING_LIMIT
        mine = self._by_caller.get(caller_key(caller))
        if mine is not None:
            _slide(mine, at - lim.caller_window)
            if len(mine) >= lim.per_caller:
                return DialVerdict.CALLER_LIMIT
        return DialVerdict.ALLOWED

    def number_verdict(self, number: str) -> DialVerdict:
        lim = self.limits
        if not number.isdigit() or not lim.min_digits <= len(number) <= lim.max_digits:
            return DialVerdict.NUMBER_REFUSED
        if any(number.startswith(p) for p in lim.blocked_prefixes):
            return DialVerdict.NUMBER_REFUSED
        return DialVerdict.ALLOWED

    def placed(self, caller: str, booking: str | None, at: datetime) -> None:
        if booking is not None:
            self._by_booking[booking] = self._by_booking.get(booking, 0) + 1
        self._by_caller.setdefault(caller_key(caller), deque()).append(at)
