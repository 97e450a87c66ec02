"""The store's side of calendar updates (issue 7 point 8): the invitation's UID and SEQUENCE
are kept with the booking; the migration that adds them keeps existing rows. Real SQLite files."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

from bot.booking.domain import BookingRequest
from bot.config.settings import CapacitySettings
from bot.store.schema import MIGRATIONS
from bot.store.sqlite import SqliteStore

UTC = timezone.utc
NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
START = datetime(2030, 3, 5, 10, 0, tzinfo=UTC)
CAP = CapacitySettings(total_lines=10, room_max=8, max_minutes=240, max_days_ahead=30)


def invited(uid: str = "evt-1@example.com", sequence: int = 0, **kw) -> BookingRequest:
    return BookingRequest(start=kw.pop("start", START), end=kw.pop("end", START + timedelta(hours=1)),
                          participants=kw.pop("participants", 4), title="Board call",
                          organizer="alice@example.com", invitees=("bob@example.com",),
                          invite_uid=uid, invite_sequence=sequence, **kw)


def test_uid_and_sequence_are_stored_and_found_again(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    booking = store.reserve(invited(sequence=3), NOW, CAP, 6).booking
    again = SqliteStore(tmp_path / "s.sqlite3").find_by_invite_uid("evt-1@example.com")
    assert again == booking and again.invite_sequence == 3
    assert store.find_by_invite_uid("other@example.com") is None


def test_a_calendar_update_changes_window_title_invitees_and_sequence_in_place(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    booking = store.reserve(invited(), NOW, CAP, 6).booking
    later = START + timedelta(hours=2)
    updated = store.change(booking.reference, NOW, CAP, start=later, end=later + timedelta(hours=1),
                           participants=5, title="Board call (moved)",
                           invitees=("bob@example.com", "dan@example.com"), invite_sequence=1,
                           updated_by="<upd@example.com>").booking
    reread = store.get(booking.reference)
    assert reread == updated
    assert (reread.start, reread.participants, reread.title) == (later, 5, "Board call (moved)")
    assert reread.invitees == ("bob@example.com", "dan@example.com")
    assert (reread.invite_sequence, reread.updated_by) == (1, "<upd@example.com>")
    assert (reread.participant_pin, reread.moderator_pin) == (booking.participant_pin,
                                                              booking.moderator_pin)
    assert len(store.list(include_cancelled=True)) == 1


def test_the_active_booking_of_a_uid_comes_before_a_cancelled_one(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite3")
    old = store.reserve(invited(), NOW, CAP, 6).booking
    store.cancel(old.reference)
    new = store.reserve(invited(sequence=2), NOW + timedelta(minutes=1), CAP, 6).booking
    assert store.find_by_invite_uid("evt-1@example.com").reference == new.reference
    store.cancel(new.reference)
    assert store.find_by_invite_uid("evt-1@example.com").reference == new.reference


def test_a_file_from_before_the_sequence_migration_keeps_its_bookings(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (3)")
    for statements in MIGRATIONS[:3]:
        for sql in statements:
            db.execute(sql)
    db.execute("INSERT INTO bookings (reference, organizer, title, start_ts, end_ts, participants,"
               " participant_pin, moderator_pin, dial_in_mode, invitees, language, status,"
               " invite_uid, created_ts, sequence, cancelled_by) VALUES ('CB-22222',"
               " 'alice@example.com', 'Old call', ?, ?, 4, '482913', '739164', 'all_premium',"
               " '[]', 'en', 'confirmed', 'evt-old@example.com', ?, 2, NULL)",
               (int(START.timestamp()), int(START.timestamp()) + 3600, int(NOW.timestamp())))
    db.close()
    store = SqliteStore(path)
    assert store.schema_version() == len(MIGRATIONS)
    kept = store.get("CB-22222")
    assert (kept.title, kept.participant_pin, kept.sequence) == ("Old call", "482913", 2)
    assert (kept.invite_sequence, kept.updated_by) == (0, None)
    assert store.find_by_invite_uid("evt-old@example.com") == kept
