"""The bot under other addresses (issue 7 point 15): `[mail] aliases`, and the mailbox a mail was
delivered to, are the bot — never an invitee, never counted as a participant, never answered —
also in `confbot booking parse` without a config."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import icalendar
import pytest

from bot.config import load as config
from bot.config.settings import MailSettings, Settings
from mail.agent import Agent
from mail.parse import Parsed, parse_booking, read_message
from memledger import MemoryLedger
from test_cli_booking import confbot

UTC = timezone.utc
NOW = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
START = datetime(2025, 1, 15, 13, 0, tzinfo=UTC)
SETTINGS = Settings(mail=MailSettings(address="confbot@conf.example",
                                      aliases=("konferenz@firma.example",),
                                      allowed_senders=("example.com",)))


def invitation(to: str, *, attendees: tuple[str, ...], headers: dict[str, str] | None = None) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Test//EN")
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", "own-address-test@example.com")
    event.add("summary", "Board call")
    event.add("dtstart", START)
    event.add("dtend", START + timedelta(hours=1))
    event.add("dtstamp", NOW)
    event.add("organizer", "mailto:alice@example.com")
    for who in attendees:
        event.add("attendee", f"mailto:{who}")
    cal.add_component(event)
    msg = EmailMessage()
    for name, value in (headers or {}).items():
        msg[name] = value
    msg["From"], msg["To"], msg["Subject"] = "alice@example.com", to, "Board call"
    msg["Date"], msg["Message-ID"] = "Fri, 10 Jan 2025 08:00:00 +0000", "<own-1@example.com>"
    msg.set_content("Board call")
    msg.add_alternative(cal.to_ical().decode(), subtype="calendar", params={"method": "REQUEST"})
    return msg.as_bytes()


def request_of(raw: bytes, settings: Settings = SETTINGS):
    result = parse_booking(raw, now=NOW, settings=settings)
    assert isinstance(result, Parsed), result
    return result.request


def test_an_alias_attendee_is_the_bot_not_a_participant():
    request = request_of(invitation("alice@example.com, konferenz@firma.example, bob@example.com",
                                    attendees=("konferenz@firma.example", "bob@example.com")))
    assert request.invitees == ("bob@example.com",) and request.participants == 2


def test_the_delivered_to_mailbox_is_the_bot_even_when_not_configured():
    raw = invitation("bob@example.com, telko@other.example",
                     attendees=("telko@other.example", "bob@example.com"),
                     headers={"Delivered-To": "telko@other.example"})
    request = request_of(raw, Settings())
    assert request.invitees == ("bob@example.com",) and request.participants == 2


def test_only_the_topmost_delivered_to_counts():
    # a forwarding mailbox further down is an earlier hop, not the bot
    raw = (b"Delivered-To: telko@other.example\r\nDelivered-To: bob@example.com\r\n"
           + invitation("bob@example.com, telko@other.example",
                        attendees=("telko@other.example", "bob@example.com")))
    assert request_of(raw, Settings()).invitees == ("bob@example.com",)


def test_the_one_to_address_of_an_invitation_is_the_bot():
    raw = invitation("Konferenz <konferenz@elsewhere.example>",
                     attendees=("konferenz@elsewhere.example", "bob@example.com"))
    assert request_of(raw, Settings()).invitees == ("bob@example.com",)


def test_an_alias_named_in_a_booking_text_is_not_invited_and_a_mail_from_it_is_ignored():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.com", "konferenz@firma.example", "Sync"
    msg["Date"] = "Fri, 10 Jan 2025 08:00:00 +0000"
    msg.set_content("Tomorrow at 10:00, invite bob@example.com and konferenz@firma.example.")
    request = request_of(msg.as_bytes())
    assert request.invitees == ("bob@example.com",)
    looped = EmailMessage()
    looped["From"], looped["To"], looped["Subject"] = "konferenz@firma.example", "x@example.com", "Hi"
    looped.set_content("Tomorrow at 10:00, 5 participants.")
    decision = Agent(SETTINGS, MemoryLedger()).handle(read_message(looped.as_bytes()), NOW)
    assert decision.outcome == "ignored: own address" and decision.replies == ()


def test_booking_parse_without_a_config_leaves_the_bot_out(tmp_path):
    path = tmp_path / "invite.eml"
    path.write_bytes(invitation("konferenz@firma.example",
                                attendees=("konferenz@firma.example", "bob@example.com")))
    res = confbot("booking", "parse", str(path), "--now", "2025-01-10T08:00:00+00:00", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["invitees"] == ["bob@example.com"] and out["participants"] == 2


def test_aliases_are_validated_with_their_line():
    text = '[mail]\naddress = "confbot@example.com"\naliases = ["konferenz@example.com", "not an address"]\n'
    with pytest.raises(config.ConfigError) as e:
        config.parse_text(text, "c.toml")
    assert any("c.toml:3" in p and "aliases" in p and "not a mail address" in p
               for p in e.value.problems), e.value.problems
    ok = config.parse_text('[mail]\naliases = ["Konferenz@Example.com"]\n')
    assert ok.mail.aliases == ("konferenz@example.com",)
    assert "konferenz@example.com" in ok.mail.own_addresses()
