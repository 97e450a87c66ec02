"""Test peers for the mail transports: an in-test SMTP relay (a real aiosmtpd server on a free
loopback port, inside the test's own event loop) that records what it receives.

Owns only test scaffolding; must not be imported by production code.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    at: float  # loop.time() on arrival


@dataclass
class RecordingRelay:
    """`await relay.start()`; `relay.port`; `await relay.next(timeout)` for the next mail.
    `refuse` holds recipient addresses answered with 550; `down` makes DATA answer 451."""
    host: str = "127.0.0.1"
    port: int = 0
    refuse: set[str] = field(default_factory=set)
    down: bool = False
    received: list[Received] = field(default_factory=list)
    _queue: asyncio.Queue | None = None
    _server: asyncio.base_events.Server | None = None

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.down:
            return "451 4.3.0 Relay temporarily unavailable"
        item = Received(envelope.mail_from, tuple(envelope.rcpt_tos),
                        envelope.original_content, asyncio.get_running_loop().time())
        self.received.append(item)
        self._queue.put_nowait(item)
        return "250 OK"

    async def start(self) -> "RecordingRelay":
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="relay.test", loop=loop), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def next(self, timeout: float = 5.0) -> Received:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
