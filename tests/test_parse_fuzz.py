"""Fuzzing the booking-mail parser: no input makes it raise.

The tests call the unguarded `mail.parse._parse` (parse_booking's own exception barrier would
hide a bug) and check the result is one of the two answer types, with JSON that serialises.
"""
from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings, strategies as st

from bot.config.settings import MailSettings, Settings
from mail.parse import ParseError, Parsed, _parse, parse_change

NOW = datetime(2025, 12, 1, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
SETTINGS = Settings(mail=MailSettings(address="konferenz@confbot.example"))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments the parser reacts to, so random text reaches its deeper branches.
WORDS = st.sampled_from([
    "morgen", "um", "10", "Uhr", "für", "8", "Personen", "next", "Tuesday", "9am", "from", "13:00",
    "to", "14:30", "1,5", "Stunden", "half an hour", "3.12.", "2025-12-15", "12/16/2025", "bis",
    "Thema:", "Topic:", ">", "-- ", "Am 1.12.2025 schrieb X:", "a@b.de", "gebührenfrei", "\n",
    "zwölf", "Teilnehmer", "am", "Mittwoch", "Dezember", "31.2.", "99:99", "-", "Guten Morgen",
])


def _answer_is_well_formed(result) -> None:
    assert isinstance(result, (Parsed, ParseError))
    json.dumps(result.to_json())


@FAST
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw):
    _answer_is_well_formed(_parse(raw, now=NOW, settings=SETTINGS))


@FAST
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_after_real_headers_never_raise(body):
    raw = (b"From: a@example.de\r\nDate: Mon, 1 Dec 2025 09:00:00 +0100\r\nSubject: x\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/calendar\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n--b--\r\n")
    _answer_is_well_formed(_parse(raw, now=NOW, settings=SETTINGS))


@FAST
@given(st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=60).map(" ".join),
       st.text(max_size=80))
def test_arbitrary_text_bodies_and_subjects_never_raise(body, subject):
    msg = EmailMessage()
    msg["From"] = "max@example.de"
    msg["Date"] = "Mon, 1 Dec 2025 09:00:00 +0100"
    msg["Subject"] = " ".join(subject.split())
    msg.set_content(body)
    _answer_is_well_formed(_parse(msg, now=NOW, settings=SETTINGS))
    assert isinstance(parse_change(msg, now=NOW, settings=SETTINGS), dict)


@FAST
@given(st.text(max_size=400))
def test_arbitrary_calendar_text_never_raises(ics_body):
    raw = ("From: a@example.de\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n"
           "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + ics_body + "\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    _answer_is_well_formed(_parse(raw.encode("utf-8", "surrogatepass"), now=NOW, settings=SETTINGS))
