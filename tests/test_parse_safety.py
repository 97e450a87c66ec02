"""The parser's safety rules (reviewer findings): titles are one clean line, durations are real
time across daylight-saving changes, and a start a few minutes late still books.

Pure: messages are built in memory, `now` is passed, no clock and no network.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from bot.booking.domain import PAST_GRACE, Booking
from bot.booking.capacity import PAST_GRACE as PLANNER_GRACE
from bot.config.settings import MailSettings, Settings
from mail.parse import ParseError, Parsed, clean_title, parse_booking, parse_change, read_message

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
SETTINGS = Settings(mail=MailSettings(address="konferenz@confbot.example"))


def mail(body: str, subject: str = "Nachtwartung",
         date_header: str = "Mon, 23 Mar 2026 09:00:00 +0100") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "konferenz@confbot.example"
    msg["Subject"] = subject
    msg["Date"] = date_header
    msg.set_content(body)
    return msg


def booked(body: str, now: datetime, **kw):
    result = parse_booking(mail(body, **kw), now=now, settings=SETTINGS)
    assert isinstance(result, Parsed), result
    return result


# --- titles ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("Quarterly review\nsecond line", "Quarterly review second line"),
    ("Budget\u2028Runde", "Budget Runde"),
    ("Budget\u2029Runde\r\n", "Budget Runde"),
    ("  Tabs\tand\x0bvertical\x0ctabs  ", "Tabs and vertical tabs"),
    ("Bell\x07 and NUL\x00 gone", "Bell and NUL gone"),
    ("evil\u202etxt.exe", "eviltxt.exe"),
    ("Ünïcödé Grüße – ok", "Ünïcödé Grüße – ok"),
])
def test_a_title_is_one_line_without_control_characters(raw, clean):
    assert clean_title(raw) == clean


def test_a_title_is_capped_at_200_characters():
    assert len(clean_title("x" * 5000)) == 200


def test_a_topic_line_with_a_line_separator_becomes_a_one_line_title():
    raw = ("From: Alice <alice@example.com>\r\nTo: konferenz@confbot.example\r\nSubject: Telko\r\n"
           "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
           "\r\nThema: Budget=E2=80=A8Runde\r\nAm 01.12.2026 um 10:00 Uhr, 1 Stunde, 5 Personen.\r\n")
    result = parse_booking(read_message(raw.encode()), now=datetime(2026, 11, 23, 9, tzinfo=UTC),
                           settings=SETTINGS)
    assert isinstance(result, Parsed), result
    assert result.request.title == "Budget Runde"


def test_an_invitation_summary_with_an_escaped_newline_becomes_a_one_line_title():
    raw = ("From: Alice <alice@example.com>\r\nTo: konferenz@confbot.example\r\nSubject: Einladung\r\n"
           "Date: Mon, 23 Nov 2026 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n"
           "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nPRODID:-//x//y//EN\r\n"
           "BEGIN:VEVENT\r\nUID:abc123@example.com\r\nDTSTART:20261201T090000Z\r\n"
           "DTEND:20261201T100000Z\r\nSUMMARY:Quarterly review\\nsecond line\r\n"
           "ORGANIZER:mailto:alice@example.com\r\nATTENDEE:mailto:bob@example.com\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    result = parse_booking(read_message(raw.encode()), now=datetime(2026, 11, 23, 9, tzinfo=UTC),
                           settings=SETTINGS)
    assert isinstance(result, Parsed), result
    assert result.request.title == "Quarterly review second line"


# --- daylight saving time ----------------------------------------------------------------------
# Berlin: 29.03.2026 02:00 CET -> 03:00 CEST (spring forward); 25.10.2026 03:00 CEST -> 02:00 CET.

SPRING_NOW = datetime(2026, 3, 23, 8, tzinfo=UTC)
AUTUMN_NOW = datetime(2026, 10, 19, 8, tzinfo=UTC)


@pytest.mark.parametrize("body, now, date_header, start_utc, end_utc, minutes", [
    # "3 hours" from 01:00 on the spring night: three real hours, ending 05:00 CEST
    ("am 29.03.2026 um 01:00 Uhr, Dauer 3 Stunden, für 8 Personen", SPRING_NOW,
     "Mon, 23 Mar 2026 09:00:00 +0100", datetime(2026, 3, 29, 0, tzinfo=UTC),
     datetime(2026, 3, 29, 3, tzinfo=UTC), 180),
    # "from 01:00 to 04:00" on the spring night: wall-clock times, two real hours
    ("am 29.03.2026 von 01:00 bis 04:00 Uhr für 8 Personen", SPRING_NOW,
     "Mon, 23 Mar 2026 09:00:00 +0100", datetime(2026, 3, 29, 0, tzinfo=UTC),
     datetime(2026, 3, 29, 2, tzinfo=UTC), 120),
    # "3 hours" from 01:00 on the autumn night: three real hours, ending 03:00 CET
    ("am 25.10.2026 um 01:00 Uhr, Dauer 3 Stunden, für 8 Personen", AUTUMN_NOW,
     "Mon, 19 Oct 2026 10:00:00 +0200", datetime(2026, 10, 24, 23, tzinfo=UTC),
     datetime(2026, 10, 25, 2, tzinfo=UTC), 180),
    # "from 01:00 to 04:00" on the autumn night: four real hours
    ("am 25.10.2026 von 01:00 bis 04:00 Uhr für 8 Personen", AUTUMN_NOW,
     "Mon, 19 Oct 2026 10:00:00 +0200", datetime(2026, 10, 24, 23, tzinfo=UTC),
     datetime(2026, 10, 25, 3, tzinfo=UTC), 240),
])
def test_durations_are_real_time_across_clock_changes(body, now, date_header, start_utc,
                                                      end_utc, minutes):
    result = booked(body, now, date_header=date_header)
    r = result.request
    assert (r.start, r.end) == (start_utc, end_utc)
    assert r.duration == timedelta(minutes=minutes)
    assert result.to_json()["duration_minutes"] == minutes


def test_the_length_limit_counts_real_minutes_on_a_clock_change_night():
    settings = Settings(mail=SETTINGS.mail,
                        capacity=SETTINGS.capacity.__class__(max_minutes=180))
    # 01:00-04:00 on the autumn night is 240 real minutes: over a 180-minute limit
    result = parse_booking(mail("am 25.10.2026 von 01:00 bis 04:00 Uhr für 8 Personen",
                                date_header="Mon, 19 Oct 2026 10:00:00 +0200"),
                           now=AUTUMN_NOW, settings=settings)
    assert isinstance(result, ParseError) and result.reason == "too_long"
    assert "240 minutes" in result.error
    # and 01:00-04:00 on the spring night is 120: within it
    assert isinstance(parse_booking(mail("am 29.03.2026 von 01:00 bis 04:00 Uhr für 8 Personen"),
                                    now=SPRING_NOW, settings=settings), Parsed)


def test_a_change_keeps_the_real_length_across_a_clock_change():
    current = Booking(reference="CB-23456", organizer="alice@example.com", title="x",
                      start=datetime(2026, 3, 28, 0, tzinfo=UTC),    # Sat 01:00 CET
                      end=datetime(2026, 3, 28, 3, tzinfo=UTC), participants=3,
                      participant_pin="123457", moderator_pin="765432")
    changed = parse_change(mail("Bitte auf 29.03.2026 01:00 verschieben."), now=SPRING_NOW,
                           settings=SETTINGS, current=current)
    assert changed["start"] == datetime(2026, 3, 29, 0, tzinfo=UTC)
    assert changed["end"] == datetime(2026, 3, 29, 3, tzinfo=UTC)     # 05:00 CEST, 3 real hours


def test_a_new_duration_on_a_clock_change_night_is_real_time():
    current = Booking(reference="CB-23456", organizer="alice@example.com", title="x",
                      start=datetime(2026, 10, 24, 23, tzinfo=UTC),  # Sun 01:00 CEST
                      end=datetime(2026, 10, 25, 0, tzinfo=UTC), participants=3,
                      participant_pin="123457", moderator_pin="765432")
    changed = parse_change(mail("Bitte am 25.10.2026 um 01:00 Uhr, Dauer 3 Stunden."),
                           now=AUTUMN_NOW, settings=SETTINGS, current=current)
    assert changed["start"] == datetime(2026, 10, 24, 23, tzinfo=UTC)
    assert changed["end"] == datetime(2026, 10, 25, 2, tzinfo=UTC)     # 03:00 CET


# --- the late-mail grace -----------------------------------------------------------------------

def test_parser_and_planner_share_one_grace():
    assert PAST_GRACE is PLANNER_GRACE and PAST_GRACE == timedelta(minutes=5)


def test_a_start_a_few_minutes_ago_still_books():
    now = datetime(2026, 3, 24, 10, 3, tzinfo=BERLIN)
    r = booked("Heute, 24.03.2026 um 10:00 Uhr, 1 Stunde, 4 Personen", now,
               date_header="Tue, 24 Mar 2026 10:02:00 +0100").request
    assert r.start == datetime(2026, 3, 24, 10, 0, tzinfo=BERLIN)


def test_a_bare_time_just_past_means_today_within_the_grace():
    now = datetime(2026, 3, 24, 10, 2, tzinfo=BERLIN)
    r = booked("um 10 Uhr, 1 Stunde, 4 Personen", now,
               date_header="Tue, 24 Mar 2026 10:02:00 +0100").request
    assert r.start == datetime(2026, 3, 24, 10, 0, tzinfo=BERLIN)


def test_a_start_beyond_the_grace_is_past():
    now = datetime(2026, 3, 24, 10, 6, tzinfo=BERLIN)
    result = parse_booking(mail("am 24.03.2026 um 10:00 Uhr, 1 Stunde, 4 Personen",
                                date_header="Tue, 24 Mar 2026 10:06:00 +0100"),
                           now=now, settings=SETTINGS)
    assert isinstance(result, ParseError) and result.reason == "past"
