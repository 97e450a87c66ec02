"""The SMTP listener adapter: aiosmtpd inside the app's own asyncio loop.

Owns: translating an SMTP transaction into one `accept(raw, "smtp")` call (the raw mail with a
`Return-Path: <MAIL FROM>` line prepended, as any delivering MTA writes it) and the SMTP reply
codes — 250 only after `accept` returned (the pipeline has journalled the raw bytes by then),
451 when `accept` raised (the client will retry; the server keeps running), optional STARTTLS
and AUTH from `SmtpListen`, and 552 for mail over `max_size` (aiosmtpd's own check).
Oversize mail is deliberately NOT journalled: its data is discarded while it arrives, the
refusal is logged, and the sending MTA tells the sender with its bounce; keeping it would let
anyone fill the disk past the limit that exists to prevent that.
A booking mistake is never an SMTP error: the agent answers it with a reply mail.
Must not touch: mail parsing, booking policy, the store or outbound mail (that is the pipeline's
job), nor any other adapter. The server is created with `loop.create_server`, never aiosmtpd's
threaded Controller, so it shares the composition root's loop.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from typing import Awaitable, Callable

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bot.config.settings import SmtpListen

log = logging.getLogger(__name__)

TRANSPORT = "smtp"
OK = "250 2.0.0 OK: queued"
TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
# Returned by the per-connection barrier for an unexpected error outside DATA.
CONNECTION_ERROR = "451 4.3.0 Temporary server error"


class Handler:
    """aiosmtpd event handler: one hook per SMTP stage we care about (STYLE lesson 8)."""

    def __init__(self, accept: Callable[[bytes, str], Awaitable[int]]):
        self._accept = accept

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = with_return_path(envelope.original_content or b"", envelope.mail_from,
                               envelope.rcpt_tos)
        try:
            journal_id = await self._accept(raw, TRANSPORT)
        except Exception:
            log.exception("accept failed for mail from %r (peer %r)", envelope.mail_from,
                          session.peer)
            return TEMPFAIL
        # The pipeline logged "accepted … as journal #N" before deciding; this is the answer.
        log.debug("250 for journal #%s (envelope from %r)", journal_id, envelope.mail_from)
        return OK

    async def handle_exception(self, error: Exception) -> str:
        # The per-connection barrier (STYLE lesson 9): log, answer, keep serving.
        log.error("SMTP session error: %r", error, exc_info=error)
        return CONNECTION_ERROR


def with_return_path(raw: bytes, mail_from: str | None, rcpt_tos=()) -> bytes:
    """Prepend `Return-Path: <envelope sender>` as a delivering MTA does (RFC 5321 4.4), so
    the agent's loop check sees an empty reverse-path (`MAIL FROM:<>`: a bounce or another
    robot) on mail that reached our own listener. It goes first: the topmost one counts.
    Then `Delivered-To: <first envelope recipient>`, as a delivery agent writes it: every
    address our own listener accepts is the bot, so an invitation attendee under that
    address (an alias nobody configured) is not taken for a participant (mail.parse)."""
    def clean(text: str | None) -> str:
        return (text or "").strip().strip("<>").replace("\r", "").replace("\n", "")
    lines = [f"Return-Path: <{clean(mail_from)}>\r\n"]
    lines += [f"Delivered-To: {clean(rcpt)}\r\n" for rcpt in rcpt_tos if clean(rcpt)][:1]
    return "".join(lines).encode("utf-8") + bytes(raw)


class _Smtp(SMTP):
    """aiosmtpd's server, plus a log line when a mail is refused for its size: aiosmtpd
    answers 552 itself and discards the data as it arrives (so an oversize mail never
    exhausts memory or the journal), and no handler hook runs for it."""

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str) and status.startswith("552"):
            log.warning("refused oversize mail from %r (peer %r, limit %s bytes): %s",
                        getattr(self.envelope, "mail_from", None),
                        getattr(self.session, "peer", None), self.data_size_limit, status)
        await super().push(status)


class Authenticator:
    """Checks AUTH PLAIN/LOGIN against the configured (user, password) pairs."""

    def __init__(self, users: tuple[tuple[str, str], ...]):
        self._users = dict(users)

    def __call__(self, server: SMTP, session: Session, envelope: Envelope,
                 mechanism: str, auth_data: object) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        expected = self._users.get(user)
        ok = expected is not None and hmac.compare_digest(
            expected.encode(), auth_data.password)
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)


def tls_context(settings: SmtpListen) -> ssl.SSLContext | None:
    if not (settings.tls_cert and settings.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    return ctx


class SmtpListener:
    """Start/stop an aiosmtpd server on the running loop. `port` is the bound port (useful
    when the settings ask for port 0)."""

    def __init__(self, settings: SmtpListen, accept: Callable[[bytes, str], Awaitable[int]],
                 *, hostname: str = "confbot"):
        self._settings = settings
        self._handler = Handler(accept)
        self._hostname = hostname
        self._server: asyncio.base_events.Server | None = None
        self.port: int | None = None

    def _protocol(self) -> SMTP:
        s = self._settings
        ctx = tls_context(s)
        auth = bool(s.auth_users)
        return _Smtp(
            self._handler,
            data_size_limit=s.max_size,
            enable_SMTPUTF8=True,
            hostname=self._hostname,
            tls_context=ctx,
            auth_required=auth,
            auth_require_tls=ctx is not None,
            authenticator=Authenticator(s.auth_users) if auth else None,
            loop=asyncio.get_running_loop(),
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, host=self._settings.host, port=self._settings.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMTP listener on %s:%s", self._settings.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
