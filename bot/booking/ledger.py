"""The booking ledger interface (pure): what the mail agent and the IVR ask of bookings.

`bot.store.sqlite.SqliteStore` implements it over SQLite (atomic reservation inside one
`BEGIN IMMEDIATE` transaction); tests of pure cores may use an in-memory implementation that
shares this interface (STYLE lesson 12). Results are values, never exceptions, for expected
outcomes (full, unknown reference, not the organizer).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.booking.domain import Booking, BookingRequest
from bot.config.settings import CapacitySettings


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Reserved:
    booking: Booking


@dataclass(frozen=True, slots=True)
class Full:
    """Not enough lines (or room size) for the window. `proposals`: up to 3 nearest free slots
    of the same length; `free_lines`: the fewest lines free at any instant of the window."""
    reason: str                 # "lines" (a room too big for the rules is Refused instead)
    free_lines: int
    proposals: tuple[Slot, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """The request breaks a rule: reason is one of "past", "too_long", "too_far_ahead",
    "too_short", "too_many_participants", "no_participants" (new bookings and changes), or
    "unknown_reference", "cancelled" (changes); detail is a human sentence."""
    reason: str
    detail: str


ReserveResult = Reserved | Full | Refused


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A journal row: every inbound mail is kept, raw, before it is acted upon."""
    id: int
    received: datetime
    transport: str              # "smtp" | "imap" | "cli"
    message_id: str | None
    sender: str | None
    raw: bytes
    outcome: str | None         # None until handled, then e.g. "booked CB-7K2Q9", "refused: past"


class Ledger(Protocol):
    def reserve(self, request: BookingRequest, now: datetime, capacity: CapacitySettings,
                pin_length: int, source_message_id: str | None = None) -> ReserveResult: ...

    def change(self, reference: str, now: datetime, capacity: CapacitySettings, *,
               start: datetime | None = None, end: datetime | None = None,
               participants: int | None = None, title: str | None = None,
               invitees: tuple[str, ...] | None = None, invite_sequence: int | None = None,
               updated_by: str | None = None) -> ReserveResult:
        """Move/resize a booking (capacity re-checked, reference and PINs kept unless a PIN
        collides); a calendar update also sets its title, invitees and SEQUENCE, and
        `updated_by` (the updating mail's key)."""
        ...

    def find_by_invite_uid(self, uid: str) -> Booking | None:
        """The booking made from the invitation with this UID (the active one first)."""
        ...

    def cancel(self, reference: str, source_message_id: str | None = None) -> Booking | None:
        """Cancel and return the booking; remember `source_message_id` (the cancelling mail's
        key) as `Booking.cancelled_by`. Unknown: None. Already cancelled: returned unchanged."""
        ...

    def get(self, reference: str) -> Booking | None: ...

    def find_by_pin(self, pin: str, at: datetime, early_minutes: int = 0) -> tuple[Booking, bool] | None:
        """The booking whose participant or moderator PIN is `pin` and whose window (opened
        `early_minutes` early) contains `at`; the bool is True for the moderator PIN."""
        ...

    def lookup_pin(self, pin: str, near: datetime, margin: timedelta) -> tuple[Booking, bool] | None:
        """The booking with this PIN nearest to `near` whose window widened by `margin` on both
        sides contains `near` — lets the IVR tell "not started yet" / "already over" from a
        wrong PIN."""
        ...

    def list(self, since: datetime | None = None, include_cancelled: bool = False) -> list[Booking]: ...

    def booking_for_message(self, message_id: str) -> Booking | None:
        """The booking a given inbound Message-ID (or, for a mail without one, its synthetic
        key, `mail.mime.message_key`) already produced (same mail seen twice)."""
        ...
