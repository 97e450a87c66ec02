"""The SQLite store (adapter over sqlite3): bookings ledger, plus (mixed in from
`bot.store.mail`) the mail journal, processed Message-IDs and the outgoing-mail queue.

Owns the database file (WAL mode, one connection per thread; the schema versions of all tables
are applied from `bot.store.schema.MIGRATIONS` on opening), the transactions: `reserve` and `change` run check + PIN allocation + write inside ONE
`BEGIN IMMEDIATE`, so two threads or processes racing for the last lines cannot both win.
The capacity arithmetic is not here: it fetches the overlapping rows by index and asks
`bot.booking.capacity`. Must not parse or compose mail, read config files or keep a clock of its own:
`now` is passed in by the caller. Times are stored as integer UTC epoch seconds and come
back as timezone-aware UTC datetimes.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from bot.booking.domain import (PIN_UNIQUE_MARGIN_MINUTES, Booking, BookingRequest, BookingStatus,
                         DialInMode, new_pin, new_pin_pair, new_reference)
from bot.booking.capacity import Fits, Hold, Verdict, assess, search
from bot.booking.ledger import Full, Refused, Reserved, ReserveResult
from bot.store.mail import Draft, MailJournal, OutgoingMail  # noqa: F401 (re-exported)
from bot.store.mail import _dt, _ts  # one epoch-seconds convention for every table
from bot.store.calls import CallRecords
from bot.store.lockouts import PinLockouts
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew
from bot.config.settings import CapacitySettings

DEFAULT_PATH = Path("var/confbot.sqlite3")
DEFAULT_PIN_MARGIN_MINUTES = PIN_UNIQUE_MARGIN_MINUTES

_BOOKING_COLUMNS = ("reference, organizer, title, start_ts, end_ts, participants, participant_pin,"
                    " moderator_pin, dial_in_mode, invitees, language, status, invite_uid,"
                    " created_ts, sequence, cancelled_by, invite_sequence, updated_by")
_ACTIVE = "status = 'confirmed'"  # literal, so the partial indexes apply


class SqliteStore(MailJournal, CallRecords, PinLockouts):
    """Implements `bot.booking.ledger.Ledger`; the journal and the outgoing queue come from
    `bot.store.mail.MailJournal`, the calls table from `bot.store.calls.CallRecords`, the PIN
    lockouts from `bot.store.lockouts.PinLockouts`, over the same connections and transactions."""

    _calls_ready = True  # the migrations create the calls table
    # PINs no booking may get: the moderators' personal PINs of config.toml (set by bot.app)
    reserved_pins: frozenset[str] = frozenset()

    def __init__(self, path: str | Path = DEFAULT_PATH, *,
                 pin_margin_minutes: int = DEFAULT_PIN_MARGIN_MINUTES,
                 busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pin_margin = pin_margin_minutes * 60
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._migrate()

    # -- connections and transactions ---------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit mode: every transaction below is explicit. check_same_thread=False
            # only so close() may close other threads' connections; each thread uses its own.
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                                   isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")   # a confirmed booking survives power loss
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute(f"BEGIN {mode}")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0 if row is None else row[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(f"{self.path} has schema version {version}; this confbot "
                                   f"knows up to {SCHEMA_VERSION}")
            for statements in MIGRATIONS[version:]:
                for sql in statements:
                    db.execute(sql)
            db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def schema_version(self) -> int:
        return self._db().execute("SELECT version FROM schema_version").fetchone()[0]

    # -- the ledger -----------------------------------------------------------------------

    def reserve(self, request: BookingRequest, now: datetime, capacity: CapacitySettings,
                pin_length: int, source_message_id: str | None = None) -> ReserveResult:
        start, end = _utc(request.start), _utc(request.end)
        with self._tx() as db:
            if source_message_id is not None:
                row = db.execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings"
                                 " WHERE source_message_id = ?", (source_message_id,)).fetchone()
                if row is not None:
                    return Reserved(_booking(row))
            verdict = assess(start, end, request.participants, self._holds(db, start, end),
                             now, capacity)
            if isinstance(verdict, Fits):
                taken = self._pins_near(db, start, end)
                participant_pin, moderator_pin = new_pin_pair(pin_length, taken)
                booking = Booking(
                    reference=self._free_reference(db), organizer=request.organizer,
                    title=request.title, start=start, end=end,
                    participants=request.participants, participant_pin=participant_pin,
                    moderator_pin=moderator_pin, dial_in_mode=request.dial_in_mode,
                    invitees=tuple(request.invitees), language=request.language,
                    invite_uid=request.invite_uid, invite_sequence=request.invite_sequence,
                    created=_utc(now))
                db.execute(f"INSERT INTO bookings ({_BOOKING_COLUMNS}, source_message_id)"
                           f" VALUES ({', '.join('?' * 19)})",
                           (*_row(booking), source_message_id))
                return Reserved(booking)
        # Proposals are searched after the write lock is released: a wide horizon may take
        # a while, and a slot proposed is a suggestion, not a hold.
        return self._complete(verdict, start, end, request.participants, now, capacity, None)

    def change(self, reference: str, now: datetime, capacity: CapacitySettings, *,
               start: datetime | None = None, end: datetime | None = None,
               participants: int | None = None, title: str | None = None,
               invitees: tuple[str, ...] | None = None, invite_sequence: int | None = None,
               updated_by: str | None = None, keep_pins: bool = False) -> ReserveResult:
        """Move, lengthen or resize a booking (lines re-checked). A PIN that the new window
        would share with another booking is replaced — or, with `keep_pins` (a running
        conference: its callers' PINs must keep working), the change is refused."""
        with self._tx() as db:
            old = self._get(db, reference)
            if old is None:
                return Refused("unknown_reference", f"There is no booking {reference}.")
            if not old.active:
                return Refused("cancelled", f"Booking {old.reference} is cancelled.")
            if old.end <= now:
                return Refused("past", f"Booking {old.reference} is already over.")
            new_start = _utc(start) if start is not None else old.start
            # Moving only the start keeps the length; an explicit end wins.
            new_end = (_utc(end) if end is not None
                       else new_start + (old.end - old.start))
            count = old.participants if participants is None else participants
            verdict = assess(new_start, new_end, count,
                             self._holds(db, new_start, new_end, exclude=old.reference),
                             now, capacity, check_past=new_start != old.start)
            if isinstance(verdict, Fits):
                taken = self._pins_near(db, new_start, new_end, exclude=old.reference)
                if keep_pins and {old.participant_pin, old.moderator_pin} & taken:
                    return Refused("pin_taken", f"A PIN of {old.reference} is taken by another "
                                                "booking in the new window.")
                pin_length = len(old.participant_pin)
                participant_pin = old.participant_pin
                if participant_pin in taken:
                    participant_pin = new_pin(pin_length, taken | {old.moderator_pin})
                moderator_pin = old.moderator_pin
                if moderator_pin in taken:
                    moderator_pin = new_pin(pin_length, taken | {participant_pin})
                updated = old.with_changes(
                    start=new_start, end=new_end, participants=count,
                    participant_pin=participant_pin, moderator_pin=moderator_pin,
                    title=old.title if title is None else title,
                    invitees=old.invitees if invitees is None else tuple(invitees),
                    invite_sequence=(old.invite_sequence if invite_sequence is None
                                     else invite_sequence), updated_by=updated_by)
                db.execute("UPDATE bookings SET start_ts = ?, end_ts = ?, participants = ?,"
                           " participant_pin = ?, moderator_pin = ?, sequence = ?, title = ?,"
                           " invitees = ?, invite_sequence = ?, updated_by = ?"
                           " WHERE reference = ?",
                           (_ts(new_start), _ts(new_end), count, participant_pin, moderator_pin,
                            updated.sequence, updated.title, json.dumps(list(updated.invitees)),
                            updated.invite_sequence, updated_by, old.reference))
                return Reserved(updated)
        return self._complete(verdict, new_start, new_end, count, now, capacity, old.reference)

    def cancel(self, reference: str, source_message_id: str | None = None, *,
               notify: Callable[[Booking], Sequence[Draft]] | None = None) -> Booking | None:
        """Cancel; `source_message_id` (the cancelling mail's key) is kept as `cancelled_by`.
        A booking already cancelled comes back unchanged (compare its `cancelled_by`).
        `notify(cancelled)`: mails to queue in the SAME transaction (`confbot booking cancel`:
        the cancellation cannot happen without its mails, nor the mails without it)."""
        with self._tx() as db:
            old = self._get(db, reference)
            if old is None or not old.active:
                return old
            cancelled = old.with_changes(status=BookingStatus.CANCELLED,
                                         cancelled_by=source_message_id)
            db.execute("UPDATE bookings SET status = ?, sequence = ?, cancelled_by = ?"
                       " WHERE reference = ?",
                       (cancelled.status.value, cancelled.sequence, source_message_id, reference))
            for draft in (notify(cancelled) if notify is not None else ()):
                self._queue(db, draft.raw, draft.mail_from, draft.rcpt_to, None)
            return cancelled

    def get(self, reference: str) -> Booking | None:
        return self._get(self._db(), reference)

    def find_by_pin(self, pin: str, at: datetime,
                    early_minutes: int = 0) -> tuple[Booking, bool] | None:
        t, early = _ts(at), early_minutes * 60
        db = self._db()
        hits = []
        for column, is_moderator in (("participant_pin", False), ("moderator_pin", True)):
            rows = db.execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE {column} = ?"
                              f" AND {_ACTIVE} AND start_ts - ? <= ? AND end_ts > ?",
                              (pin, early, t, t)).fetchall()
            hits.extend((_booking(r), is_moderator) for r in rows)
        if not hits:
            return None
        # PINs are unique within the margin, so this tie-break only matters if the margin
        # was configured below the early-join time: prefer the conference already running.
        return min(hits, key=lambda hit: abs((hit[0].start - _utc(at)).total_seconds()))

    def lookup_pin(self, pin: str, near: datetime,
                   margin: timedelta) -> tuple[Booking, bool] | None:
        """Like find_by_pin, but also a booking that starts or ended within `margin` of `near`,
        so the IVR can say "not started yet" or "already over" instead of "wrong PIN" — and a
        cancelled one (when no active booking has the PIN), so it can say "cancelled"."""
        t, m = _ts(near), int(margin.total_seconds())
        db = self._db()
        hits = []
        for column, is_moderator in (("participant_pin", False), ("moderator_pin", True)):
            rows = db.execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE {column} = ?"
                              f" AND start_ts - ? <= ? AND end_ts + ? > ?",
                              (pin, m, t, m, t)).fetchall()
            hits.extend((_booking(r), is_moderator) for r in rows)
        hits = [h for h in hits if h[0].active] or hits
        if not hits:
            return None
        return min(hits, key=lambda hit: _distance(hit[0], _utc(near)))

    def list(self, since: datetime | None = None,
             include_cancelled: bool = False) -> list[Booking]:
        where, args = [], []
        if since is not None:
            where.append("end_ts > ?")
            args.append(_ts(since))
        if not include_cancelled:
            where.append(_ACTIVE)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db().execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings{clause}"
                                  " ORDER BY start_ts, reference", args).fetchall()
        return [_booking(r) for r in rows]

    def find_by_invite_uid(self, uid: str) -> Booking | None:
        """The booking made from the calendar invitation with this UID: the active one, else
        the one created last (a cancelled event)."""
        row = self._db().execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE invite_uid = ?"
                                 f" ORDER BY {_ACTIVE} DESC, created_ts DESC, rowid DESC LIMIT 1",
                                 (uid,)).fetchone()
        return None if row is None else _booking(row)

    def booking_for_message(self, message_id: str) -> Booking | None:
        row = self._db().execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings"
                                 " WHERE source_message_id = ?", (message_id,)).fetchone()
        return None if row is None else _booking(row)

    def availability(self, start: datetime, end: datetime, participants: int, now: datetime,
                     capacity: CapacitySettings, *, exclude: str | None = None) -> Verdict:
        """What `reserve` would answer right now, without reserving (Full comes with
        proposals). For status replies and the benchmark."""
        start, end = _utc(start), _utc(end)
        with self._tx("DEFERRED") as db:
            verdict = assess(start, end, participants, self._holds(db, start, end, exclude),
                             now, capacity)
        return self._complete(verdict, start, end, participants, now, capacity, exclude)

    def import_bookings(self, bookings: Iterable[Booking]) -> int:
        """Bulk insert WITHOUT capacity or PIN checks: for migrations from another system and
        for benchmarks. Returns the number of rows written."""
        with self._tx() as db:
            cursor = db.executemany(f"INSERT INTO bookings ({_BOOKING_COLUMNS})"
                                    f" VALUES ({', '.join('?' * 18)})",
                                    (_row(b) for b in bookings))
            return cursor.rowcount

    # -- ledger internals -------------------------------------------------------------------

    def _holds(self, db: sqlite3.Connection, start: datetime, end: datetime,
               exclude: str | None = None) -> list[Hold]:
        return [Hold(_dt(s), _dt(e), n)
                for s, e, n in self._overlapping(db, _ts(start), _ts(end), exclude,
                                                 "start_ts, end_ts, participants")]

    def _pins_near(self, db: sqlite3.Connection, start: datetime, end: datetime,
                   exclude: str | None = None) -> set[str]:
        rows = self._overlapping(db, _ts(start) - self._pin_margin, _ts(end) + self._pin_margin,
                                 exclude, "participant_pin, moderator_pin")
        return {pin for pair in rows for pin in pair} | self.reserved_pins

    def _overlapping(self, db: sqlite3.Connection, start: int, end: int,
                     exclude: str | None, columns: str) -> list[tuple]:
        longest = db.execute("SELECT MAX(end_ts - start_ts) FROM bookings").fetchone()[0] or 0
        rows = db.execute(f"SELECT {columns}, reference FROM bookings WHERE {_ACTIVE}"
                          " AND start_ts < ? AND start_ts >= ? AND end_ts > ?",
                          (end, start - longest, start)).fetchall()
        return [r[:-1] for r in rows if r[-1] != exclude]

    def _complete(self, verdict: Verdict, start: datetime, end: datetime, participants: int,
                  now: datetime, capacity: CapacitySettings, exclude: str | None) -> Verdict:
        """Fill a `Full` with the nearest free slots, widening the horizon as needed."""
        if not isinstance(verdict, Full):
            return verdict
        with self._tx("DEFERRED") as db:
            proposals = search(lambda window: self._holds(db, window.start, window.end, exclude),
                               start, end, participants, now, capacity)
        return replace(verdict, proposals=proposals)

    def _get(self, db: sqlite3.Connection, reference: str) -> Booking | None:
        row = db.execute(f"SELECT {_BOOKING_COLUMNS} FROM bookings WHERE reference = ?",
                         (reference,)).fetchone()
        return None if row is None else _booking(row)

    @staticmethod
    def _free_reference(db: sqlite3.Connection) -> str:
        for _ in range(100):
            reference = new_reference()
            if db.execute("SELECT 1 FROM bookings WHERE reference = ?",
                          (reference,)).fetchone() is None:
                return reference
        raise RuntimeError("no free booking reference after 100 tries")


def _utc(dt: datetime) -> datetime:
    """Whole seconds in UTC: what the store keeps, so a returned Booking equals a re-read one."""
    return _dt(_ts(dt))


def _row(b: Booking) -> tuple:
    return (b.reference, b.organizer, b.title, _ts(b.start), _ts(b.end), b.participants,
            b.participant_pin, b.moderator_pin, b.dial_in_mode.value, json.dumps(list(b.invitees)),
            b.language, b.status.value, b.invite_uid,
            None if b.created is None else _ts(b.created), b.sequence, b.cancelled_by,
            b.invite_sequence, b.updated_by)


def _booking(r: tuple) -> Booking:
    return Booking(reference=r[0], organizer=r[1], title=r[2], start=_dt(r[3]), end=_dt(r[4]),
                   participants=r[5], participant_pin=r[6], moderator_pin=r[7],
                   dial_in_mode=DialInMode(r[8]), invitees=tuple(json.loads(r[9])),
                   language=r[10], status=BookingStatus(r[11]), invite_uid=r[12],
                   created=None if r[13] is None else _dt(r[13]), sequence=r[14],
                   cancelled_by=r[15], invite_sequence=r[16], updated_by=r[17])


def _distance(booking: Booking, at: datetime) -> float:
    """Seconds from `at` to the booking's window (0 inside it)."""
    if booking.start <= at < booking.end:
        return 0.0
    return min(abs((booking.start - at).total_seconds()), abs((at - booking.end).total_seconds()))
