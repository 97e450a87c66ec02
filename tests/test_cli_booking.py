"""The `confbot booking …` command-line contract (used by acceptance checks: keep it exact)
and the mail agent working over the real SQLite store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.config.load import parse_text
from bot.store.sqlite import SqliteStore
from mail.agent import Agent
from mail.parse import read_message

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
KEYS = {"start", "end", "duration_minutes", "participants", "title", "organizer", "invitees", "language"}


def confbot(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # also when run from another folder
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60, env=env)


def config_in(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    return cfg


def test_parse_prints_the_booking_as_one_json_object(tmp_path):
    res = confbot("booking", "parse", str(DATA / "de_plain_morgen.eml"), "--now", "2025-01-01T00:00:00+01:00",
                  "--config", str(config_in(tmp_path)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == KEYS
    start, end = datetime.fromisoformat(out["start"]), datetime.fromisoformat(out["end"])
    assert start.utcoffset() is not None and end.utcoffset() is not None
    assert (end - start) == timedelta(minutes=out["duration_minutes"])
    assert out["language"] == "de" and isinstance(out["invitees"], list)


def test_parse_refuses_a_past_booking_with_reason_and_exit_1(tmp_path):
    res = confbot("booking", "parse", str(DATA / "de_plain_morgen.eml"), "--now", "2030-01-01T00:00:00+00:00",
                  "--config", str(config_in(tmp_path)))
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["reason"] == "past" and out["error"]


def test_parse_reports_missing_fields(tmp_path):
    res = confbot("booking", "parse", str(DATA / "refuse_no_date_de.eml"), "--config", str(config_in(tmp_path)))
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert "start" in out["missing"] and out["error"]


def test_parse_of_a_missing_file_is_a_json_error(tmp_path):
    res = confbot("booking", "parse", str(tmp_path / "nope.eml"), "--config", str(config_in(tmp_path)))
    assert res.returncode == 1 and json.loads(res.stdout)["reason"] == "unreadable"


def test_bad_now_is_a_clear_usage_error(tmp_path):
    res = confbot("booking", "parse", str(DATA / "de_plain_morgen.eml"), "--now", "yesterday",
                  "--config", str(config_in(tmp_path)))
    assert res.returncode != 0 and "ISO 8601" in res.stderr


def booking_mail(sender: str, when: str, subject: str = "Team call") -> bytes:
    return (f"From: {sender}\r\nTo: confbot@localhost\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Dec 2025 09:00:00 +0100\r\nMessage-ID: <{abs(hash((sender, when, subject)))}@example.com>\r\n"
            f"\r\nPlease book a conference {when} for 1 hour, 8 participants.\r\n").encode()


def test_agent_books_over_the_real_store_and_list_show_cancel_see_it(tmp_path):
    cfg = config_in(tmp_path)
    settings = parse_text(cfg.read_text())
    store = SqliteStore(tmp_path / "var" / "confbot.sqlite3")
    now = datetime(2025, 12, 1, 8, 0, tzinfo=timezone.utc)
    decision = Agent(settings, store).handle(read_message(booking_mail("alice@example.com", "on 3.12.2025 at 10:00")), now)
    assert decision.outcome.startswith("booked CB-"), decision.outcome
    ref = decision.outcome.split()[1]
    booking = store.get(ref)
    assert booking.participants == 8 and booking.participant_pin != booking.moderator_pin
    # the same mail again never books twice
    again = Agent(settings, store).handle(read_message(booking_mail("alice@example.com", "on 3.12.2025 at 10:00")), now)
    assert len(store.list(include_cancelled=True)) == 1, again.outcome

    shown = confbot("booking", "show", ref.lower(), "--config", str(cfg))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["moderator_pin"] == booking.moderator_pin
    listed = confbot("booking", "list", "--all", "--config", str(cfg))
    assert ref in listed.stdout
    cancelled = confbot("booking", "cancel", ref, "--config", str(cfg))
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert not store.get(ref).active
    assert confbot("booking", "show", "CB-22222", "--config", str(cfg)).returncode == 1
    assert confbot("booking", "show", "hello", "--config", str(cfg)).returncode == 1


def test_parse_works_outside_the_repo_with_built_in_defaults(tmp_path):
    res = confbot("booking", "parse", str(DATA / "de_plain_morgen.eml"), "--now", "2025-01-01T00:00:00+01:00",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert set(json.loads(res.stdout)) == KEYS and "built-in defaults" in res.stderr


def test_now_without_offset_is_read_in_the_service_time_zone():
    from bot.cli import _now
    from zoneinfo import ZoneInfo
    berlin = ZoneInfo("Europe/Berlin")
    assert _now("2026-06-01T23:30:00", berlin) == datetime(2026, 6, 1, 23, 30, tzinfo=berlin)
