"""Specifications of time zones written in a booking mail (issue 7, point 6) and of relative
dates in the past (point 7). Pure: messages in memory, `now` passed in.

An explicit zone or offset after a time wins over the configured zone (Europe/Berlin here);
a relative day in the past is refused as "past" like an absolute past date.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from bot.booking.domain import Booking
from bot.config.settings import MailSettings, Settings
from mail.datetext import find_when
from mail.parse import ParseError, Parsed, parse_booking, parse_change
from mail.zones import find_zone

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
SETTINGS = Settings(mail=MailSettings(address="konferenz@confbot.example"))
SENT = datetime(2025, 12, 1, 9, 0, tzinfo=BERLIN)        # a Monday, winter (CET = UTC+1)
SUMMER = datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN)       # a Monday, summer (CEST = UTC+2)


def mail(body: str, *, sent: datetime = SENT, subject: str = "Telko") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Max Muster <max@example.de>"
    msg["To"] = "konferenz@confbot.example"
    msg["Subject"] = subject
    msg["Date"] = sent.strftime("%a, %d %b %Y %H:%M:%S %z")
    msg.set_content(body)
    return msg


def parse(body: str, *, sent: datetime = SENT, **kw):
    return parse_booking(mail(body, sent=sent, **kw), now=sent, settings=SETTINGS)


def start_utc(body: str, **kw) -> datetime:
    result = parse(body, **kw)
    assert isinstance(result, Parsed), result
    assert result.request.start.tzinfo is BERLIN   # always reported in the service zone
    return result.request.start.astimezone(UTC)


# --- point 6: the zone written in the mail wins -------------------------------------------------

@pytest.mark.parametrize("text, utc_hour", [
    ("tomorrow at 16:00 UTC, 5 participants", 16),
    ("tomorrow at 16:00 GMT, 5 participants", 16),
    ("tomorrow at 16:00 +0000, 5 participants", 16),
    ("tomorrow at 16:00Z, 5 participants", 16),
    ("tomorrow at 11:00 EST, 5 participants", 16),             # UTC-5
    ("tomorrow at 17:00 CET, 5 participants", 16),             # UTC+1
    ("tomorrow at 4pm London time, 5 participants", 16),       # GMT in December
    ("tomorrow at 10am Eastern time, 5 participants", 15),     # New York, EST in December
    ("tomorrow at 18:00 UTC+2, 5 participants", 16),
    ("morgen um 17 Uhr MEZ, 5 Teilnehmer", 16),
    ("morgen um 18 Uhr MESZ, 5 Teilnehmer", 16),               # the abbreviation's offset
    ("morgen um 16 Uhr UTC, 5 Teilnehmer", 16),
    ("morgen um 16:00 Uhr (UTC), 5 Teilnehmer", 16),
    ("morgen um 16 Uhr Londoner Zeit, 5 Teilnehmer", 16),
    ("morgen um 17 Uhr, 5 Teilnehmer", 16),                    # no zone: Berlin
])
def test_an_explicit_zone_after_the_time_wins_over_the_configured_zone(text, utc_hour):
    assert start_utc(text) == datetime(2025, 12, 2, utc_hour, 0, tzinfo=UTC)


def test_a_place_keeps_its_daylight_saving_rules_in_summer():
    # London is on BST (UTC+1) in June: 16:00 London = 15:00 UTC = 17:00 Berlin (CEST).
    assert start_utc("tomorrow at 16:00 London time, 5 participants", sent=SUMMER) == \
        datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


def test_a_range_and_an_end_time_are_read_on_the_written_clock():
    result = parse("tomorrow 15:00-16:30 UTC, 4 participants")
    request = result.request
    assert request.start.astimezone(UTC) == datetime(2025, 12, 2, 15, 0, tzinfo=UTC)
    assert request.end.astimezone(UTC) == datetime(2025, 12, 2, 16, 30, tzinfo=UTC)
    assert request.written_zone is not None


def test_a_relative_day_resolves_on_the_written_zones_calendar():
    # Sent 23:30 in Berlin on Monday = 14:30 on Monday in Los Angeles: "tomorrow" there is
    # Tuesday, 9:00 PST = 17:00 UTC on Tuesday (not on Wednesday).
    late = datetime(2025, 12, 1, 23, 30, tzinfo=BERLIN)
    assert start_utc("tomorrow at 9am PST, 5 participants", sent=late) == \
        datetime(2025, 12, 2, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "um 10 Uhr ist es gut",            # German "ist", not IST
    "10:00-12:00",                     # a range, not an offset
    "von 10 - 12 Uhr",
    "Meeting at 10, UTC is fine",      # not attached to the time
    "Best regards, the UTC team",
])
def test_words_that_only_look_like_zones_are_not_zones(text):
    assert find_zone(text) is None


def test_no_zone_leaves_the_service_zone_and_no_written_zone():
    result = parse("morgen um 10 Uhr, 5 Teilnehmer")
    assert result.request.written_zone is None
    assert find_when("morgen um 10 Uhr", SENT).zone is None


def test_a_change_to_a_time_with_a_zone_is_read_on_that_clock():
    current = Booking("CB-22222", "max@example.de", "Telko", datetime(2025, 12, 3, 9, tzinfo=UTC),
                      datetime(2025, 12, 3, 10, tzinfo=UTC), 5, "482913", "739164")
    wanted = parse_change(mail("Bitte ändern auf 15:00 UTC"), now=SENT, settings=SETTINGS,
                          current=current)
    assert wanted["start"].astimezone(UTC) == datetime(2025, 12, 3, 15, 0, tzinfo=UTC)


# --- point 7: relative dates in the past are refused ------------------------------------------

@pytest.mark.parametrize("text", [
    "yesterday at 10:00, 5 participants",
    "gestern um 10, 5 Teilnehmer",
    "gestern um 10 Uhr, 5 Teilnehmer",
    "vorgestern um 15 Uhr, 5 Teilnehmer",
    "the day before yesterday at 3pm, 5 participants",
    "vor 2 Tagen um 10 Uhr, 5 Teilnehmer",
    "3 days ago at 10:00, 5 participants",
    "letzten Freitag um 10 Uhr, 5 Teilnehmer",
    "last Friday at 10am, 5 participants",
])
def test_a_relative_date_in_the_past_is_refused_with_the_reason(text):
    result = parse(text)
    assert isinstance(result, ParseError), result
    assert result.reason == "past"
    assert "in the past" in result.error


def test_yesterday_names_the_day_it_means():
    assert find_when("yesterday at 10:00", SENT).day == date(2025, 11, 30)
    assert find_when("gestern um 10", SENT).day == date(2025, 11, 30)
    assert find_when("letzten Montag um 10", SENT).day == date(2025, 11, 24)
    # "gestern Morgen" is still yesterday (and the morning), not tomorrow
    assert find_when("gestern Morgen um 9", SENT).day == date(2025, 11, 30)


def test_today_and_tomorrow_still_book():
    assert start_utc("heute um 15 Uhr, 5 Teilnehmer") == datetime(2025, 12, 1, 14, tzinfo=UTC)
    assert start_utc("tomorrow at 10:00, 5 participants") == datetime(2025, 12, 2, 9, tzinfo=UTC)


# --- through the agent: the confirmation shows both clocks ------------------------------------

def _confirmation_text(body: str, sent: datetime = SENT) -> str:
    from email import message_from_bytes, policy

    from mail.agent import Agent
    from memledger import MemoryLedger
    settings = Settings(mail=MailSettings(address="konferenz@confbot.example",
                                          allowed_senders=("example.de",)))
    decision = Agent(settings, MemoryLedger(seed=3)).handle(mail(body, sent=sent), sent)
    assert decision.outcome.startswith("booked "), decision.outcome
    again = message_from_bytes(decision.replies[0].as_bytes(), policy=policy.default)
    return again.get_body(("plain",)).get_content()


def test_the_confirmation_shows_the_service_zone_and_the_zone_the_mail_used():
    body = _confirmation_text("Please book a call tomorrow at 16:00 UTC for 1 hour, 5 participants.")
    assert "When: Tuesday, 2 December 2025, 17:00–18:00 (CET)" in body
    assert "As written in your mail: Tuesday, 2 December 2025, 16:00–17:00 (UTC)" in body


def test_a_german_confirmation_shows_the_written_zone_in_german():
    body = _confirmation_text("Bitte buchen Sie morgen um 16 Uhr UTC eine Telko, 1 Stunde, 5 Teilnehmer.")
    assert "Termin: Dienstag, 2. Dezember 2025, 17:00–18:00 Uhr (CET)" in body
    assert "Wie in Ihrer Mail angegeben: Dienstag, 2. Dezember 2025, 16:00–17:00 Uhr (UTC)" in body


def test_a_written_zone_equal_to_the_service_clock_is_not_repeated():
    body = _confirmation_text("Please book a call tomorrow at 17:00 CET for 1 hour, 5 participants.")
    assert "17:00–18:00 (CET)" in body and "As written" not in body
