"""The schema of the SQLite store: every table's migrations, in order (used by `bot.store.sqlite`).

Owns `MIGRATIONS` (each entry upgrades the schema by one version: the bookings, the mail
journal, processed Message-IDs and the outgoing queue, then the calls table and service runs
of `bot.store.calls`, the PIN lockouts of `bot.store.lockouts`, calendar updates),
`SCHEMA_VERSION` and `SchemaTooNew`. The store applies the missing entries inside one
transaction when it opens a file. Never edit a released entry; append one.
"""
from __future__ import annotations

from bot.store.calls import CALLS_SCHEMA, RUNS_MIGRATION
from bot.store.lockouts import LOCKOUTS_MIGRATION

# Each entry upgrades the schema by one version; never edit a released entry, append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE bookings (
            reference TEXT PRIMARY KEY,
            organizer TEXT NOT NULL,
            title TEXT NOT NULL,
            start_ts INTEGER NOT NULL,
            end_ts INTEGER NOT NULL,
            participants INTEGER NOT NULL,
            participant_pin TEXT NOT NULL,
            moderator_pin TEXT NOT NULL,
            dial_in_mode TEXT NOT NULL,
            invitees TEXT NOT NULL,
            language TEXT NOT NULL,
            status TEXT NOT NULL,
            invite_uid TEXT,
            created_ts INTEGER,
            sequence INTEGER NOT NULL,
            source_message_id TEXT UNIQUE)""",
        # The overlap query `start < :end AND end > :start` becomes a range scan on start_ts
        # once bounded below by `:start - longest duration`; that bound comes from the
        # expression index in O(log n). Partial: cancelled rows never cost a check anything.
        "CREATE INDEX bookings_active_window ON bookings(start_ts, end_ts, participants)"
        " WHERE status = 'confirmed'",
        "CREATE INDEX bookings_duration ON bookings((end_ts - start_ts))",
        "CREATE INDEX bookings_participant_pin ON bookings(participant_pin)"
        " WHERE status = 'confirmed'",
        "CREATE INDEX bookings_moderator_pin ON bookings(moderator_pin)"
        " WHERE status = 'confirmed'",
        "CREATE INDEX bookings_end ON bookings(end_ts)",
        """CREATE TABLE mail_journal (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_ts INTEGER NOT NULL,
            transport TEXT NOT NULL,
            message_id TEXT,
            sender TEXT,
            raw BLOB NOT NULL,
            outcome TEXT)""",
        "CREATE INDEX mail_journal_unhandled ON mail_journal(id) WHERE outcome IS NULL",
        """CREATE TABLE processed (
            message_id TEXT PRIMARY KEY,
            journal_id INTEGER REFERENCES mail_journal(id))""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            raw BLOB NOT NULL,
            mail_from TEXT NOT NULL,
            rcpt_to TEXT NOT NULL,
            journal_id INTEGER REFERENCES mail_journal(id),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_ts INTEGER,
            last_error TEXT,
            sent_ts INTEGER)""",
        "CREATE INDEX outbox_due ON outbox(next_try_ts) WHERE sent_ts IS NULL",
        "CREATE INDEX outbox_journal ON outbox(journal_id) WHERE sent_ts IS NULL",
    ),
    (
        # Which mail cancelled a booking: its replay after a crash resends the cancellation.
        "ALTER TABLE bookings ADD COLUMN cancelled_by TEXT",
        # Dead letters: a reply refused permanently (5xx) or failing for too long is kept,
        # marked dead, and no longer retried.
        "ALTER TABLE outbox ADD COLUMN first_failed_ts INTEGER",
        "ALTER TABLE outbox ADD COLUMN dead_ts INTEGER",
        "DROP INDEX outbox_due",
        "DROP INDEX outbox_journal",
        "CREATE INDEX outbox_due ON outbox(next_try_ts) WHERE sent_ts IS NULL AND dead_ts IS NULL",
        "CREATE INDEX outbox_journal ON outbox(journal_id)"
        " WHERE sent_ts IS NULL AND dead_ts IS NULL",
    ),
    # 3: the calls table (billing raw data, B8/O4); IF NOT EXISTS: older files may have it
    CALLS_SCHEMA,
    # 4: service runs; each call row knows its run (ids unique across restarts, crash close)
    RUNS_MIGRATION,
    # 5: PIN lockouts, kept over restarts and lifted by `confbot lockout clear`
    LOCKOUTS_MIGRATION,
    # 6: calendar updates (RFC 5546). The invitation's SEQUENCE, and the key of the mail that
    # last changed the booking (its replay after a crash resends the change instead of a note).
    # Existing rows keep everything; their SEQUENCE counts as 0, the RFC's default.
    (
        "ALTER TABLE bookings ADD COLUMN invite_sequence INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE bookings ADD COLUMN updated_by TEXT",
        "CREATE INDEX bookings_invite_uid ON bookings(invite_uid) WHERE invite_uid IS NOT NULL",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The file was written by a newer confbot; refusing to guess at its schema."""
