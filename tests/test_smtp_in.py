"""The SMTP listener (mail/transport/smtp_in.py) against a real SMTP client (aiosmtplib) on loopback.

A tiny stand-in pipeline with the real `accept(raw, transport)` signature records what arrives,
so these tests pin the listener's promises: journal before 250, 552 over the size limit,
451 (and a server that keeps serving) when accept raises, STARTTLS and AUTH when configured.
"""
from __future__ import annotations

import asyncio
import email
import logging
import ssl
import subprocess

import aiosmtplib
import pytest

from bot.config.settings import SmtpListen
from mail.transport.smtp_in import SmtpListener

pytestmark = pytest.mark.timeout(20)

MAIL = (b"From: Alice <alice@example.com>\r\nTo: confbot@localhost\r\n"
        b"Subject: Conference tomorrow 10:00\r\nMessage-ID: <t1@example.com>\r\n\r\n"
        b"Please book a conference for 5 people tomorrow at 10:00 for one hour.\r\n")


class StandInPipeline:
    """Records accepted mail; optionally blocks until released or raises."""

    def __init__(self, fail: bool = False):
        self.accepted: list[tuple[bytes, str]] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.fail = fail

    async def accept(self, raw: bytes, transport: str) -> int:
        self.entered.set()
        if self.fail:
            raise RuntimeError("store is on fire")
        await self.release.wait()
        self.accepted.append((raw, transport))
        return len(self.accepted)


async def started(pipeline, **kw) -> SmtpListener:
    listener = SmtpListener(SmtpListen(host="127.0.0.1", port=0, **kw), pipeline.accept)
    await listener.start()
    return listener


async def send(port: int, raw: bytes = MAIL, **kw):
    return await aiosmtplib.send(raw, sender="alice@example.com", recipients=["confbot@localhost"],
                                 hostname="127.0.0.1", port=port, start_tls=False, **kw)


def test_mail_is_handed_over_byte_for_byte_after_a_prepended_return_path():
    async def scenario():
        pipeline = StandInPipeline()
        listener = await started(pipeline)
        try:
            replies, message = await send(listener.port)
        finally:
            await listener.stop()
        return pipeline.accepted, message

    accepted, message = asyncio.run(scenario())
    assert message.startswith("2.0.0 OK")
    assert len(accepted) == 1
    raw, transport = accepted[0]
    assert transport == "smtp"
    assert raw == b"Return-Path: <alice@example.com>\r\nDelivered-To: confbot@localhost\r\n" + MAIL


def test_a_bounce_with_the_null_sender_arrives_with_an_empty_return_path_on_top():
    """The agent's loop check reads the topmost Return-Path: `MAIL FROM:<>` must show as `<>`
    even when the mail itself carries an older, forged Return-Path further down."""
    bounce = b"Return-Path: <alice@example.com>\r\n" + MAIL

    async def scenario():
        pipeline = StandInPipeline()
        listener = await started(pipeline)
        try:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, start_tls=False)
            async with client:
                await client.sendmail("", ["confbot@localhost"], bounce)
        finally:
            await listener.stop()
        return pipeline.accepted

    [(raw, _)] = asyncio.run(scenario())
    assert raw == b"Return-Path: <>\r\nDelivered-To: confbot@localhost\r\n" + bounce
    assert email.message_from_bytes(raw)["Return-Path"] == "<>"


def test_250_is_only_answered_after_accept_has_returned():
    async def scenario():
        pipeline = StandInPipeline()
        pipeline.release.clear()
        listener = await started(pipeline)
        try:
            sending = asyncio.create_task(send(listener.port))
            await asyncio.wait_for(pipeline.entered.wait(), 5)
            await asyncio.sleep(0.2)
            done_while_journalling = sending.done()
            pipeline.release.set()
            await asyncio.wait_for(sending, 5)
        finally:
            await listener.stop()
        return done_while_journalling, pipeline.accepted

    done_while_journalling, accepted = asyncio.run(scenario())
    assert done_while_journalling is False
    assert len(accepted) == 1


def test_mail_over_the_size_limit_is_refused_with_552_logged_and_never_accepted(caplog):
    async def scenario():
        pipeline = StandInPipeline()
        listener = await started(pipeline, max_size=2000)
        try:
            big = MAIL + (b"y" * 76 + b"\r\n") * 40  # ~3.2 kB
            with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                await send(listener.port, big)
            small_ok = await send(listener.port)
        finally:
            await listener.stop()
        return refused.value.code, pipeline.accepted, small_ok

    with caplog.at_level(logging.WARNING, logger="mail.transport.smtp_in"):
        code, accepted, small_ok = asyncio.run(scenario())
    assert code == 552
    # Only the small one got through: an oversize mail is never journalled (see smtp_in's
    # docstring), but its refusal is logged and the sending MTA bounces it to its sender.
    assert [raw for raw, _ in accepted] == [
        b"Return-Path: <alice@example.com>\r\nDelivered-To: confbot@localhost\r\n" + MAIL]
    assert any("refused oversize mail" in r.getMessage() and "limit 2000" in r.getMessage()
               for r in caplog.records)


def test_exception_inside_accept_answers_451_and_the_server_keeps_serving():
    async def scenario():
        broken = StandInPipeline(fail=True)
        listener = await started(broken)
        try:
            with pytest.raises(aiosmtplib.SMTPResponseException) as tempfail:
                await send(listener.port)
            broken.fail = False
            _, message = await send(listener.port)
        finally:
            await listener.stop()
        return tempfail.value.code, message, broken.accepted

    code, message, accepted = asyncio.run(scenario())
    assert code == 451
    assert message.startswith("2.0.0")
    assert len(accepted) == 1


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("smtp-tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return str(d / "cert.pem"), str(d / "key.pem")


def test_auth_is_required_when_users_are_configured_and_works_over_starttls(cert):
    certfile, keyfile = cert
    client_ctx = ssl.create_default_context(cafile=certfile)

    async def scenario():
        pipeline = StandInPipeline()
        listener = await started(pipeline, tls_cert=certfile, tls_key=keyfile,
                                 auth_users=(("booker", "s3cret"),))
        outcomes = {}
        try:
            with pytest.raises(aiosmtplib.SMTPResponseException) as no_auth:
                await aiosmtplib.send(MAIL, sender="alice@example.com",
                                      recipients=["confbot@localhost"], hostname="127.0.0.1",
                                      port=listener.port, start_tls=True, tls_context=client_ctx)
            outcomes["no_auth"] = no_auth.value.code
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as bad:
                await aiosmtplib.send(MAIL, sender="alice@example.com",
                                      recipients=["confbot@localhost"], hostname="127.0.0.1",
                                      port=listener.port, start_tls=True, tls_context=client_ctx,
                                      username="booker", password="wrong")
            outcomes["bad_password"] = bad.value.code
            _, outcomes["good"] = await aiosmtplib.send(
                MAIL, sender="alice@example.com", recipients=["confbot@localhost"],
                hostname="127.0.0.1", port=listener.port, start_tls=True, tls_context=client_ctx,
                username="booker", password="s3cret")
        finally:
            await listener.stop()
        return outcomes, pipeline.accepted

    outcomes, accepted = asyncio.run(scenario())
    assert outcomes["no_auth"] == 530
    assert outcomes["bad_password"] == 535
    assert outcomes["good"].startswith("2.0.0")
    assert len(accepted) == 1
