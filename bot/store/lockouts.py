"""The PIN lockouts table (adapter over sqlite3): every lock the PIN guard starts, and the clears
`confbot lockout clear` writes, so a lock survives a restart and another process can lift it.

`PinLockouts` is a mixin for `bot.store.sqlite.SqliteStore` (like `bot.store.calls.CallRecords`): it uses
the store's per-thread connection (`_db()`) and transactions (`_tx()`); the store's migration 5
creates the table. Rows are never deleted: a cleared lock keeps who cleared it and when.
Must not decide who is locked (that is `ivr.guard.PinGuard`) or keep a clock: every time is
passed in. Times are integer UTC epoch milliseconds.
"""
from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone

# the store's migration 5
LOCKOUTS_MIGRATION = (
    """CREATE TABLE pin_lockouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope TEXT NOT NULL,              -- ivr.guard.Scope value: 'caller' | 'global'
        caller TEXT,                      -- ivr.guard.caller_key(); NULL for the global lock
        failures INTEGER NOT NULL,
        since_ms INTEGER NOT NULL,
        until_ms INTEGER NOT NULL,
        cleared_ms INTEGER,               -- lifted early (confbot lockout clear)
        cleared_by TEXT)""",
    "CREATE INDEX pin_lockouts_active ON pin_lockouts(until_ms) WHERE cleared_ms IS NULL",
    "CREATE INDEX pin_lockouts_cleared ON pin_lockouts(until_ms) WHERE cleared_ms IS NOT NULL",
)

_COLUMNS = "id, scope, caller, failures, since_ms, until_ms, cleared_ms, cleared_by"


@dataclass(frozen=True, slots=True)
class StoredLockout:
    id: int
    scope: str
    caller: str | None
    failures: int
    since: datetime
    until: datetime
    cleared: datetime | None = None
    cleared_by: str | None = None


class PinLockouts:
    """Lockout rows; mixed into the SQLite store."""

    def _db(self) -> sqlite3.Connection: raise NotImplementedError
    def _tx(self, mode: str = "IMMEDIATE") -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def lockout_started(self, scope: str, caller: str | None, failures: int, since: datetime,
                        until: datetime) -> int:
        return self._db().execute(
            "INSERT INTO pin_lockouts (scope, caller, failures, since_ms, until_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (scope, caller, failures, _ms(since), _ms(until))).lastrowid

    def active_lockouts(self, at: datetime) -> list[StoredLockout]:
        """Locks still running at `at` and not cleared, oldest first."""
        rows = self._db().execute(f"SELECT {_COLUMNS} FROM pin_lockouts WHERE cleared_ms IS NULL"
                                  " AND until_ms > ? ORDER BY id", (_ms(at),)).fetchall()
        return [_lockout(r) for r in rows]

    def cleared_lockouts(self, at: datetime) -> list[StoredLockout]:
        """Locks that were cleared before they ran out, and would still run at `at`: what a
        running service must lift (a small set: only locks younger than their length)."""
        rows = self._db().execute(f"SELECT {_COLUMNS} FROM pin_lockouts WHERE cleared_ms IS NOT"
                                  " NULL AND until_ms > ? ORDER BY id", (_ms(at),)).fetchall()
        return [_lockout(r) for r in rows]

    def clear_lockouts(self, ids: list[int], at: datetime, by: str) -> list[StoredLockout]:
        """Clear these locks (those still active); returns the ones cleared now."""
        with self._tx() as db:
            out = []
            for i in ids:
                if db.execute("UPDATE pin_lockouts SET cleared_ms = ?, cleared_by = ? WHERE id = ?"
                              " AND cleared_ms IS NULL AND until_ms > ?",
                              (_ms(at), by, i, _ms(at))).rowcount:
                    out.append(_lockout(db.execute(f"SELECT {_COLUMNS} FROM pin_lockouts"
                                                   " WHERE id = ?", (i,)).fetchone()))
            return out


def _ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}")
    return int(dt.timestamp() * 1000)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)


def _lockout(r: tuple) -> StoredLockout:
    return StoredLockout(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5]), _dt(r[6]), r[7])
