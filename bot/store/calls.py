"""The calls table (adapter over sqlite3): one row per call, the raw data for billing (B8, O4).

`CallRecords` is a mixin for `bot.store.sqlite.SqliteStore` (like `bot.store.mail.MailJournal`): it uses
the store's per-thread connection (`_db()`) and transactions (`_tx()`). The store's migration 3
creates the table, migration 4 the service runs; over any other object with `_db()`/`_tx()`,
`CallLog(store)` gives the same methods and creates the tables itself (once per object).
Must not decide anything about calls or keep a clock: every time is passed in. Times are integer
UTC epoch milliseconds (waiting time = joined - answered is wanted to the tenth of a second).

Service runs (one row per start of the voice service, `begin_run` → `heartbeat` → `end_run`):
call ids are unique across restarts because the SIP adapter prefixes them with the run's number
("call-12-3"), so `call_id` stays the table's primary key and a clash fails loudly instead of
merging two calls. A run that crashed leaves its live calls open (`ended_ms IS NULL`); the next
`begin_run` closes them with RESTARTED at their last known time (the later of the row's own
times and its run's last heartbeat), so a billing row never stays open or grows past the crash.
"""
from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone

CALLS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
        call_id TEXT PRIMARY KEY,
        direction TEXT NOT NULL,          -- 'in' | 'out'
        dialled TEXT NOT NULL,
        caller TEXT NOT NULL,
        tariff TEXT,                      -- bot.config.settings.Tariff value of the dial-in used
        booking TEXT,                     -- booking reference, when a PIN was right
        role TEXT,                        -- bot.conference.rooms.Role value
        room TEXT,
        answered_ms INTEGER,
        joined_ms INTEGER,
        left_ms INTEGER,
        ended_ms INTEGER,
        end_reason TEXT)""",
    "CREATE INDEX IF NOT EXISTS calls_booking ON calls(booking)",
    "CREATE INDEX IF NOT EXISTS calls_answered ON calls(answered_ms)",
)
# the store's migration 4 (keeps every row: old rows get run NULL)
RUNS_MIGRATION = (
    """CREATE TABLE IF NOT EXISTS service_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_ms INTEGER NOT NULL,
        alive_ms INTEGER NOT NULL,        -- the last heartbeat: last time known to be running
        stopped_ms INTEGER)""",           # NULL: running, or it crashed
    "ALTER TABLE calls ADD COLUMN run INTEGER REFERENCES service_runs(id)",
    "CREATE INDEX IF NOT EXISTS calls_open ON calls(run) WHERE ended_ms IS NULL",
)
RESTARTED = "service restarted"      # end cause of a call still live when its run crashed
STOPPED = "service stopped"          # ... of a call whose end the stack never reported at stop


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    direction: str
    dialled: str
    caller: str
    tariff: str | None
    booking: str | None
    role: str | None
    room: str | None
    answered: datetime | None
    joined: datetime | None
    left: datetime | None
    ended: datetime | None
    end_reason: str | None
    run: int | None = None        # the service run (None: written before runs were kept)


_COLUMNS = ("call_id, direction, dialled, caller, tariff, booking, role, room, answered_ms,"
            " joined_ms, left_ms, ended_ms, end_reason, run")


class CallRecords:
    """Per-call rows; mixed into the SQLite store."""

    def _db(self) -> sqlite3.Connection: raise NotImplementedError
    def _tx(self, mode: str = "IMMEDIATE") -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    _calls_ready = False
    _run: int | None = None     # the service run that new rows belong to (begin_run)

    def _calls_db(self) -> sqlite3.Connection:
        db = self._db()
        if not self._calls_ready:
            with self._tx() as tx:
                for sql in CALLS_SCHEMA:
                    tx.execute(sql)
                has_run = any(r[1] == "run" for r in tx.execute("PRAGMA table_info(calls)"))
                for sql in RUNS_MIGRATION:
                    if not (has_run and sql.startswith("ALTER")):
                        tx.execute(sql)
            self._calls_ready = True
        return db

    # -- service runs ---------------------------------------------------------------------

    def begin_run(self, at: datetime) -> tuple[int, int]:
        """Start a service run: close every row an earlier run left open (it crashed, or its
        stack never reported the end) with RESTARTED, then open the new run. Returns (run,
        rows closed). One voice service per database: every open row belongs to a dead run."""
        self._calls_db()
        now = _ms(at)
        last_known = ("COALESCE(NULLIF(MAX(COALESCE(answered_ms, 0), COALESCE(joined_ms, 0),"
                      " COALESCE(left_ms, 0), COALESCE((SELECT alive_ms FROM service_runs r"
                      " WHERE r.id = calls.run), 0)), 0), ?)")
        with self._tx() as db:
            closed = db.execute(
                f"UPDATE calls SET ended_ms = {last_known}, end_reason = ?,"
                f" left_ms = CASE WHEN joined_ms IS NOT NULL AND left_ms IS NULL"
                f" THEN {last_known} ELSE left_ms END WHERE ended_ms IS NULL",
                (now, RESTARTED, now)).rowcount
            run = db.execute("INSERT INTO service_runs (started_ms, alive_ms) VALUES (?, ?)",
                             (now, now)).lastrowid
        self._run = run
        return run, closed

    def heartbeat(self, run: int, at: datetime) -> None:
        self._calls_db().execute("UPDATE service_runs SET alive_ms = ? WHERE id = ?",
                                 (_ms(at), run))

    def end_run(self, run: int, at: datetime) -> int:
        """The run stops: its rows still open (no end reported) are closed with STOPPED.
        Returns how many."""
        now = _ms(at)
        with self._tx() as db:
            closed = db.execute(
                "UPDATE calls SET ended_ms = ?, end_reason = ?, left_ms = CASE WHEN"
                " joined_ms IS NOT NULL AND left_ms IS NULL THEN ? ELSE left_ms END"
                " WHERE run = ? AND ended_ms IS NULL", (now, STOPPED, now, run)).rowcount
            db.execute("UPDATE service_runs SET alive_ms = ?, stopped_ms = ? WHERE id = ?",
                       (now, now, run))
        if self._run == run:
            self._run = None
        return closed

    # -- calls ------------------------------------------------------------------------------

    def call_started(self, call_id: str, direction: str, dialled: str, caller: str,
                     at: datetime) -> None:
        # a plain INSERT: an id seen before is an error in the log, never a merged row
        self._calls_db().execute(
            "INSERT INTO calls (call_id, direction, dialled, caller, answered_ms, run)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (call_id, direction, dialled, caller, _ms(at), self._run))

    def call_admitted(self, call_id: str, *, tariff: str | None, booking: str | None,
                      role: str | None) -> None:
        """The flow's RecordCdr: which dial-in (tariff) for which booking in which role."""
        self._calls_db().execute("UPDATE calls SET tariff = ?, booking = ?, role = ?"
                                 " WHERE call_id = ?", (tariff, booking, role, call_id))

    def call_joined(self, call_id: str, room: str, at: datetime) -> None:
        self._calls_db().execute(
            "UPDATE calls SET room = ?, joined_ms = COALESCE(joined_ms, ?) WHERE call_id = ?",
            (room, _ms(at), call_id))

    def call_left(self, call_id: str, at: datetime) -> None:
        self._calls_db().execute("UPDATE calls SET left_ms = ? WHERE call_id = ?"
                                 " AND joined_ms IS NOT NULL", (_ms(at), call_id))

    def call_ended(self, call_id: str, at: datetime, reason: str) -> None:
        self._calls_db().execute(
            "UPDATE calls SET ended_ms = ?, end_reason = ?,"
            " left_ms = CASE WHEN joined_ms IS NOT NULL AND left_ms IS NULL THEN ? ELSE left_ms END"
            " WHERE call_id = ?", (_ms(at), reason, _ms(at), call_id))

    def call_record(self, call_id: str) -> CallRecord | None:
        row = self._calls_db().execute(f"SELECT {_COLUMNS} FROM calls WHERE call_id = ?",
                                       (call_id,)).fetchone()
        return None if row is None else _record(row)

    def call_records(self, booking: str | None = None) -> list[CallRecord]:
        where, args = ("WHERE booking = ?", (booking,)) if booking is not None else ("", ())
        rows = self._calls_db().execute(f"SELECT {_COLUMNS} FROM calls {where}"
                                        " ORDER BY answered_ms, call_id", args).fetchall()
        return [_record(r) for r in rows]


class CallLog(CallRecords):
    """`CallRecords` over an existing store (until the store mixes `CallRecords` in)."""

    def __init__(self, store) -> None:
        self._store = store

    def _db(self) -> sqlite3.Connection:
        return self._store._db()

    def _tx(self, mode: str = "IMMEDIATE"):
        return self._store._tx(mode)


def call_log(store) -> CallRecords:
    return store if isinstance(store, CallRecords) else CallLog(store)


def _ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}")
    return int(dt.timestamp() * 1000)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)


def _record(r: tuple) -> CallRecord:
    return CallRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _dt(r[8]), _dt(r[9]),
                      _dt(r[10]), _dt(r[11]), r[12], r[13])
