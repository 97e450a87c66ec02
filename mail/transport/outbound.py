"""Outbound mail adapters: an SMTP relay through aiosmtplib, or a Maildir outbox.

Owns: putting one finished message (raw bytes + envelope) on its way — `RelaySender` hands it
to the configured relay, `MaildirOutbox` writes it atomically (tmp/ then rename into new/)
under `settings.mail.outbox_dir`. `send` raises on any failure; retrying with backoff and
never dropping a reply is the pipeline's job, not ours. A failure that retrying cannot heal
(the relay answers 5xx for the recipients or the data of THIS mail) is raised as
`SendRefused` with `permanent = True`; everything else (4xx, connection, TLS, AUTH, a refused
sender, which would hit every mail alike) stays temporary.
Must not touch: the store, the agent, message composition, or any other adapter.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import ssl
import time
from pathlib import Path
from typing import Protocol, Sequence

import aiosmtplib

from bot.config.settings import MailSettings, Outbound, RelaySettings


class Sender(Protocol):
    async def send(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str]) -> None: ...


class SendRefused(Exception):
    """The relay accepted the connection but refused this mail: some or all recipients, or
    its data. `permanent`: every refusal was a 5xx (retrying would be refused again)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def _permanent(code: int | None) -> bool:
    return code is not None and 500 <= code < 600


class RelaySender:
    """Delivers through an SMTP relay (plain, STARTTLS or implicit TLS, optional AUTH)."""

    def __init__(self, settings: RelaySettings, *, tls_context: ssl.SSLContext | None = None,
                 timeout: float = 30.0):
        self._s = settings
        self._tls_context = tls_context
        self._timeout = timeout

    async def send(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str]) -> None:
        """`mail_from` "" sends with the null reverse-path `MAIL FROM:<>` (automatic replies,
        RFC 3834); aiosmtplib's one-shot `send()` refuses an empty sender, so the client is
        driven directly."""
        s = self._s
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, use_tls=s.tls, start_tls=s.starttls,
            tls_context=self._tls_context, username=s.user or None,
            password=s.password or None, timeout=self._timeout)
        try:
            async with client:
                refused, _ = await client.sendmail(mail_from, list(rcpt_to), raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:      # every recipient refused
            codes = [r.code for r in exc.recipients]
            raise SendRefused(f"refused recipients: {sorted(r.recipient for r in exc.recipients)}"
                              f" ({exc})", permanent=bool(codes) and all(map(_permanent, codes))
                              ) from exc
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            if not _permanent(exc.code):
                raise
            raise SendRefused(f"refused: {exc.code} {exc.message}", permanent=True) from exc
        # aiosmtplib returns the recipients the relay refused while accepting others; a
        # partial refusal is still a failure for a reply that must reach everyone. When all
        # the refusals are 5xx, the others have their copy and a retry would only repeat it.
        if refused:
            raise SendRefused(f"refused recipients: {sorted(refused)}",
                              permanent=all(_permanent(r.code) for r in refused.values()))


class MaildirOutbox:
    """Writes each message as one file in DIR/new (Maildir delivery: write tmp/, rename).

    The envelope is kept in `Return-Path` and `X-Envelope-To` headers prepended to the file,
    as a local delivery agent would, so whoever drains the outbox knows where it goes."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    def ensure(self) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)

    def _unique_name(self) -> str:
        now = time.time()
        sec, usec = int(now), int((now % 1) * 1_000_000)
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        return f"{sec}.M{usec}P{os.getpid()}R{secrets.token_hex(6)}.{host}"

    def write(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str]) -> Path:
        self.ensure()
        envelope = (f"Return-Path: <{mail_from}>\r\n"
                    f"X-Envelope-To: {', '.join(rcpt_to)}\r\n").encode()
        name = self._unique_name()
        tmp = self.directory / "tmp" / name
        final = self.directory / "new" / name
        with open(tmp, "xb") as f:
            f.write(envelope + raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return final

    async def send(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str]) -> None:
        await asyncio.to_thread(self.write, raw, mail_from, rcpt_to)


def make_sender(settings: MailSettings, *, tls_context: ssl.SSLContext | None = None) -> Sender:
    match settings.outbound:
        case Outbound.RELAY:
            return RelaySender(settings.relay, tls_context=tls_context)
        case Outbound.OUTBOX:
            return MaildirOutbox(settings.outbox_dir)
    raise ValueError(f"unknown outbound mode {settings.outbound!r}")


make_outbound = make_sender  # the name the composition root uses
