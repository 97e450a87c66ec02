"""The booking domain (pure): what a booking is, its reference and its PINs.

Owns the value types every other part speaks (the mail parser produces a `BookingRequest`,
the capacity planner and the store turn it into a `Booking`, the IVR checks PINs against it).
Must not touch sockets, files, clocks or third-party libraries; randomness comes from
`secrets` or from an injected `random.Random`-like object so tests can be deterministic.
"""
from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone, tzinfo

# Crockford-style alphabet without 0/O, 1/I/L, U: unambiguous when read out on the phone.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PREFIX = "CB-"
REFERENCE_LENGTH = 5
# A mail saying "now, 10:00" often arrives a minute or two late; a start this little in the
# past still books (the window is used as given) instead of being refused as "past". The mail
# parser and the capacity planner (`bot.booking.capacity.PAST_GRACE`) share this one value.
PAST_GRACE = timedelta(minutes=5)
# Two bookings overlapping within this margin never share a PIN, so a caller joining early
# (PinSettings.early_join_minutes, which must not exceed it) still finds exactly one booking.
PIN_UNIQUE_MARGIN_MINUTES = 60


def utc_add(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta` in real (elapsed) time, expressed in `moment`'s zone.

    Python adds a timedelta to an aware datetime on the wall clock: 01:00 CET + 3 h on the
    night the clocks spring forward gives 04:00 CEST, which is only 2 hours later. Adding in
    UTC and converting back gives 05:00 CEST, three real hours."""
    zone = moment.tzinfo
    return (moment.astimezone(timezone.utc) + delta).astimezone(zone)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """`end - start` in real time. Two aware datetimes sharing one tzinfo object are
    subtracted on the wall clock by Python (DST nights come out an hour off); UTC is not."""
    return end.astimezone(timezone.utc) - start.astimezone(timezone.utc)


class DialInMode(enum.Enum):
    """B8: who pays. ALL_PREMIUM: everyone dials the premium (090x) number.
    INITIATOR_PAYS: the organizer dials premium, everyone else the toll-free (080x) number."""
    ALL_PREMIUM = "all_premium"
    INITIATOR_PAYS = "initiator_pays"


class BookingStatus(enum.Enum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """What a booking mail asks for, after parsing. Times are timezone-aware."""
    start: datetime
    end: datetime
    participants: int
    title: str
    organizer: str
    invitees: tuple[str, ...] = ()
    language: str = "en"
    dial_in_mode: DialInMode = DialInMode.ALL_PREMIUM
    invite_uid: str | None = None  # UID of a calendar invitation (for the METHOD:REPLY)
    invite_sequence: int = 0       # that invitation's SEQUENCE (RFC 5546 3.2.2: updates)
    # A zone the mail named for its times ("16:00 UTC"); the reply then shows both clocks.
    written_zone: tzinfo | None = None

    @property
    def duration(self) -> timedelta:
        return elapsed(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Booking:
    """A reserved conference. `participants` lines are held for [start, end)."""
    reference: str
    organizer: str
    title: str
    start: datetime
    end: datetime
    participants: int
    participant_pin: str
    moderator_pin: str
    dial_in_mode: DialInMode = DialInMode.ALL_PREMIUM
    invitees: tuple[str, ...] = ()
    language: str = "en"
    status: BookingStatus = BookingStatus.CONFIRMED
    invite_uid: str | None = None
    created: datetime | None = None
    sequence: int = 0  # bumped on every change (iCalendar SEQUENCE)
    # The key (Message-ID, or a digest of a mail without one) of the mail that cancelled it:
    # a replay of that same mail after a crash resends the cancellation instead of refusing.
    cancelled_by: str | None = None
    # A calendar invitation's SEQUENCE (RFC 5546): an update must carry a higher one.
    invite_sequence: int = 0
    # The key of the mail that last changed it (a calendar update): its replay after a crash
    # resends the change instead of calling it a replay.
    updated_by: str | None = None

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end

    @property
    def active(self) -> bool:
        return self.status is BookingStatus.CONFIRMED

    def with_changes(self, **changes) -> "Booking":
        return replace(self, sequence=self.sequence + 1, **changes)


def new_reference(choice=secrets.choice) -> str:
    """A short reference like ``CB-7K2Q9`` (30^5 ≈ 24 million values)."""
    return REFERENCE_PREFIX + "".join(choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))


def normalize_reference(text: str) -> str | None:
    """Accept ``cb-7k2q9``, ``CB 7K2Q9``, ``CB7K2Q9``; return the canonical form or None."""
    s = "".join(ch for ch in text.upper() if ch.isalnum())
    if not s.startswith("CB"):
        return None
    body = s[2:]
    if len(body) != REFERENCE_LENGTH or any(ch not in REFERENCE_ALPHABET for ch in body):
        return None
    return REFERENCE_PREFIX + body


def new_pin(length: int, taken: frozenset[str] | set[str] = frozenset(),
            randbelow=secrets.randbelow) -> str:
    """A PIN of `length` digits from `secrets`, not in `taken`, without a leading zero run
    that phones might drop, and not a trivial pattern (all one digit, straight runs)."""
    if length < 6:
        raise ValueError("PINs have at least 6 digits")
    for _ in range(10_000):
        pin = str(randbelow(9) + 1) + "".join(str(randbelow(10)) for _ in range(length - 1))
        if pin in taken or _trivial(pin):
            continue
        return pin
    raise RuntimeError("no free PIN left in this time window; raise the PIN length")


def _trivial(pin: str) -> bool:
    if len(set(pin)) == 1:
        return True
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
    return steps in ({1}, {-1})


def new_pin_pair(length: int, taken: frozenset[str] | set[str] = frozenset(),
                 randbelow=secrets.randbelow) -> tuple[str, str]:
    """(participant PIN, moderator PIN): distinct, and neither in `taken` (the PINs of every
    booking that overlaps this one's window), so a PIN names exactly one booking at any instant."""
    participant = new_pin(length, taken, randbelow)
    moderator = new_pin(length, set(taken) | {participant}, randbelow)
    return participant, moderator
