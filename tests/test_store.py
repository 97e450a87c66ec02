"""The SQLite store as a specification: atomic reservations (threads and processes racing on
one file), PINs, idempotent mail, the journal and the outgoing-mail queue. Real SQLite files."""
from __future__ import annotations

import multiprocessing
import random
import sqlite3
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

import bot.store.sqlite
from bot.booking.domain import BookingRequest, BookingStatus, new_pin, new_pin_pair, normalize_reference
from bot.booking.ledger import Full, Refused, Reserved
from bot.config.settings import CapacitySettings
from bot.store.mail import Draft
from bot.store.schema import SCHEMA_VERSION, SchemaTooNew
from bot.store.sqlite import SqliteStore

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
CAP = CapacitySettings(total_lines=10, room_max=8, max_minutes=240, max_days_ahead=30)


def at(hour: int, minute: int = 0, day: int = 4) -> datetime:
    return datetime(2030, 3, day, hour, minute, tzinfo=UTC)


def request(start: datetime, end: datetime, participants: int = 4, **kw) -> BookingRequest:
    return BookingRequest(start=start, end=end, participants=participants,
                          title=kw.pop("title", "Weekly sync"),
                          organizer=kw.pop("organizer", "alice@example.com"), **kw)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore(tmp_path / "nested" / "confbot.sqlite3")
    yield s
    s.close()


@pytest.fixture
def same_pins_every_time(monkeypatch):
    """Every PIN draw starts from the same seed, so a store that ignored the PINs already in
    use would hand out identical PINs to overlapping bookings."""
    monkeypatch.setattr(bot.store.sqlite, "new_pin_pair", lambda length, taken: new_pin_pair(
        length, taken, randbelow=random.Random(7).randrange))
    monkeypatch.setattr(bot.store.sqlite, "new_pin", lambda length, taken: new_pin(
        length, taken, randbelow=random.Random(7).randrange))


def reserve(store, start, end, participants=4, message_id=None) -> Reserved | Full | Refused:
    return store.reserve(request(start, end, participants), NOW, CAP, 6,
                         source_message_id=message_id)


# -- opening the file ----------------------------------------------------------------------

def test_opening_creates_the_file_in_wal_mode_at_the_current_schema(tmp_path):
    path = tmp_path / "a" / "b" / "confbot.sqlite3"
    s = SqliteStore(path)
    assert path.exists()
    assert s.schema_version() == SCHEMA_VERSION
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()


def test_reopening_keeps_bookings_and_does_not_migrate_twice(tmp_path):
    path = tmp_path / "confbot.sqlite3"
    first = SqliteStore(path)
    booked = reserve(first, at(10), at(11)).booking
    first.close()
    second = SqliteStore(path)
    assert second.get(booked.reference) == booked
    assert second.schema_version() == SCHEMA_VERSION


def test_a_file_from_a_newer_confbot_is_refused(tmp_path):
    path = tmp_path / "confbot.sqlite3"
    SqliteStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(SchemaTooNew):
        SqliteStore(path)


def test_the_overlap_query_is_an_index_range_scan_not_a_table_scan(store):
    db = store._db()
    plan = db.execute("EXPLAIN QUERY PLAN SELECT start_ts, end_ts, participants FROM bookings"
                      " WHERE status = 'confirmed' AND start_ts < ? AND start_ts >= ?"
                      " AND end_ts > ?", (2, 0, 1)).fetchall()
    assert "bookings_active_window" in plan[0][3] and "SCAN" not in plan[0][3]
    plan = db.execute("EXPLAIN QUERY PLAN SELECT MAX(end_ts - start_ts) FROM bookings").fetchall()
    assert "bookings_duration" in plan[0][3]


# -- reserving -----------------------------------------------------------------------------

def test_a_reservation_is_stored_as_returned_in_utc(store):
    start = datetime(2030, 3, 4, 11, 0, 30, 123456, tzinfo=BERLIN)
    result = store.reserve(request(start, start + timedelta(hours=1), invitees=("bob@x.org",)),
                           NOW, CAP, 8)
    assert isinstance(result, Reserved)
    b = result.booking
    assert b.start == datetime(2030, 3, 4, 10, 0, 30, tzinfo=UTC) and b.start.tzinfo is UTC
    assert normalize_reference(b.reference) == b.reference
    assert len(b.participant_pin) == 8 and b.participant_pin != b.moderator_pin
    assert b.invitees == ("bob@x.org",) and b.created == NOW
    assert store.get(b.reference) == b
    assert store.list() == [b]


def test_the_same_message_seen_twice_books_once(store):
    first = reserve(store, at(10), at(11), message_id="<m1@example.com>")
    again = reserve(store, at(10), at(11), message_id="<m1@example.com>")
    assert again == first
    assert len(store.list()) == 1
    assert store.booking_for_message("<m1@example.com>") == first.booking
    assert store.booking_for_message("<other@example.com>") is None


def test_full_slot_books_nothing_and_proposes_nearby_free_slots(store):
    assert isinstance(reserve(store, at(10), at(12), 8), Reserved)
    result = reserve(store, at(10, 30), at(11, 30), 3)
    assert isinstance(result, Full)
    assert result.reason == "lines" and result.free_lines == 2
    assert [p.start for p in result.proposals] == [at(8, 45), at(9), at(12)]
    assert len(store.list()) == 1


def test_a_refused_request_books_nothing(store):
    result = reserve(store, at(7), at(7, 30))
    assert isinstance(result, Refused) and result.reason == "past"
    assert store.list() == []


def test_cancelling_frees_the_lines(store):
    first = reserve(store, at(10), at(11), 8).booking
    assert isinstance(reserve(store, at(10), at(11), 5), Full)
    cancelled = store.cancel(first.reference)
    assert cancelled.status is BookingStatus.CANCELLED and cancelled.sequence == 1
    assert store.get(first.reference) == cancelled
    assert isinstance(reserve(store, at(10), at(11), 5), Reserved)
    assert store.cancel("CB-ZZZZZ") is None
    assert cancelled in store.list(include_cancelled=True)
    assert cancelled not in store.list()


def test_list_filters_by_end_and_orders_by_start(store):
    late = reserve(store, at(15), at(16), 1).booking
    early = reserve(store, at(9), at(10), 1).booking
    assert store.list() == [early, late]
    assert store.list(since=at(10)) == [late]


# -- PINs ----------------------------------------------------------------------------------

def test_overlapping_bookings_never_share_a_pin(store, same_pins_every_time):
    a = reserve(store, at(10), at(11), 1).booking
    b = reserve(store, at(10, 30), at(11, 30), 1).booking
    c = reserve(store, at(11, 30), at(12), 1).booking       # within the early-join margin of a
    pins = [p for x in (a, b, c) for p in (x.participant_pin, x.moderator_pin)]
    assert len(set(pins)) == 6


def test_no_booking_gets_a_moderators_personal_pin(store, same_pins_every_time):
    first = reserve(store, at(10), at(11), 1).booking
    store.reserved_pins = frozenset({first.participant_pin, first.moderator_pin})
    again = reserve(store, at(10, day=6), at(11, day=6), 1).booking   # same draws, far apart
    assert {again.participant_pin, again.moderator_pin}.isdisjoint(store.reserved_pins)


def test_bookings_far_apart_may_reuse_pins(store, same_pins_every_time):
    a = reserve(store, at(10), at(11), 1).booking
    b = reserve(store, at(10, day=6), at(11, day=6), 1).booking
    assert (a.participant_pin, a.moderator_pin) == (b.participant_pin, b.moderator_pin)


def test_find_by_pin_knows_moderators_and_the_early_join_window(store):
    b = reserve(store, at(10), at(11), 2).booking
    assert store.find_by_pin(b.participant_pin, at(10, 30)) == (b, False)
    assert store.find_by_pin(b.moderator_pin, at(10, 30)) == (b, True)
    assert store.find_by_pin(b.participant_pin, at(9, 55)) is None
    assert store.find_by_pin(b.participant_pin, at(9, 55), early_minutes=10) == (b, False)
    assert store.find_by_pin(b.participant_pin, at(11)) is None
    store.cancel(b.reference)
    assert store.find_by_pin(b.participant_pin, at(10, 30)) is None


# -- changing ------------------------------------------------------------------------------

def test_a_change_counts_the_booking_itself_only_once(store):
    b = reserve(store, at(10), at(11), 7).booking
    result = store.change(b.reference, NOW, CAP, participants=8)
    assert isinstance(result, Reserved)
    assert result.booking.participants == 8 and result.booking.sequence == 1
    assert result.booking.participant_pin == b.participant_pin
    assert store.get(b.reference) == result.booking


def test_a_change_that_does_not_fit_leaves_the_booking_as_it_was(store):
    b = reserve(store, at(10), at(11), 4).booking
    reserve(store, at(12), at(13), 8)
    result = store.change(b.reference, NOW, CAP, start=at(12))
    assert isinstance(result, Full) and result.free_lines == 2
    assert all(p.start != at(12) for p in result.proposals)
    assert store.get(b.reference) == b


def test_moving_the_start_keeps_the_length(store):
    b = reserve(store, at(10), at(11, 30), 2).booking
    moved = store.change(b.reference, NOW, CAP, start=at(14)).booking
    assert (moved.start, moved.end) == (at(14), at(15, 30))


def test_a_change_reissues_only_pins_that_would_collide(store, same_pins_every_time):
    a = reserve(store, at(10), at(11), 1).booking
    b = reserve(store, at(10, day=6), at(11, day=6), 1).booking      # same PINs as a
    moved = store.change(b.reference, NOW, CAP, start=at(10, 30)).booking
    assert moved.participant_pin != a.participant_pin
    assert moved.moderator_pin != a.moderator_pin
    assert moved.participant_pin != moved.moderator_pin
    assert store.find_by_pin(moved.participant_pin, at(10, 45)) == (moved, False)


def test_changes_to_unknown_cancelled_or_finished_bookings_are_refused(store):
    assert store.change("CB-ZZZZZ", NOW, CAP, participants=2).reason == "unknown_reference"
    b = reserve(store, at(10), at(11), 2).booking
    assert store.change(b.reference, at(12), CAP, participants=3).reason == "past"
    store.cancel(b.reference)
    assert store.change(b.reference, NOW, CAP, participants=3).reason == "cancelled"


def test_a_running_conference_may_grow(store):
    b = reserve(store, at(10), at(11), 2).booking
    grown = store.change(b.reference, at(10, 30), CAP, participants=5)
    assert isinstance(grown, Reserved) and grown.booking.participants == 5


# -- races ---------------------------------------------------------------------------------

def test_threads_racing_for_the_last_lines_cannot_both_win(tmp_path):
    store = SqliteStore(tmp_path / "race.sqlite3")
    results, errors = [], []
    barrier = threading.Barrier(8)

    def contender():
        try:
            barrier.wait()
            results.append(reserve(store, at(10), at(11), 4))
        except Exception as exc:                                   # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=contender) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(isinstance(r, Reserved) for r in results) == 2      # 2 x 4 of 10 lines
    assert sum(isinstance(r, Full) for r in results) == 6
    assert sum(b.participants for b in store.list()) == 8
    store.close()


def _process_contender(path, barrier, queue):
    store = SqliteStore(path)
    barrier.wait()
    result = store.reserve(request(at(10), at(11), 3), NOW, CAP, 6)
    queue.put(type(result).__name__)
    store.close()


def test_processes_racing_on_one_file_cannot_both_win(tmp_path):
    path = tmp_path / "race.sqlite3"
    SqliteStore(path).close()
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_process_contender, args=(path, barrier, queue))
             for _ in range(6)]
    for p in procs:
        p.start()
    outcomes = sorted(queue.get(timeout=20) for _ in procs)
    for p in procs:
        p.join(timeout=20)
        assert p.exitcode == 0
    assert outcomes == ["Full"] * 3 + ["Reserved"] * 3               # 3 x 3 of 10 lines
    assert sum(b.participants for b in SqliteStore(path).list()) == 9


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 12), st.integers(1, 8)),
                min_size=1, max_size=25))
def test_stored_bookings_never_oversubscribe_any_instant(sequence):
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "p.sqlite3")
        for q, length, n in sequence:
            start = at(9) + timedelta(minutes=15 * q)
            store.reserve(request(start, start + timedelta(minutes=15 * length), n), NOW, CAP, 6)
        booked = store.list()
        store.close()
    for t in {b.start for b in booked}:
        assert sum(b.participants for b in booked if b.start <= t < b.end) <= CAP.total_lines
    assert booked                                   # the first request always fits


# -- the mail journal and processed Message-IDs --------------------------------------------

def test_journaled_mail_stays_unhandled_until_it_has_an_outcome(tmp_path):
    path = tmp_path / "j.sqlite3"
    store = SqliteStore(path)
    first = store.journal(b"Subject: a\r\n\r\nhi", "smtp", "<a@x>", "alice@x", NOW)
    second = store.journal(b"Subject: b\r\n\r\nhi", "imap", None, None, NOW + timedelta(seconds=5))
    store.set_outcome(first, "booked CB-7K2Q9")
    store.close()
    reopened = SqliteStore(path)                    # after a crash: replay what was left
    [left] = reopened.unhandled_mail()
    assert (left.id, left.transport, left.raw, left.outcome) == (second, "imap",
                                                                b"Subject: b\r\n\r\nhi", None)
    mail = reopened.get_mail(first)
    assert (mail.message_id, mail.sender, mail.received, mail.outcome) == (
        "<a@x>", "alice@x", NOW, "booked CB-7K2Q9")
    assert [m.id for m in reopened.mails(limit=1)] == [second]
    assert [m.id for m in reopened.mails()] == [second, first]
    assert reopened.get_mail(9999) is None


def test_processed_message_ids_are_remembered(store):
    jid = store.journal(b"x", "smtp", "<m@x>", "a@x", NOW)
    assert not store.is_processed("<m@x>")
    store.mark_processed("<m@x>", jid)
    store.mark_processed("<m@x>", jid)              # twice is harmless
    assert store.is_processed("<m@x>") and not store.is_processed("<n@x>")


# -- the outgoing queue ----------------------------------------------------------------------

def test_a_queued_reply_is_due_at_once_and_retries_on_schedule(store):
    jid = store.journal(b"x", "smtp", "<m@x>", "a@x", NOW)
    mid = store.queue_mail(b"Subject: re\r\n\r\nok", "bot@x", ["a@x", "b@x"], jid)
    [due] = store.due_mail(NOW)
    assert (due.id, due.rcpt_to, due.attempts, due.next_try, due.journal_id) == (
        mid, ("a@x", "b@x"), 0, None, jid)
    assert store.pending_for_journal(jid) == 1

    store.mark_retry(mid, "421 try later", NOW + timedelta(seconds=30))
    assert store.due_mail(NOW + timedelta(seconds=29)) == []
    [again] = store.due_mail(NOW + timedelta(seconds=30))
    assert (again.attempts, again.last_error) == (1, "421 try later")

    store.mark_sent(mid, NOW + timedelta(seconds=31))
    assert store.due_mail(NOW + timedelta(days=1)) == []
    assert store.pending_for_journal(jid) == 0


def test_queued_mail_survives_a_restart(tmp_path):
    path = tmp_path / "q.sqlite3"
    first = SqliteStore(path)
    first.queue_mail(b"raw", "bot@x", ["a@x"], None)
    first.close()
    [due] = SqliteStore(path).due_mail(NOW)
    assert due.raw == b"raw" and due.mail_from == "bot@x"


def test_a_mail_without_recipients_is_not_queued(store):
    with pytest.raises(ValueError):
        store.queue_mail(b"raw", "bot@x", [], None)


# -- committing a decision: replies + processed + outcome in one transaction -----------------------

def test_commit_decision_queues_marks_and_sets_the_outcome_together(store):
    jid = store.journal(b"x", "smtp", "<m@x>", "a@x", NOW)
    assert store.processed_journal("<m@x>") is None
    assert store.commit_decision(jid, "booked CB-7K2Q9", [Draft(b"r1", ("a@x",)),
                                                         Draft(b"r2", ("b@x",))], "<m@x>") is None
    assert [(m.raw, m.mail_from, m.rcpt_to) for m in store.due_mail(NOW)] == [
        (b"r1", "", ("a@x",)), (b"r2", "", ("b@x",))]
    assert store.processed_journal("<m@x>") == jid and store.is_processed("<m@x>")
    assert store.get_mail(jid).outcome == "booked CB-7K2Q9"


def test_a_failure_inside_commit_decision_leaves_nothing_behind(store, monkeypatch):
    jid = store.journal(b"x", "smtp", "<m@x>", "a@x", NOW)

    def crash(db, journal_id, outcome):
        raise OSError("power cut")
    monkeypatch.setattr(store, "_set_outcome", crash)
    with pytest.raises(OSError):
        store.commit_decision(jid, "booked CB-7K2Q9", [Draft(b"r1", ("a@x",))], "<m@x>")
    assert store.due_mail(NOW) == [] and store.processed_journal("<m@x>") is None
    assert [m.id for m in store.unhandled_mail()] == [jid]


def test_a_second_row_with_a_processed_message_id_commits_as_a_duplicate(store):
    first = store.journal(b"x", "smtp", "<m@x>", "a@x", NOW)
    second = store.journal(b"x", "imap", "<m@x>", "a@x", NOW)
    store.commit_decision(first, "booked CB-7K2Q9", [Draft(b"r1", ("a@x",))], "<m@x>")
    assert store.commit_decision(second, "booked CB-7K2Q9", [Draft(b"r1", ("a@x",))],
                                 "<m@x>") == first
    assert len(store.due_mail(NOW)) == 1
    assert store.get_mail(second).outcome.startswith("duplicate")


def test_commit_decision_refuses_a_reply_without_recipients_before_writing(store):
    jid = store.journal(b"x", "smtp", "<m@x>", "a@x", NOW)
    with pytest.raises(ValueError):
        store.commit_decision(jid, "booked", [Draft(b"r1", ("a@x",)), Draft(b"r2", ())], "<m@x>")
    assert store.due_mail(NOW) == [] and store.get_mail(jid).outcome is None


def test_lookup_pin_finds_a_booking_outside_its_window_for_the_ivr(tmp_path):
    """find_by_pin is strict; lookup_pin also returns a booking that has not started or has
    ended within the margin, so the caller hears 'not started'/'over' instead of 'wrong PIN'."""
    from datetime import datetime, timedelta, timezone
    from bot.booking.domain import BookingRequest
    from bot.booking.ledger import Reserved
    from bot.config.settings import CapacitySettings
    from bot.store.sqlite import SqliteStore
    store = SqliteStore(tmp_path / "s.sqlite3")
    now = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    start = now + timedelta(hours=3)
    res = store.reserve(BookingRequest(start, start + timedelta(hours=1), 5, "T", "a@example.com"),
                        now, CapacitySettings(), 6)
    assert isinstance(res, Reserved)
    b = res.booking
    assert store.find_by_pin(b.participant_pin, now, early_minutes=10) is None
    hit = store.lookup_pin(b.moderator_pin, now, timedelta(hours=12))
    assert hit is not None and hit[0].reference == b.reference and hit[1] is True
    after = start + timedelta(hours=2)
    assert store.lookup_pin(b.participant_pin, after, timedelta(hours=12))[1] is False
    assert store.lookup_pin(b.participant_pin, after + timedelta(days=1), timedelta(hours=12)) is None
    assert store.lookup_pin("999999", now, timedelta(hours=12)) is None


# --- reviewer findings: who cancelled, dead letters, upgrading a version-1 file ------------------

def test_cancel_remembers_the_cancelling_mail_and_a_second_cancel_changes_nothing(store):
    booking = store.reserve(request(at(10), at(11)), NOW, CAP, 6).booking
    cancelled = store.cancel(booking.reference, "<cancel-1@example.com>")
    assert cancelled.cancelled_by == "<cancel-1@example.com>"
    again = store.cancel(booking.reference, "<cancel-2@example.com>")
    assert again == cancelled == store.get(booking.reference)


def test_a_dead_reply_is_kept_not_due_and_not_pending(store):
    jid = store.journal(b"raw", "smtp", "<d@x>", "a@example.com", NOW)
    mail_id = store.queue_mail(b"reply", "", ["ghost@example.com"], jid)
    store.mark_retry(mail_id, "451 busy", NOW + timedelta(minutes=1), failed_at=NOW)
    store.mark_retry(mail_id, "451 busy", NOW + timedelta(minutes=2),
                     failed_at=NOW + timedelta(minutes=1))
    [due] = store.due_mail(NOW + timedelta(hours=1))
    assert due.first_failed == NOW and due.dead is None
    store.mark_dead(mail_id, "550 no such user", NOW + timedelta(hours=2))
    assert store.due_mail(NOW + timedelta(days=9)) == []
    assert store.pending_for_journal(jid) == 0
    [dead] = store.dead_mail()
    assert (dead.id, dead.attempts, dead.last_error) == (mail_id, 3, "550 no such user")
    assert dead.dead == NOW + timedelta(hours=2) and dead.first_failed == NOW


def test_a_version_1_file_is_upgraded_keeping_its_rows(tmp_path):
    from bot.store.schema import MIGRATIONS
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (1)")
    for sql in MIGRATIONS[0]:
        db.execute(sql)
    db.execute("INSERT INTO outbox (raw, mail_from, rcpt_to) VALUES (x'00', '', '[\"a@b.c\"]')")
    db.close()
    store = SqliteStore(path)
    assert store.schema_version() == len(MIGRATIONS) >= 2
    [mail] = store.due_mail(NOW)
    assert mail.dead is None and mail.first_failed is None
    booking = store.reserve(request(at(10), at(11)), NOW, CAP, 6).booking
    assert store.get(booking.reference).cancelled_by is None
    store.close()


def test_an_extension_that_keeps_pins_is_refused_when_a_pin_would_collide(store):
    """A running conference is extended only with its PINs: its callers' PINs must keep working."""
    a = store.reserve(request(at(9), at(10)), NOW, CAP, 6).booking
    b = store.reserve(request(at(13), at(14)), NOW, CAP, 6).booking
    with store._tx() as db:        # b happens to share a's participant PIN (unique only nearby)
        db.execute("UPDATE bookings SET participant_pin = ? WHERE reference = ?",
                   (a.participant_pin, b.reference))
    result = store.change(a.reference, NOW, CAP, end=at(12, 30), keep_pins=True)
    assert result.reason == "pin_taken" and store.get(a.reference).end == a.end
    moved = store.change(a.reference, NOW, CAP, end=at(10, 15), keep_pins=True)
    assert moved.booking.participant_pin == a.participant_pin
    assert moved.booking.end == at(10, 15)
