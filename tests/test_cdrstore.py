"""The calls table across service runs (bot.store.calls over the real SQLite store): migration 4
keeps the rows of a version-3 file, runs number the call ids, and a start closes what a crashed
run left open with "service restarted" at the last time that run was known to be alive."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from bot.store.calls import RESTARTED, STOPPED
from bot.store.schema import MIGRATIONS
from bot.store.sqlite import SqliteStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def sec(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def test_a_version_3_file_is_upgraded_keeping_its_call_rows(tmp_path):
    path = tmp_path / "v3.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (3)")
    for statements in MIGRATIONS[:3]:
        for sql in statements:
            db.execute(sql)
    ms = int(T0.timestamp() * 1000)
    db.execute("INSERT INTO calls (call_id, direction, dialled, caller, answered_ms, joined_ms,"
               " left_ms, ended_ms, end_reason) VALUES ('call-1', 'in', '7000', 'a', ?, ?, ?, ?,"
               " '200 Normal call clearing')", (ms, ms + 500, ms + 60_000, ms + 60_000))
    db.close()
    store = SqliteStore(path)
    assert store.schema_version() == len(MIGRATIONS) >= 4
    [old] = store.call_records()
    assert (old.call_id, old.ended, old.end_reason, old.run) == (
        "call-1", sec(60), "200 Normal call clearing", None)
    run, closed = store.begin_run(sec(100))
    assert closed == 0                      # a closed row stays as it was
    store.call_started(f"call-{run}-1", "in", "7000", "b", sec(101))  # new ids carry the run
    assert [(r.call_id, r.caller, r.run) for r in store.call_records()] == [
        ("call-1", "a", None), (f"call-{run}-1", "b", run)]


def test_a_repeated_call_id_is_an_error_not_a_merged_row(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    store.begin_run(T0)
    store.call_started("call-1-1", "in", "7000", "alice", sec(1))
    try:
        store.call_started("call-1-1", "in", "7100", "bob", sec(2))
    except sqlite3.IntegrityError:
        pass
    else:
        raise AssertionError("a second row with the same call id was accepted silently")
    [r] = store.call_records()
    assert (r.caller, r.dialled) == ("alice", "7000")


def test_runs_are_numbered_and_rows_remember_their_run(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    first, _ = store.begin_run(T0)
    store.call_started(f"call-{first}-1", "in", "7000", "alice", sec(1))
    store.call_ended(f"call-{first}-1", sec(5), "200 Normal")
    assert store.end_run(first, sec(6)) == 0
    again = SqliteStore(tmp_path / "s.sqlite3")          # the next start, a new process
    second, closed = again.begin_run(sec(10))
    assert second > first and closed == 0
    again.call_started(f"call-{second}-1", "in", "7000", "bob", sec(11))
    rows = {r.call_id: r for r in again.call_records()}
    assert rows[f"call-{first}-1"].run == first and rows[f"call-{second}-1"].run == second
    assert rows[f"call-{first}-1"].caller == "alice" and rows[f"call-{second}-1"].caller == "bob"


def test_the_next_start_closes_a_crashed_runs_calls_at_their_last_known_time(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    run, _ = store.begin_run(T0)
    # a caller in a conference, a caller still in the IVR, one already gone
    store.call_started(f"call-{run}-1", "in", "7000", "alice", sec(1))
    store.call_joined(f"call-{run}-1", "CB-1", sec(3))
    store.call_started(f"call-{run}-2", "in", "7000", "bob", sec(4))
    store.call_started(f"call-{run}-3", "in", "7000", "carol", sec(5))
    store.call_ended(f"call-{run}-3", sec(6), "200 Normal")
    store.heartbeat(run, sec(40))
    store.call_started(f"call-{run}-4", "out", "5551234", "", sec(45))   # after the last beat
    # ... and the process is killed: no call_ended, no end_run
    open_rows = store._db().execute("SELECT COUNT(*) FROM calls WHERE ended_ms IS NULL").fetchone()
    assert open_rows == (3,)
    again = SqliteStore(tmp_path / "s.sqlite3")
    nxt, closed = again.begin_run(sec(300))
    assert closed == 3 and nxt != run
    rows = {r.call_id: r for r in again.call_records()}
    a, b, c, d = (rows[f"call-{run}-{i}"] for i in (1, 2, 3, 4))
    assert (a.ended, a.left, a.end_reason) == (sec(40), sec(40), RESTARTED)
    assert (b.ended, b.left, b.end_reason) == (sec(40), None, RESTARTED)   # never joined
    assert (c.ended, c.end_reason) == (sec(6), "200 Normal")              # untouched
    assert (d.ended, d.end_reason) == (sec(45), RESTARTED)                # its own time is later
    assert again._db().execute("SELECT COUNT(*) FROM calls WHERE ended_ms IS NULL").fetchone() == (0,)


def test_a_clean_stop_closes_the_calls_whose_end_never_came_as_stopped(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    run, _ = store.begin_run(T0)
    store.call_started(f"call-{run}-1", "in", "7000", "alice", sec(1))
    store.call_joined(f"call-{run}-1", "CB-1", sec(2))
    assert store.end_run(run, sec(9)) == 1
    [r] = store.call_records()
    assert (r.ended, r.left, r.end_reason) == (sec(9), sec(9), STOPPED)
