"""The IMAP agent adapter: aioimaplib over IMAPS (aioimaplib 2.x has no STARTTLS).

Owns: the mailbox session — on (re)connect fetch every UNSEEN message (BODY.PEEK, so reading
does not set \\Seen), hand each to `accept(raw, "imap")`, then IDLE; re-IDLE before
`idle_minutes`; react only to EXISTS pushes; reconnect with exponential backoff after any error;
a message whose hand-off failed (e.g. the database was busy) is fetched again after a backoff
of its own (IDLE is cut short for it), without waiting for new mail or a restart;
set \\Seen on a message only when `mark_seen(journal_id)` says its replies went out (the
composition root wires that to the pipeline's on_sent hook).
Must not touch: parsing, booking policy, the store, outbound mail, or other adapters.
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
from typing import Awaitable, Callable, Iterator, Protocol, Sequence

from aioimaplib import aioimaplib

from bot.config.settings import ImapSettings

log = logging.getLogger(__name__)

TRANSPORT = "imap"
_EXISTS = re.compile(rb"^\d+ EXISTS$")


class Accepting(Protocol):
    async def accept(self, raw: bytes, transport: str) -> int: ...

    def add_sent_listener(self, listener: Callable[[int], None]) -> None: ...


# --- pure helpers --------------------------------------------------------------------------

def has_exists(push: object) -> bool:
    """True when an IDLE push (a list of untagged lines) announces new mail (`n EXISTS`)."""
    if not isinstance(push, (list, tuple)):
        return False  # aioimaplib's STOP_WAIT_SERVER_PUSH marker or anything unexpected
    return any(isinstance(line, (bytes, bytearray)) and _EXISTS.match(bytes(line).strip())
               for line in push)


def backoff(first: float = 1.0, cap: float = 60.0) -> Iterator[float]:
    """Exponential reconnect delays: first, 2·first, 4·first, … never above cap."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * 2)


def parse_uids(lines: Sequence[bytes]) -> list[int]:
    """UIDs from a `UID SEARCH` response (first untagged line holds them, space separated)."""
    if not lines:
        return []
    return [int(tok) for tok in bytes(lines[0]).split() if tok.isdigit()]


def fetched_body(lines: Sequence[bytes | bytearray]) -> bytes | None:
    """The literal of a single-message `UID FETCH (BODY.PEEK[])` response."""
    for line in lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None


class ImapAgent:
    """Long-running task: `await agent.run()` (cancel it to stop), or `start()`/`stop()`.

    `pipeline` is a MailPipeline (its `accept` is used and `mark_seen` is registered as its
    sent-listener) or a bare `accept(raw, transport)` coroutine function (then the caller
    wires `mark_seen` itself). `idle_seconds` overrides
    `settings.idle_minutes * 60` (tests use a short re-IDLE); `backoff_first/cap` shape the
    reconnect delays."""

    def __init__(self, settings: ImapSettings, pipeline: Accepting | Callable[[bytes, str], Awaitable[int]], *,
                 ssl_context: ssl.SSLContext | None = None, idle_seconds: float | None = None,
                 backoff_first: float = 1.0, backoff_cap: float = 60.0, timeout: float = 10.0):
        self._s = settings
        if hasattr(pipeline, "accept"):
            # A MailPipeline: take its accept and hear from it when replies went out.
            self._accept = pipeline.accept
            pipeline.add_sent_listener(self.mark_seen)
        else:
            self._accept = pipeline
        self._ssl = ssl_context if ssl_context is not None else (
            ssl.create_default_context() if settings.tls else None)
        self._idle_seconds = idle_seconds if idle_seconds is not None else settings.idle_minutes * 60
        self._backoff = (backoff_first, backoff_cap)
        self._timeout = timeout
        self._client: aioimaplib.IMAP4 | None = None
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._uid_of: dict[int, int] = {}      # journal id -> UID, awaiting mark_seen
        self._in_flight: set[int] = set()      # UIDs handed to accept, not yet \Seen
        self._sent_early: set[int] = set()     # mark_seen arrived before the UID was recorded
        self._to_mark: list[int] = []          # UIDs whose replies went out: STORE \Seen next
        # accept raised: UID -> (failures so far, loop time before which it is not retried)
        self._retry: dict[int, tuple[int, float]] = {}
        self._uidvalidity: int | None = None
        self.connected = asyncio.Event()       # set while a session is up (tests wait on it)
        self.attempts = 0                      # connection attempts so far
        self.sessions = 0                      # successful logins so far
        self.idles = 0                         # IDLE commands started so far
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="imap-agent")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- the hook the pipeline calls ----------------------------------------------------------
    def mark_seen(self, journal_id: int) -> None:
        uid = self._uid_of.pop(journal_id, None)
        if uid is None:
            self._sent_early.add(journal_id)
            return
        self._to_mark.append(uid)
        self._wake.set()

    # --- the session loop ---------------------------------------------------------------------
    async def run(self) -> None:
        delays = backoff(*self._backoff)
        while not self._stopping:
            before = self.sessions
            try:
                await self._session()
            except asyncio.CancelledError:
                await self._close()
                raise
            except Exception as exc:  # the reconnect barrier: any error, any library state
                log.warning("IMAP session ended: %r", exc)
            self.connected.clear()
            await self._close()
            if self.sessions > before:  # we did get in: start the backoff afresh
                delays = backoff(*self._backoff)
            delay = next(delays)
            log.info("IMAP reconnect in %.2fs", delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        s = self._s
        self._lost.clear()
        self.attempts += 1
        client = aioimaplib.IMAP4(host=s.host, port=s.port, timeout=self._timeout,
                                  conn_lost_cb=lambda exc: self._lost.set(), ssl_context=self._ssl)
        self._client = client
        await client.wait_hello_from_server()
        _ok(await client.login(s.user, s.password), "LOGIN")
        selected = _ok(await client.select(s.folder), "SELECT")
        uidvalidity = _uidvalidity(selected.lines)
        if uidvalidity != self._uidvalidity:
            # UIDs from an older mailbox generation mean nothing now.
            self._uid_of.clear()
            self._in_flight.clear()
            self._retry.clear()
            self._to_mark.clear()
            self._uidvalidity = uidvalidity
        self.sessions += 1
        self.connected.set()
        await self._fetch_unseen()
        while not self._stopping:
            if await self._store_seen():
                # mail that arrived between two IDLEs is announced in the STORE's answer, which
                # aioimaplib drops ("ignored untagged response"), and never again: look
                await self._fetch_unseen()
            push = await self._idle_once()
            if self._lost.is_set():
                raise ConnectionError("IMAP connection lost")
            if has_exists(push) or self._retry_due():
                await self._fetch_unseen()

    async def _idle_once(self) -> object:
        """One IDLE round: returns the push that ended it (None when woken by mark_seen)."""
        client = self._client
        idle = await client.idle_start(timeout=self._idle_seconds)
        self.idles += 1
        push = asyncio.ensure_future(client.wait_server_push(timeout=self._idle_seconds + 60))
        woken = asyncio.ensure_future(self._wake.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        try:   # a pending hand-off retry cuts the IDLE short when it falls due
            done, _ = await asyncio.wait({push, woken, lost}, timeout=self._until_retry(),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (push, woken, lost):
                if not t.done():
                    t.cancel()
        self._wake.clear()
        result = push.result() if push in done and not push.cancelled() else None
        if lost in done:
            return None
        client.idle_done()
        await asyncio.wait_for(idle, self._timeout)
        # Pushes that arrived between our DONE and the tagged OK still count.
        while not client.protocol.idle_queue.empty():
            extra = client.protocol.idle_queue.get_nowait()
            if has_exists(extra):
                result = extra
        return result

    async def _fetch_unseen(self) -> None:
        client = self._client
        found = _ok(await client.uid_search("UNSEEN", charset=None), "UID SEARCH")
        now = asyncio.get_running_loop().time()
        for uid in parse_uids(found.lines):
            if uid in self._in_flight or self._retry.get(uid, (0, now))[1] > now:
                continue
            fetched = _ok(await client.uid("fetch", str(uid), "(BODY.PEEK[])"), "UID FETCH")
            raw = fetched_body(fetched.lines)
            if raw is None:
                continue  # expunged meanwhile
            self._in_flight.add(uid)
            try:
                journal_id = await self._accept(raw, TRANSPORT)
            except Exception:
                failures = self._retry.get(uid, (0, 0.0))[0] + 1
                first, cap = self._backoff
                delay = min(cap, first * 2 ** (failures - 1))
                log.exception("accept failed for IMAP UID %s (%d time(s)); left unseen, "
                              "retry in %.1fs", uid, failures, delay)
                self._in_flight.discard(uid)
                self._retry[uid] = (failures, asyncio.get_running_loop().time() + delay)
                continue
            self._retry.pop(uid, None)
            if journal_id in self._sent_early:
                self._sent_early.discard(journal_id)
                self._to_mark.append(uid)
            else:
                self._uid_of[journal_id] = uid

    def _until_retry(self) -> float | None:
        """Seconds until the next hand-off retry falls due (None: none pending)."""
        if not self._retry:
            return None
        due = min(not_before for _, not_before in self._retry.values())
        return max(0.0, due - asyncio.get_running_loop().time())

    def _retry_due(self) -> bool:
        return self._until_retry() == 0.0

    async def _store_seen(self) -> bool:
        """Mark the handed-over mails \\Seen; True when it stored any (so talked outside IDLE)."""
        stored = bool(self._to_mark)
        while self._to_mark:
            uid = self._to_mark[0]
            _ok(await self._client.uid("store", str(uid), "+FLAGS", "(\\Seen)"), "UID STORE")
            self._to_mark.pop(0)
            self._in_flight.discard(uid)
        return stored

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            # LOGOUT is a courtesy; inside IDLE (or on a dead link) it would only stall.
            if (client.protocol.transport is not None and not self._lost.is_set()
                    and not client.has_pending_idle()):
                await asyncio.wait_for(client.logout(), 1)
        except Exception:
            pass
        finally:
            transport = getattr(client.protocol, "transport", None)
            if transport is not None:
                transport.close()


def _ok(response, what: str):
    if response.result != "OK":
        raise aioimaplib.Error(f"{what} failed: {response.result} {response.lines!r}")
    return response


def _uidvalidity(lines: Sequence[bytes]) -> int | None:
    for line in lines:
        m = re.search(rb"UIDVALIDITY (\d+)", bytes(line))
        if m:
            return int(m.group(1))
    return None
