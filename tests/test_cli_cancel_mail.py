"""`confbot booking cancel REF` tells the organizer and the invitees (issue 7 point 11, the mail
part): the same cancellation mails as a mailed cancel (METHOD:CANCEL .ics), queued in the store's
outgoing queue in the cancelling transaction, and sent by the running service's pipeline to a
real SMTP relay (aiosmtpd on loopback). Before the fix the CLI said "no mail is sent"."""
from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import sys
from pathlib import Path

import icalendar
import pytest

from bot.store.sqlite import SqliteStore
from tests import test_mail_e2e as e2e

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent


def config_for(tmp_path: Path, relay_port: int) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[service]\ndata_dir = "{tmp_path}"\ntimezone = "Europe/Berlin"\n'
                   f'[mail]\naddress = "{e2e.BOT}"\noutbound = "relay"\n'
                   f'[mail.relay]\nhost = "127.0.0.1"\nport = {relay_port}\n', encoding="utf-8")
    return cfg


async def confbot(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 45)
    return proc.returncode, out.decode()


def test_a_cli_cancel_mails_organizer_and_invitees_through_the_running_service(tmp_path):
    async def scenario():
        async with e2e.Rig(tmp_path) as rig:   # the running service: pipeline + sender loop
            cfg = config_for(tmp_path, rig.relay.port)
            await rig.pipeline.accept(e2e.booking_mail("cli-cancel", invitees="Invite bob@example.com"),
                                      "smtp")
            booked = [await rig.relay.next(5) for _ in range(2)]
            subject = email.message_from_bytes(booked[0].raw, policy=email.policy.default)["Subject"]
            reference = re.search(r"CB-[0-9A-Z]{5}", subject)[0]
            code, out = await confbot("booking", "cancel", reference, "--config", str(cfg))
            cancels = [await rig.relay.next(10) for _ in range(2)]
            return reference, code, out, cancels, rig.store.get(reference)

    reference, code, out, cancels, booking = asyncio.run(scenario())
    assert code == 0, out
    assert "queued" in out and "alice@example.com" in out and "no mail is sent" not in out
    assert not booking.active
    by_to = {c.rcpt_to: email.message_from_bytes(c.raw, policy=email.policy.default) for c in cancels}
    assert set(by_to) == {("alice@example.com",), ("bob@example.com",)}
    for mail in by_to.values():
        assert reference in mail["Subject"] and mail["Auto-Submitted"]
        (part,) = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
        assert part.get_param("method") == "CANCEL"
        (event,) = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
        assert str(event["STATUS"]) == "CANCELLED"
    organizer = by_to[("alice@example.com",)].get_body(("plain",)).get_content()
    assert f"{reference}" in organizer and "is cancelled" in organizer


def test_a_cli_cancel_while_the_service_is_down_is_sent_at_its_next_start(tmp_path):
    async def scenario():
        async with e2e.Rig(tmp_path) as rig:
            await rig.pipeline.accept(e2e.booking_mail("cli-cancel-down"), "smtp")
            await rig.relay.next(5)
            port = rig.relay.port
        # the service is stopped now; the relay too
        cfg = config_for(tmp_path, port)
        reference = SqliteStore(tmp_path / "confbot.sqlite3").list()[0].reference
        code, out = await confbot("booking", "cancel", reference, "--config", str(cfg))
        async with e2e.Rig(tmp_path) as rig:    # the next start sends what is queued
            cancel = await rig.relay.next(10)
        return reference, code, out, cancel

    reference, code, out, cancel = asyncio.run(scenario())
    assert code == 0, out
    assert cancel.rcpt_to == ("alice@example.com",)
    assert reference in email.message_from_bytes(cancel.raw, policy=email.policy.default)["Subject"]
