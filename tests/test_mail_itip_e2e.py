"""Calendar updates and cancels end to end (issue 7 point 8): `swaks` delivers Outlook-style
invitations to the real SMTP listener; the real pipeline, agent and SqliteStore decide; the
replies leave through aiosmtplib to an in-test SMTP relay. Before the fix an updated invitation
booked a second conference with new PINs and a METHOD:CANCEL was refused.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import re
import shutil
from datetime import datetime, timedelta
from email.message import EmailMessage

import icalendar
import pytest

from mail.transport.smtp_in import SmtpListener
from tests import test_mail_e2e as e2e

pytestmark = pytest.mark.timeout(40)
UID = "0400000082-itip-e2e@example.com"


def invitation(tag: str, *, method: str = "REQUEST", sequence: int = 0,
               start: datetime) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = icalendar.Event()
    event.add("uid", UID)
    event.add("sequence", sequence)
    event.add("summary", "Board call")
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(hours=1))
    event.add("dtstamp", datetime.now(e2e.BERLIN))
    event.add("organizer", "mailto:alice@example.com")
    for who in (e2e.BOT, "bob@example.com"):
        event.add("attendee", f"mailto:{who}")
    cal.add_component(event)
    msg = EmailMessage()
    msg["From"], msg["To"] = "Alice <alice@example.com>", e2e.BOT
    msg["Subject"] = ("Canceled: " if method == "CANCEL" else "Board call")
    msg["Date"] = email.utils.format_datetime(datetime.now(e2e.BERLIN))
    msg["Message-ID"] = f"<{tag}@example.com>"
    msg.set_content("Board call")
    msg.add_alternative(cal.to_ical().decode(), subtype="calendar", params={"method": method})
    return msg.as_bytes(policy=email.policy.SMTP)


async def swaks_send(port: int, raw: bytes, tmp_path, name: str) -> str:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    proc = await asyncio.create_subprocess_exec(
        shutil.which("swaks"), "--server", f"127.0.0.1:{port}", "--from", "alice@example.com",
        "--to", e2e.BOT, "--data", f"@{path}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    transcript, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, transcript.decode()
    return transcript.decode()


async def replies(relay, count: int) -> dict[str, email.message.EmailMessage]:
    got = [await relay.next(10) for _ in range(count)]
    return {r.rcpt_to[0]: email.message_from_bytes(r.raw, policy=email.policy.default) for r in got}


def calendar(msg) -> tuple[str, icalendar.Event]:
    (part,) = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    return part.get_param("method"), event


def test_an_updated_invitation_changes_the_booking_and_a_cancel_cancels_it(tmp_path):
    assert shutil.which("swaks"), "swaks is installed on this machine (Debian package swaks)"
    day = (datetime.now(e2e.BERLIN) + timedelta(days=3)).date()
    first = datetime(day.year, day.month, day.day, 10, 0, tzinfo=e2e.BERLIN)
    moved = first + timedelta(hours=4)

    async def scenario():
        async with e2e.Rig(tmp_path) as rig:
            listener = SmtpListener(rig.settings.mail.smtp, rig.pipeline.accept)
            await listener.start()
            try:
                await swaks_send(listener.port, invitation("inv-0", start=first), tmp_path, "a")
                booked = await replies(rig.relay, 2)
                reference = re.search(r"CB-[0-9A-Z]{5}", booked["alice@example.com"]["Subject"])[0]
                pins = rig.store.get(reference)
                # Outlook's update: same UID, SEQUENCE 1, a new time.
                await swaks_send(listener.port, invitation("inv-1", sequence=1, start=moved),
                                 tmp_path, "b")
                changed = await replies(rig.relay, 2)
                after_update = rig.store.list(include_cancelled=True)
                # The same update delivered again under a new Message-ID: a replay.
                await swaks_send(listener.port, invitation("inv-1b", sequence=1, start=moved),
                                 tmp_path, "c")
                replay = await replies(rig.relay, 1)
                await swaks_send(listener.port, invitation("inv-2", method="CANCEL", sequence=2,
                                                           start=moved), tmp_path, "d")
                cancelled = await replies(rig.relay, 2)
                await asyncio.sleep(0.3)    # nothing else may arrive
                extra = len(rig.relay.received)
                return (reference, pins, booked, changed, after_update, replay, cancelled, extra,
                        rig.store.get(reference), rig.store.mails())
            finally:
                await listener.stop()

    (reference, pins, booked, changed, after_update, replay, cancelled, extra, final,
     journal) = asyncio.run(scenario())
    assert set(booked) == {"alice@example.com", "bob@example.com"}
    # the update: one booking, same reference and PINs, the new time, everyone told
    (only,) = after_update
    assert only.reference == reference and only.start == moved
    assert (only.participant_pin, only.moderator_pin) == (pins.participant_pin, pins.moderator_pin)
    assert set(changed) == {"alice@example.com", "bob@example.com"}
    method, event = calendar(changed["alice@example.com"])
    assert method == "REPLY" and str(event["UID"]) == UID and int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == moved
    bob = changed["bob@example.com"].get_body(("plain",)).get_content()
    assert "has changed the telephone conference" in bob and pins.participant_pin in bob
    assert calendar(changed["bob@example.com"])[1].decoded("DTSTART") == moved
    # the replay: one short note to the organizer, nothing else
    assert set(replay) == {"alice@example.com"}
    assert "nothing was changed" in replay["alice@example.com"].get_body(("plain",)).get_content()
    # the cancel: cancelled, organizer and invitee told
    assert not final.active
    assert set(cancelled) == {"alice@example.com", "bob@example.com"}
    assert calendar(cancelled["bob@example.com"])[0] == "CANCEL"
    assert extra == 7
    outcomes = [row.outcome for row in reversed(journal)]
    assert outcomes[0] == f"booked {reference}"
    assert outcomes[1] == f"updated {reference}: SEQUENCE 1"
    assert outcomes[2].startswith(f"replay {reference}")
    assert outcomes[3] == f"cancelled {reference}"


def test_the_log_says_accepted_before_what_was_decided(tmp_path, caplog):
    """Issue 7 point 13: `journal #N: booked` was logged before `accepted mail as journal #N`."""
    import aiosmtplib
    import logging
    caplog.set_level(logging.INFO)

    async def scenario():
        async with e2e.Rig(tmp_path) as rig:
            listener = SmtpListener(rig.settings.mail.smtp, rig.pipeline.accept)
            await listener.start()
            try:
                await aiosmtplib.send(e2e.booking_mail("log-order"), sender="alice@example.com",
                                      recipients=[e2e.BOT], hostname="127.0.0.1",
                                      port=listener.port, start_tls=False)
                await rig.relay.next(5)
            finally:
                await listener.stop()

    asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    accepted = [i for i, m in enumerate(lines) if re.match(r"accepted mail from alice@example\.com"
                                                           r" via smtp as journal #1$", m)]
    decided = [i for i, m in enumerate(lines) if re.match(r"journal #1: booked CB-", m)]
    assert accepted and decided, lines
    assert accepted[0] < decided[0]


def test_an_invitation_to_an_unconfigured_alias_does_not_invite_the_bot(tmp_path):
    """Issue 7 point 15: the bot reached as `telko@conf.example` (not in the config) was an
    attendee of the invitation and got counted and mailed as a participant."""
    alias = "telko@conf.example"
    start = datetime.now(e2e.BERLIN).replace(microsecond=0) + timedelta(days=2)
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Test//EN")
    cal.add("version", "2.0")
    cal.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", "alias-e2e@example.com")
    event.add("summary", "Alias call")
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(hours=1))
    event.add("dtstamp", datetime.now(e2e.BERLIN))
    event.add("organizer", "mailto:alice@example.com")
    for who in (alias, "bob@example.com"):
        event.add("attendee", f"mailto:{who}")
    cal.add_component(event)
    msg = EmailMessage()
    msg["From"], msg["To"] = "alice@example.com", f"{alias}, bob@example.com"
    msg["Subject"], msg["Message-ID"] = "Alias call", "<alias-e2e@example.com>"
    msg["Date"] = email.utils.format_datetime(datetime.now(e2e.BERLIN))
    msg.set_content("Alias call")
    msg.add_alternative(cal.to_ical().decode(), subtype="calendar", params={"method": "REQUEST"})
    path = tmp_path / "alias.eml"
    path.write_bytes(msg.as_bytes(policy=email.policy.SMTP))

    async def scenario():
        async with e2e.Rig(tmp_path) as rig:
            listener = SmtpListener(rig.settings.mail.smtp, rig.pipeline.accept)
            await listener.start()
            try:
                proc = await asyncio.create_subprocess_exec(
                    shutil.which("swaks"), "--server", f"127.0.0.1:{listener.port}",
                    "--from", "alice@example.com", "--to", alias, "--data", f"@{path}",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                out, _ = await asyncio.wait_for(proc.communicate(), 15)
                assert proc.returncode == 0, out.decode()
                got = [await rig.relay.next(5) for _ in range(2)]
                await asyncio.sleep(0.3)
                return got, len(rig.relay.received), rig.store.list()
            finally:
                await listener.stop()

    got, total, (booking,) = asyncio.run(scenario())
    assert sorted(g.rcpt_to for g in got) == [("alice@example.com",), ("bob@example.com",)]
    assert total == 2
    assert booking.invitees == ("bob@example.com",) and booking.participants == 2
