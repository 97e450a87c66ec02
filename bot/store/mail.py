"""The mail side of the SQLite store (adapter over sqlite3): the inbound-mail journal, the
processed Message-IDs and the outgoing-mail queue.

`MailJournal` is a mixin of `bot.store.sqlite.SqliteStore` (the one class the app opens); it uses the
store's per-thread connection (`_db()`) and transactions (`_tx()`), and the tables created by
the store's migrations. Its one multi-step write, `commit_decision`, queues the replies, marks
the Message-ID processed and sets the journal outcome inside ONE transaction: a crash leaves
either all three or none, so a replay after a crash can never queue a reply twice. A reply
given up on (`mark_dead`) stays in the queue as a dead letter: no longer due, no longer pending.
Must not touch bookings, capacity, mail parsing or composition, or keep a clock (`now` and
`received` are passed in). Times are integer UTC epoch seconds in the database.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from bot.booking.ledger import InboundMail

# The envelope sender of every mail the bot sends (RFC 3834 section 3.3, RFC 5321 4.5.5):
# bounces of automatic replies must go nowhere, or two robots can bounce each other forever.
NULL_SENDER = ""


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """A queued reply: stored before any send attempt, out of `due_mail` once sent or dead."""
    id: int
    raw: bytes
    mail_from: str
    rcpt_to: tuple[str, ...]
    attempts: int
    next_try: datetime | None     # None: due at once (never tried)
    last_error: str | None
    journal_id: int | None
    first_failed: datetime | None = None   # the first failed attempt (for give-up)
    dead: datetime | None = None           # dead-lettered: never retried, kept for the admin


@dataclass(frozen=True, slots=True)
class Draft:
    """A reply to queue: wire bytes and envelope. `mail_from` "" is the null sender `<>`."""
    raw: bytes
    rcpt_to: tuple[str, ...]
    mail_from: str = NULL_SENDER


class MailJournal:
    """Journal, processed Message-IDs and outgoing queue; mixed into `SqliteStore`."""

    # Provided by SqliteStore.
    def _db(self) -> sqlite3.Connection: raise NotImplementedError
    def _tx(self, mode: str = "IMMEDIATE") -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- the journal -----------------------------------------------------------------------

    def journal(self, raw: bytes, transport: str, message_id: str | None, sender: str | None,
                received: datetime) -> int:
        cursor = self._db().execute(
            "INSERT INTO mail_journal (received_ts, transport, message_id, sender, raw)"
            " VALUES (?, ?, ?, ?, ?)", (_ts(received), transport, message_id, sender, raw))
        return cursor.lastrowid

    def set_outcome(self, journal_id: int, outcome: str) -> None:
        self._set_outcome(self._db(), journal_id, outcome)

    def get_mail(self, journal_id: int) -> InboundMail | None:
        row = self._db().execute(f"SELECT {_MAIL_COLUMNS} FROM mail_journal WHERE id = ?",
                                 (journal_id,)).fetchone()
        return None if row is None else _mail(row)

    def unhandled_mail(self) -> list[InboundMail]:
        """Mail journaled but never given an outcome (the process died meanwhile), oldest first."""
        rows = self._db().execute(f"SELECT {_MAIL_COLUMNS} FROM mail_journal"
                                  " WHERE outcome IS NULL ORDER BY id").fetchall()
        return [_mail(r) for r in rows]

    def mails(self, limit: int = 50) -> list[InboundMail]:
        """The most recent journal rows, newest first."""
        rows = self._db().execute(f"SELECT {_MAIL_COLUMNS} FROM mail_journal"
                                  " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_mail(r) for r in rows]

    # -- processed Message-IDs ------------------------------------------------------------------

    def is_processed(self, message_id: str) -> bool:
        return self.processed_journal(message_id) is not None

    def processed_journal(self, message_id: str) -> int | None:
        """The journal row whose decision answered `message_id` (its replies are queued under
        that id), or None when this Message-ID was never processed. A row processed before
        journal ids were recorded answers 0."""
        row = self._db().execute("SELECT journal_id FROM processed WHERE message_id = ?",
                                 (message_id,)).fetchone()
        return None if row is None else (row[0] or 0)

    def mark_processed(self, message_id: str, journal_id: int | None) -> None:
        self._mark_processed(self._db(), message_id, journal_id)

    def commit_decision(self, journal_id: int, outcome: str, replies: Sequence[Draft],
                        message_id: str | None = None) -> int | None:
        """Queue `replies`, mark `message_id` processed and set the journal outcome, all in one
        transaction. When another journal row has processed `message_id` meanwhile (a second
        process, a racing transport), nothing is queued, this row's outcome says duplicate,
        and that row's id is returned; otherwise None."""
        for reply in replies:
            if not reply.rcpt_to:
                raise ValueError("a queued mail needs at least one recipient")
        with self._tx() as db:
            if message_id:
                row = db.execute("SELECT journal_id FROM processed WHERE message_id = ?",
                                 (message_id,)).fetchone()
                if row is not None and row[0] != journal_id:
                    original = row[0] or 0
                    self._set_outcome(db, journal_id, duplicate_outcome(original))
                    return original
            for reply in replies:
                self._queue(db, reply.raw, reply.mail_from, reply.rcpt_to, journal_id)
            if message_id:
                self._mark_processed(db, message_id, journal_id)
            self._set_outcome(db, journal_id, outcome)
        return None

    # -- the outgoing queue ---------------------------------------------------------------------

    def queue_mail(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str],
                   journal_id: int | None) -> int:
        if not rcpt_to:
            raise ValueError("a queued mail needs at least one recipient")
        return self._queue(self._db(), raw, mail_from, rcpt_to, journal_id)

    def due_mail(self, now: datetime) -> list[OutgoingMail]:
        rows = self._db().execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE sent_ts IS NULL AND dead_ts IS NULL"
            " AND (next_try_ts IS NULL OR next_try_ts <= ?) ORDER BY id", (_ts(now),)).fetchall()
        return [_outgoing(r) for r in rows]

    def dead_mail(self) -> list[OutgoingMail]:
        """Replies given up on (refused permanently or failing too long), oldest first."""
        rows = self._db().execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox"
                                  " WHERE dead_ts IS NOT NULL ORDER BY id").fetchall()
        return [_outgoing(r) for r in rows]

    def mark_sent(self, mail_id: int, now: datetime) -> None:
        self._db().execute("UPDATE outbox SET sent_ts = ?, attempts = attempts + 1,"
                           " last_error = NULL WHERE id = ?", (_ts(now), mail_id))

    def mark_retry(self, mail_id: int, error: str, next_try: datetime, *,
                   failed_at: datetime | None = None) -> None:
        """One more failed attempt; `failed_at` is remembered if it is the first failure."""
        self._db().execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                           " next_try_ts = ?, first_failed_ts = COALESCE(first_failed_ts, ?)"
                           " WHERE id = ?",
                           (error, _ts(next_try), None if failed_at is None else _ts(failed_at),
                            mail_id))

    def mark_dead(self, mail_id: int, error: str, now: datetime) -> None:
        """Give up on a reply: kept in the queue with its last error, never tried again, and
        no longer pending (so the inbound mail counts as done)."""
        self._db().execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                           " dead_ts = ?, first_failed_ts = COALESCE(first_failed_ts, ?)"
                           " WHERE id = ?", (error, _ts(now), _ts(now), mail_id))

    def pending_for_journal(self, journal_id: int) -> int:
        """Replies of this journal row neither sent nor dead-lettered."""
        return self._db().execute("SELECT COUNT(*) FROM outbox WHERE journal_id = ?"
                                  " AND sent_ts IS NULL AND dead_ts IS NULL",
                                  (journal_id,)).fetchone()[0]

    # -- single statements, shared by the autocommit methods and commit_decision ----------------

    @staticmethod
    def _queue(db: sqlite3.Connection, raw: bytes, mail_from: str, rcpt_to: Sequence[str],
               journal_id: int | None) -> int:
        cursor = db.execute(
            "INSERT INTO outbox (raw, mail_from, rcpt_to, journal_id) VALUES (?, ?, ?, ?)",
            (raw, mail_from, json.dumps(list(rcpt_to)), journal_id))
        return cursor.lastrowid

    @staticmethod
    def _mark_processed(db: sqlite3.Connection, message_id: str, journal_id: int | None) -> None:
        db.execute("INSERT OR IGNORE INTO processed (message_id, journal_id) VALUES (?, ?)",
                   (message_id, journal_id))

    @staticmethod
    def _set_outcome(db: sqlite3.Connection, journal_id: int, outcome: str) -> None:
        db.execute("UPDATE mail_journal SET outcome = ? WHERE id = ?", (outcome, journal_id))


def duplicate_outcome(original: int) -> str:
    return f"duplicate: Message-ID already processed (journal #{original})"


_MAIL_COLUMNS = "id, received_ts, transport, message_id, sender, raw, outcome"
_OUTBOX_COLUMNS = ("id, raw, mail_from, rcpt_to, attempts, next_try_ts, last_error, journal_id,"
                   " first_failed_ts, dead_ts")


def _ts(dt: datetime) -> int:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: the store needs timezone-aware times")
    return int(dt.timestamp() // 1)


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _mail(r: tuple) -> InboundMail:
    return InboundMail(id=r[0], received=_dt(r[1]), transport=r[2], message_id=r[3],
                       sender=r[4], raw=bytes(r[5]), outcome=r[6])


def _outgoing(r: tuple) -> OutgoingMail:
    return OutgoingMail(id=r[0], raw=bytes(r[1]), mail_from=r[2], rcpt_to=tuple(json.loads(r[3])),
                        attempts=r[4], next_try=None if r[5] is None else _dt(r[5]),
                        last_error=r[6], journal_id=r[7],
                        first_failed=None if r[8] is None else _dt(r[8]),
                        dead=None if r[9] is None else _dt(r[9]))
