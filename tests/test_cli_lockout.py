"""`confbot lockout list` and `confbot lockout clear CALLER|--all` over the real store (as a
running service wrote the locks), as subprocesses like an admin runs them."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bot.store.sqlite import SqliteStore
from test_cli_booking import config_in, confbot

CALLER = "<sip:+4915112345@carrier.example>"


def _store(tmp_path) -> SqliteStore:
    return SqliteStore(tmp_path / "var" / "confbot.sqlite3")   # config.toml: data_dir = "var"


def _locks(tmp_path) -> tuple:
    now = datetime.now(timezone.utc)
    store = _store(tmp_path)
    store.lockout_started("caller", CALLER, 5, now - timedelta(minutes=1), now + timedelta(minutes=14))
    store.lockout_started("caller", "<sip:mallory@127.0.0.1>", 5, now - timedelta(minutes=2),
                          now + timedelta(minutes=13))
    store.lockout_started("caller", "<sip:old@127.0.0.1>", 5, now - timedelta(hours=1),
                          now - timedelta(minutes=45))           # ran out long ago
    store.lockout_started("global", None, 50, now - timedelta(minutes=1), now + timedelta(minutes=4))
    store.close()
    return now


def test_list_shows_the_running_lockouts_only(tmp_path):
    cfg = config_in(tmp_path)
    assert confbot("lockout", "list", "--config", str(cfg)).stdout.strip() == "no PIN lockouts"
    _locks(tmp_path)
    res = confbot("lockout", "list", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3 and "old@" not in res.stdout
    assert lines[0].startswith(CALLER) and "after 5 wrong PINs" in lines[0]
    assert lines[2].startswith("(all unknown callers)")
    rows = json.loads(confbot("lockout", "list", "--json", "--config", str(cfg)).stdout)
    assert [r["caller"] for r in rows] == [CALLER, "<sip:mallory@127.0.0.1>", None]
    assert datetime.fromisoformat(rows[0]["until"]) > datetime.now(timezone.utc)


def test_clear_by_number_lifts_that_callers_lock_and_keeps_the_others(tmp_path):
    cfg = config_in(tmp_path)
    _locks(tmp_path)
    res = confbot("lockout", "clear", "+49 151 12345", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert f"lifted the PIN lockout of {CALLER}" in res.stdout
    left = json.loads(confbot("lockout", "list", "--json", "--config", str(cfg)).stdout)
    assert [r["caller"] for r in left] == ["<sip:mallory@127.0.0.1>", None]
    [row] = [r for r in _store(tmp_path).cleared_lockouts(datetime.now(timezone.utc))]
    assert row.caller == CALLER and row.cleared_by.startswith("confbot lockout clear")


def test_clear_as_listed_and_clear_all(tmp_path):
    cfg = config_in(tmp_path)
    _locks(tmp_path)
    assert confbot("lockout", "clear", "<sip:mallory@127.0.0.1>", "--config", str(cfg)).returncode == 0
    res = confbot("lockout", "clear", "--all", "--config", str(cfg))
    assert res.returncode == 0 and "(all unknown callers)" in res.stdout and CALLER in res.stdout
    assert confbot("lockout", "list", "--config", str(cfg)).stdout.strip() == "no PIN lockouts"


def test_clearing_somebody_not_locked_says_so_and_changes_nothing(tmp_path):
    cfg = config_in(tmp_path)
    _locks(tmp_path)
    res = confbot("lockout", "clear", "<sip:old@127.0.0.1>", "--config", str(cfg))
    assert res.returncode == 1 and "'<sip:old@127.0.0.1>' is not locked out" in res.stderr
    assert CALLER in res.stderr                       # ... and who is
    assert len(json.loads(confbot("lockout", "list", "--json", "--config", str(cfg)).stdout)) == 3
    usage = confbot("lockout", "clear", "--config", str(cfg))
    assert usage.returncode == 2 and "CALLER" in usage.stderr     # one of CALLER or --all
    both = confbot("lockout", "clear", CALLER, "--all", "--config", str(cfg))
    assert both.returncode == 2
