"""The booking-mail corpus (tests/data/*.eml) read against tests/data/expected.toml.

Each mail is a realistic sample (Outlook/Google/Thunderbird/Apple invitations, German and English
plain text, HTML-only, quoted-printable latin-1, base64, forwards, quoted replies, signatures)
or one that must be refused; `now` is given per mail, so nothing depends on the clock.
"""
from __future__ import annotations

import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.config.settings import MailSettings, Settings
from mail.parse import ParseError, Parsed, parse_booking

DATA = Path(__file__).parent / "data"
EXPECTED = tomllib.loads((DATA / "expected.toml").read_text(encoding="utf-8"))
SETTINGS = Settings(mail=MailSettings(address="konferenz@confbot.example"))


def test_every_mail_in_the_corpus_has_an_expectation_and_vice_versa():
    mails = {p.stem for p in DATA.glob("*.eml")}
    assert mails == set(EXPECTED)
    assert len(mails) >= 30


def test_the_corpus_covers_bookings_and_every_refusal_reason():
    reasons = {case.get("reason") for case in EXPECTED.values()}
    assert {"past", "too_long", "too_far_ahead", "too_many_participants", "not_a_booking",
            "unreadable", "foreign_language"} <= reasons
    assert sum("start" in case for case in EXPECTED.values()) >= 20
    assert sum("invite_uid" in case for case in EXPECTED.values()) >= 5


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_mail_parses_as_expected(name):
    case = EXPECTED[name]
    raw = (DATA / f"{name}.eml").read_bytes()
    result = parse_booking(raw, now=datetime.fromisoformat(case["now"]), settings=SETTINGS)
    if "start" in case:
        assert isinstance(result, Parsed), result
        r = result.request
        got = {
            "start": r.start.isoformat(), "end": r.end.isoformat(),
            "participants": r.participants, "title": r.title, "organizer": r.organizer,
            "invitees": list(r.invitees), "language": r.language,
            "dial_in_mode": r.dial_in_mode.value,
        }
        want = {k: case[k] for k in got}
        assert got == want
        assert r.invite_uid == case.get("invite_uid")
        # Real minutes: subtract in UTC (Python subtracts same-zone datetimes on the wall clock).
        real = r.end.astimezone(timezone.utc) - r.start.astimezone(timezone.utc)
        assert result.to_json()["duration_minutes"] == real.total_seconds() // 60
    else:
        assert isinstance(result, ParseError), result
        assert result.reason == case.get("reason")
        assert list(result.missing) == case.get("missing", [])
        assert result.language == case["language"]
        assert result.bilingual == case.get("bilingual", False)
        assert result.error.endswith(".") and len(result.error) > 20
