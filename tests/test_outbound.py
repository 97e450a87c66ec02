"""Outbound mail (mail/transport/outbound.py): the aiosmtplib relay sender against a real in-test SMTP
relay, and the Maildir outbox against the real file system."""
from __future__ import annotations

import asyncio
import socket

import aiosmtplib
import pytest

from bot.config.settings import MailSettings, Outbound, RelaySettings
from mail.transport.outbound import MaildirOutbox, RelaySender, SendRefused, make_sender
from tests.mail_fixtures import RecordingRelay

pytestmark = pytest.mark.timeout(20)

REPLY = (b"From: confbot@localhost\r\nTo: alice@example.com\r\nSubject: Booked: CB-7K2Q9\r\n"
         b"Message-ID: <r1@confbot>\r\n\r\nParticipant PIN: 123456\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_relay_sender_delivers_the_exact_bytes_with_the_envelope():
    async def scenario():
        relay = await RecordingRelay().start()
        try:
            sender = RelaySender(RelaySettings(host="127.0.0.1", port=relay.port))
            await sender.send(REPLY, "confbot@localhost", ["alice@example.com", "bob@example.com"])
            return await relay.next()
        finally:
            await relay.stop()

    got = asyncio.run(scenario())
    assert got.mail_from == "confbot@localhost"
    assert got.rcpt_to == ("alice@example.com", "bob@example.com")
    assert got.raw == REPLY


def test_relay_sender_raises_when_the_relay_is_unreachable():
    sender = RelaySender(RelaySettings(host="127.0.0.1", port=free_port()), timeout=2)
    with pytest.raises(aiosmtplib.SMTPException):
        asyncio.run(sender.send(REPLY, "confbot@localhost", ["alice@example.com"]))


def test_relay_sender_raises_on_a_temporary_refusal_of_the_data():
    async def scenario():
        relay = await RecordingRelay(down=True).start()
        try:
            with pytest.raises(aiosmtplib.SMTPResponseException) as err:
                await RelaySender(RelaySettings(host="127.0.0.1", port=relay.port)).send(
                    REPLY, "confbot@localhost", ["alice@example.com"])
            return err.value.code, relay.received
        finally:
            await relay.stop()

    code, received = asyncio.run(scenario())
    assert code == 451
    assert received == []


def test_a_partly_refused_recipient_list_is_a_failure_not_a_silent_loss():
    async def scenario():
        relay = await RecordingRelay(refuse={"ghost@example.com"}).start()
        try:
            with pytest.raises(SendRefused, match="ghost@example.com"):
                await RelaySender(RelaySettings(host="127.0.0.1", port=relay.port)).send(
                    REPLY, "confbot@localhost", ["alice@example.com", "ghost@example.com"])
        finally:
            await relay.stop()

    asyncio.run(scenario())


def test_maildir_outbox_writes_one_complete_file_into_new_and_leaves_tmp_empty(tmp_path):
    outbox = MaildirOutbox(tmp_path / "outbox")
    asyncio.run(outbox.send(REPLY, "confbot@localhost", ["alice@example.com", "bob@example.com"]))
    asyncio.run(outbox.send(REPLY.replace(b"r1@", b"r2@"), "confbot@localhost", ["carol@example.com"]))

    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 2
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    assert (tmp_path / "outbox" / "cur").is_dir()
    contents = [f.read_bytes() for f in files]
    first = next(c for c in contents if b"<r1@confbot>" in c)
    assert first.startswith(b"Return-Path: <confbot@localhost>\r\n"
                            b"X-Envelope-To: alice@example.com, bob@example.com\r\n")
    assert first.endswith(REPLY)


def test_make_sender_follows_the_configured_outbound_mode(tmp_path):
    outbox = make_sender(MailSettings(outbound=Outbound.OUTBOX, outbox_dir=str(tmp_path / "o")))
    relay = make_sender(MailSettings(outbound=Outbound.RELAY,
                                     relay=RelaySettings(host="127.0.0.1", port=2525)))
    assert isinstance(outbox, MaildirOutbox) and outbox.directory == tmp_path / "o"
    assert isinstance(relay, RelaySender)


def test_relay_sender_sends_automatic_replies_with_the_null_reverse_path():
    """RFC 3834: `mail_from` "" goes out as `MAIL FROM:<>`, so a bounce of a reply goes nowhere."""
    async def scenario():
        relay = await RecordingRelay().start()
        try:
            await RelaySender(RelaySettings(host="127.0.0.1", port=relay.port)).send(
                REPLY, "", ["alice@example.com"])
            return await relay.next()
        finally:
            await relay.stop()

    got = asyncio.run(scenario())
    assert (got.mail_from, got.rcpt_to, got.raw) == ("<>", ("alice@example.com",), REPLY)


def send_to(relay_kwargs: dict, rcpt: list[str]):
    async def scenario():
        relay = await RecordingRelay(**relay_kwargs).start()
        try:
            await RelaySender(RelaySettings(host="127.0.0.1", port=relay.port)).send(
                REPLY, "", rcpt)
        except Exception as exc:
            return exc, relay.received
        finally:
            await relay.stop()
        return None, relay.received
    return asyncio.run(scenario())


def test_a_recipient_the_relay_refuses_with_5xx_is_a_permanent_failure():
    exc, received = send_to({"refuse": {"ghost@example.com"}}, ["ghost@example.com"])
    assert isinstance(exc, SendRefused) and exc.permanent
    assert "ghost@example.com" in str(exc) and received == []


def test_a_partial_5xx_refusal_is_permanent_and_the_others_got_their_copy():
    exc, received = send_to({"refuse": {"ghost@example.com"}},
                            ["alice@example.com", "ghost@example.com"])
    assert isinstance(exc, SendRefused) and exc.permanent
    assert [r.rcpt_to for r in received] == [("alice@example.com",)]


def test_a_4xx_is_temporary():
    exc, _ = send_to({"down": True}, ["alice@example.com"])
    assert exc is not None and not getattr(exc, "permanent", False)
