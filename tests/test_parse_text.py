"""Specifications of the booking-mail parser's wording rules, one rule per test.

Pure: messages are built in memory, `now` is passed, no clock and no network.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from bot.booking.domain import Booking, DialInMode
from bot.config.settings import CapacitySettings, MailSettings, Settings
from mail.body import booking_text
from mail.datetext import detect_language, find_count, find_duration, find_when
from mail.parse import ParseError, Parsed, parse_booking, parse_change

BERLIN = ZoneInfo("Europe/Berlin")
SETTINGS = Settings(mail=MailSettings(address="konferenz@confbot.example"))
SENT = datetime(2025, 12, 1, 9, 0, tzinfo=BERLIN)   # a Monday


def mail(body: str, subject: str = "Telko", sender: str = "Max Muster <Max@Example.DE>",
         date_header: str = "Mon, 1 Dec 2025 09:00:00 +0100") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "konferenz@confbot.example"
    msg["Subject"] = subject
    msg["Date"] = date_header
    msg.set_content(body)
    return msg


def parse(body: str, *, now: datetime = SENT, settings: Settings = SETTINGS, **kw):
    return parse_booking(mail(body, **kw), now=now, settings=settings)


def booked(body: str, **kw):
    result = parse(body, **kw)
    assert isinstance(result, Parsed), result
    return result.request


# --- dates and times ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, day, start", [
    ("morgen um 10 Uhr", date(2025, 12, 2), time(10)),
    ("nächsten Dienstag 15 Uhr", date(2025, 12, 2), time(15)),
    ("übernächsten Dienstag um 15:00", date(2025, 12, 9), time(15)),
    ("nächste Woche Montag um 9", date(2025, 12, 8), time(9)),
    ("next Tuesday 9am", date(2025, 12, 2), time(9)),
    ("tomorrow at 2:30pm", date(2025, 12, 2), time(14, 30)),
    ("am 3.12. um 14.30 Uhr", date(2025, 12, 3), time(14, 30)),
    ("am 5.1. um 10 Uhr", date(2026, 1, 5), time(10)),          # year-less and past: next year
    ("on 2025-12-15 at 13:00", date(2025, 12, 15), time(13)),
    ("Freitag, 12. Dezember 2025, 10:00 Uhr", date(2025, 12, 12), time(10)),
    ("December 10, 2025 at 3:00 PM", date(2025, 12, 10), time(15)),
    ("in 3 Tagen um 11 Uhr", date(2025, 12, 4), time(11)),
    ("am Dienstag, den 9.12. um 10:00", date(2025, 12, 9), time(10)),   # the date, not the next Tuesday
    ("Montag morgen um 9", date(2025, 12, 8), time(9)),                 # "morgen" here is the morning
    ("um 3 am Mittwoch", date(2025, 12, 3), time(15)),            # "um 3" in business means 15:00
])
def test_dates_and_times_resolve_against_the_mail_date(text, day, start):
    when = find_when(text, SENT, "de")
    assert (when.day, when.start) == (day, start)


def test_guten_morgen_is_a_greeting_not_tomorrow():
    assert find_when("Guten Morgen, am Donnerstag um 9 Uhr bitte", SENT).day == date(2025, 12, 4)
    assert find_when("Guten Morgen, bitte um 9 Uhr", SENT).day is None


@pytest.mark.parametrize("text, start, end", [
    ("von 15 bis 16:30 Uhr", time(15), time(16, 30)),
    ("from 13:00 to 14:30", time(13), time(14, 30)),
    ("10:00 – 11:00 Uhr", time(10), time(11)),
    ("from 9 to 10:30am", time(9), time(10, 30)),
    ("zwischen 14 und 15 Uhr", time(14), time(15)),
])
def test_a_time_range_gives_start_and_end(text, start, end):
    when = find_when("morgen " + text, SENT)
    assert (when.start, when.end) == (start, end)


# --- counts and durations ------------------------------------------------------------------------

@pytest.mark.parametrize("text, count", [
    ("für 8 Personen", 8), ("12 participants", 12), ("mit 5 Teilnehmern", 5),
    ("Teilnehmerzahl: 6", 6), ("zwölf Teilnehmer", 12), ("eight people", 8),
    ("8-10 Personen", 10), ("20 callers", 20), ("we will be 7", 7), ("3 attendees", 3),
])
def test_participant_counts_in_german_and_english(text, count):
    assert find_count(text)[0] == count


def test_a_count_is_removed_before_the_time_search():
    _, rest = find_count("morgen um 10 Uhr für 8 Personen")
    assert "8" not in rest
    assert find_when(rest, SENT).start == time(10)


@pytest.mark.parametrize("text, minutes", [
    ("1 Stunde", 60), ("1,5 Stunden", 90), ("90 Minuten", 90), ("half an hour", 30),
    ("eine halbe Stunde", 30), ("2 hours", 120), ("anderthalb Stunden", 90),
    ("1 hour 30 minutes", 90), ("Dauer: 1:15", 75), ("45 min", 45), ("1h30", 90),
])
def test_durations_in_words(text, minutes):
    assert find_duration(text)[0] == timedelta(minutes=minutes)


def test_in_two_hours_is_not_a_duration():
    assert find_duration("bitte in 2 Stunden")[0] is None


def test_language_detection():
    assert detect_language("Bitte morgen um 10 Uhr eine Konferenz für 8 Personen") == "de"
    assert detect_language("Please book a conference tomorrow at 10 for 8 people") == "en"


# --- body: quotes, forwards, signatures ------------------------------------------------------------

def test_quoted_lines_and_the_quoted_reply_are_not_the_booking():
    text = booking_text("Ja, Freitag 10 Uhr.\n\nAm 01.12.2025 um 09:00 schrieb Max:\n> Donnerstag 14 Uhr?\n")
    assert "Freitag" in text and "Donnerstag" not in text and "09:00" not in text


def test_a_forward_keeps_the_forwarded_body_but_not_its_header_dates():
    body = ("Bitte buchen.\n\n---------- Forwarded message ---------\nFrom: A <a@x.de>\n"
            "Date: Mon, Dec 1, 2025 at 8:02 AM\nSubject: X\nTo: B <b@x.de>\n\nMittwoch 11 Uhr, 4 Personen\n")
    text = booking_text(body)
    assert "Mittwoch 11 Uhr" in text and "8:02" not in text and "a@x.de" not in text


def test_the_signature_is_cut_with_its_phone_numbers_and_dates():
    text = booking_text("Morgen 10 Uhr.\n\nMit freundlichen Grüßen\nMax\nTel. 089 1234-5678\nseit 01.01.2020\n")
    assert text == "Morgen 10 Uhr."


# --- whole mails ------------------------------------------------------------------------------

def test_plain_german_booking_with_defaults():
    r = booked("Hallo,\nmorgen um 10 Uhr für 8 Personen.\nGruß Max")
    assert r.start == datetime(2025, 12, 2, 10, tzinfo=BERLIN)
    assert r.end - r.start == timedelta(minutes=SETTINGS.capacity.default_minutes)
    assert (r.participants, r.title, r.organizer, r.language) == (8, "Telko", "max@example.de", "de")
    assert r.dial_in_mode is DialInMode.ALL_PREMIUM


@pytest.mark.parametrize("subject, title", [
    ("Re: AW: Fwd: Projekt X", "Projekt X"), ("WG: Jour fixe", "Jour fixe"), ("FW: Review", "Review"),
])
def test_title_falls_back_to_the_subject_without_reply_prefixes(subject, title):
    assert booked("morgen um 10 Uhr für 3 Personen", subject=subject).title == title


def test_a_topic_line_beats_the_subject():
    assert booked("Topic: Budget 2026\ntomorrow at 10am, 3 people", subject="Hi").title == "Budget 2026"


@pytest.mark.parametrize("phrase", ["gebührenfrei für Teilnehmer", "ich übernehme die Kosten",
                                    "toll-free for participants", "I pay", "initiator pays"])
def test_initiator_pays_when_the_mail_says_so(phrase):
    assert booked(f"morgen um 10 Uhr für 3 Personen. {phrase}.").dial_in_mode is DialInMode.INITIATOR_PAYS


def test_invitees_from_the_body_exclude_the_bot_and_the_sender():
    r = booked("morgen 10 Uhr, Einladung an a@x.de, max@example.de, konferenz@confbot.example, b@y.com")
    assert r.invitees == ("a@x.de", "b@y.com")
    assert r.participants == 3   # no count given: the organizer and the two named


def test_missing_start_and_participants_are_named():
    result = parse("Bitte eine Konferenz buchen.")
    assert isinstance(result, ParseError)
    assert result.missing == ("start", "participants")
    assert result.to_json() == {"error": result.error, "missing": ["start", "participants"]}


def test_a_date_without_a_time_is_missing_its_start():
    result = parse("Bitte am 3.12. eine Konferenz für 5 Personen.")
    assert result.missing == ("start",) and "no start time" in result.error


def test_relative_date_resolved_against_the_date_header_can_be_past_by_now():
    later = datetime(2025, 12, 3, 8, 0, tzinfo=BERLIN)
    result = parse("morgen um 10 Uhr für 8 Personen", now=later)
    assert isinstance(result, ParseError) and result.reason == "past"
    assert result.to_json() == {"error": result.error, "reason": "past"}


@pytest.mark.parametrize("field, value, body, reason", [
    ("max_minutes", 60, "morgen 10 Uhr, 2 Stunden, 3 Personen", "too_long"),
    ("max_days_ahead", 5, "am 20.12. um 10 Uhr, 3 Personen", "too_far_ahead"),
    ("room_max", 4, "morgen 10 Uhr, 5 Personen", "too_many_participants"),
])
def test_limits_come_from_the_settings(field, value, body, reason):
    strict = Settings(mail=SETTINGS.mail, capacity=CapacitySettings(**{field: value}))
    assert isinstance(parse(body, settings=strict), Parsed) is False
    assert parse(body, settings=strict).reason == reason
    assert isinstance(parse(body), Parsed)


def test_parsed_to_json_has_exactly_the_contract_keys():
    data = Parsed(booked("morgen 10 bis 11:30 Uhr, 4 Personen")).to_json()
    assert data == {"start": "2025-12-02T10:00:00+01:00", "end": "2025-12-02T11:30:00+01:00",
                    "duration_minutes": 90, "participants": 4, "title": "Telko",
                    "organizer": "max@example.de", "invitees": [], "language": "de"}


def test_parse_booking_accepts_raw_bytes():
    assert isinstance(parse_booking(bytes(mail("morgen um 10 Uhr, 3 Personen")), now=SENT,
                                    settings=SETTINGS), Parsed)


# --- follow-up changes -------------------------------------------------------------------------

def _booking() -> Booking:
    start = datetime(2025, 12, 4, 10, tzinfo=BERLIN)
    return Booking("CB-7K2Q9", "max@example.de", "Telko", start, start + timedelta(hours=1), 5,
                   "482913", "739201")


def test_change_to_a_new_time_keeps_the_day_and_length():
    change = parse_change(mail("Bitte auf 14 Uhr verschieben.\n\n> Beginn: 10:00"), now=SENT,
                          settings=SETTINGS, current=_booking())
    assert change == {"start": datetime(2025, 12, 4, 14, tzinfo=BERLIN),
                      "end": datetime(2025, 12, 4, 15, tzinfo=BERLIN)}


def test_change_of_participants_only():
    assert parse_change(mail("We will need 12 participants instead."), now=SENT,
                        settings=SETTINGS) == {"participants": 12}


def test_change_with_full_date_and_range_without_current_booking():
    change = parse_change(mail("Neu: am 9.12. von 15 bis 16:30 Uhr"), now=SENT, settings=SETTINGS)
    assert change == {"start": datetime(2025, 12, 9, 15, tzinfo=BERLIN),
                      "end": datetime(2025, 12, 9, 16, 30, tzinfo=BERLIN)}
