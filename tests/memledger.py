"""An in-memory booking ledger for tests of pure cores (STYLE lesson 12: a double that shares the
real interface). Implements `bot.booking.ledger.Ledger` with the same rules as `bot.store.sqlite.SqliteStore`:
the capacity planner `bot.booking.capacity` decides, a Message-ID seen twice returns its first booking,
PINs are unique among bookings near the window, `change` refuses unknown/cancelled/finished
bookings with the same reason strings. Must not touch files, sockets or clocks.
"""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from bot.booking.domain import Booking, BookingRequest, BookingStatus, new_pin, new_pin_pair, new_reference
from bot.booking.capacity import Fits, Hold, assess, search
from bot.booking.ledger import Full, Refused, Reserved, ReserveResult
from bot.config.settings import CapacitySettings


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(timezone.utc)


class MemoryLedger:
    def __init__(self, *, seed: int = 0, pin_margin_minutes: int = 60) -> None:
        self._bookings: dict[str, Booking] = {}
        self._by_message: dict[str, str] = {}
        self._rng = random.Random(seed)
        self._pin_margin = timedelta(minutes=pin_margin_minutes)

    # -- Ledger -----------------------------------------------------------------------------

    def reserve(self, request: BookingRequest, now: datetime, capacity: CapacitySettings,
                pin_length: int, source_message_id: str | None = None) -> ReserveResult:
        if source_message_id is not None and source_message_id in self._by_message:
            return Reserved(self._bookings[self._by_message[source_message_id]])
        start, end = _utc(request.start), _utc(request.end)
        verdict = assess(start, end, request.participants, self._holds(), now, capacity)
        if not isinstance(verdict, Fits):
            return self._complete(verdict, start, end, request.participants, now, capacity, None)
        participant_pin, moderator_pin = new_pin_pair(pin_length, self._pins_near(start, end),
                                                      self._rng.randrange)
        booking = Booking(
            reference=self._free_reference(), organizer=request.organizer, title=request.title,
            start=start, end=end, participants=request.participants,
            participant_pin=participant_pin, moderator_pin=moderator_pin,
            dial_in_mode=request.dial_in_mode, invitees=tuple(request.invitees),
            language=request.language, invite_uid=request.invite_uid,
            invite_sequence=request.invite_sequence, created=_utc(now))
        self._bookings[booking.reference] = booking
        if source_message_id is not None:
            self._by_message[source_message_id] = booking.reference
        return Reserved(booking)

    def change(self, reference: str, now: datetime, capacity: CapacitySettings, *,
               start: datetime | None = None, end: datetime | None = None,
               participants: int | None = None, title: str | None = None,
               invitees: tuple[str, ...] | None = None, invite_sequence: int | None = None,
               updated_by: str | None = None) -> ReserveResult:
        old = self._bookings.get(reference)
        if old is None:
            return Refused("unknown_reference", f"There is no booking {reference}.")
        if not old.active:
            return Refused("cancelled", f"Booking {old.reference} is cancelled.")
        if old.end <= now:
            return Refused("past", f"Booking {old.reference} is already over.")
        new_start = _utc(start) if start is not None else old.start
        new_end = _utc(end) if end is not None else new_start + (old.end - old.start)
        count = old.participants if participants is None else participants
        verdict = assess(new_start, new_end, count, self._holds(exclude=reference), now, capacity,
                         check_past=new_start != old.start)
        if not isinstance(verdict, Fits):
            return self._complete(verdict, new_start, new_end, count, now, capacity, reference)
        taken = self._pins_near(new_start, new_end, exclude=reference)
        length = len(old.participant_pin)
        participant_pin = old.participant_pin
        if participant_pin in taken:
            participant_pin = new_pin(length, taken | {old.moderator_pin}, self._rng.randrange)
        moderator_pin = old.moderator_pin
        if moderator_pin in taken:
            moderator_pin = new_pin(length, taken | {participant_pin}, self._rng.randrange)
        updated = old.with_changes(
            start=new_start, end=new_end, participants=count, participant_pin=participant_pin,
            moderator_pin=moderator_pin, title=old.title if title is None else title,
            invitees=old.invitees if invitees is None else tuple(invitees),
            invite_sequence=old.invite_sequence if invite_sequence is None else invite_sequence,
            updated_by=updated_by)
        self._bookings[reference] = updated
        return Reserved(updated)

    def cancel(self, reference: str, source_message_id: str | None = None) -> Booking | None:
        old = self._bookings.get(reference)
        if old is None or not old.active:
            return old
        cancelled = old.with_changes(status=BookingStatus.CANCELLED, cancelled_by=source_message_id)
        self._bookings[reference] = cancelled
        return cancelled

    def get(self, reference: str) -> Booking | None:
        return self._bookings.get(reference)

    def find_by_pin(self, pin: str, at: datetime,
                    early_minutes: int = 0) -> tuple[Booking, bool] | None:
        early = timedelta(minutes=early_minutes)
        hits = [(b, pin == b.moderator_pin) for b in self._bookings.values()
                if b.active and pin in (b.participant_pin, b.moderator_pin)
                and b.start - early <= at < b.end]
        if not hits:
            return None
        return min(hits, key=lambda hit: abs((hit[0].start - at).total_seconds()))

    def lookup_pin(self, pin: str, near: datetime,
                   margin: timedelta) -> tuple[Booking, bool] | None:
        hits = [(b, pin == b.moderator_pin) for b in self._bookings.values()
                if b.active and pin in (b.participant_pin, b.moderator_pin)
                and b.start - margin <= near < b.end + margin]
        if not hits:
            return None

        def distance(b: Booking) -> float:
            if b.start <= near < b.end:
                return 0.0
            return min(abs((b.start - near).total_seconds()), abs((near - b.end).total_seconds()))
        return min(hits, key=lambda hit: distance(hit[0]))

    def list(self, since: datetime | None = None,
             include_cancelled: bool = False) -> list[Booking]:
        rows = [b for b in self._bookings.values()
                if (include_cancelled or b.active) and (since is None or b.end > since)]
        return sorted(rows, key=lambda b: (b.start, b.reference))

    def find_by_invite_uid(self, uid: str) -> Booking | None:
        hits = [b for b in self._bookings.values() if b.invite_uid == uid]
        return max(hits, key=lambda b: (b.active, b.created or datetime.min.replace(tzinfo=timezone.utc)),
                   default=None)

    def booking_for_message(self, message_id: str) -> Booking | None:
        reference = self._by_message.get(message_id)
        return None if reference is None else self._bookings[reference]

    # -- test helpers -------------------------------------------------------------------------

    def put(self, booking: Booking) -> None:
        """Place a booking as it is, without checks (arranging a test's world)."""
        self._bookings[booking.reference] = booking

    # -- internals ----------------------------------------------------------------------------

    def _holds(self, exclude: str | None = None) -> list[Hold]:
        return [Hold(b.start, b.end, b.participants) for b in self._bookings.values()
                if b.active and b.reference != exclude]

    def _pins_near(self, start: datetime, end: datetime, exclude: str | None = None) -> set[str]:
        lo, hi = start - self._pin_margin, end + self._pin_margin
        return {pin for b in self._bookings.values()
                if b.active and b.reference != exclude and b.overlaps(lo, hi)
                for pin in (b.participant_pin, b.moderator_pin)}

    def _complete(self, verdict, start, end, participants, now, capacity, exclude) -> ReserveResult:
        if not isinstance(verdict, Full):
            return verdict
        holds = self._holds(exclude)
        return replace(verdict, proposals=search(lambda window: holds, start, end, participants,
                                                 now, capacity))

    def _free_reference(self) -> str:
        while True:
            reference = new_reference(self._rng.choice)
            if reference not in self._bookings:
                return reference
