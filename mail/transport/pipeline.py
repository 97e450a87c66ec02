"""The mail pipeline: the glue the composition root puts between the mail transports, the
agent policy, the store and outbound mail. One policy, two transports (STYLE lesson 8).

Owns the order that makes "a crash never loses a mail or a reply" true:
  accept(raw) → journal the raw bytes FIRST → skip a mail already processed (by Message-ID, or
  by a digest of its bytes when it has none: `mail.mime.message_key`) →
  agent.handle() in a worker thread (one decision at a time) → in ONE store transaction: queue
  every reply, mark the Message-ID processed, set the journal outcome → wake the sender.
Every reply leaves with the null envelope sender `<>` (RFC 3834: no bounce loops). A duplicate
Message-ID is answered by nothing new; its listeners hear when the original's replies went out.
The sender loop sends due mail through the outbound adapter, retries with the backoff of
`settings.mail.retry_seconds` (the last step repeats), and tells `on_sent` listeners when every
reply for a journal row is done (the IMAP agent sets \\Seen then). A reply is never dropped,
but one refused permanently (5xx: the adapter raises with `permanent = True`) or still failing
`settings.mail.give_up_hours` after its first failure is dead-lettered: kept in the queue,
logged at ERROR with its journal id, no longer retried, and counted as done. At start it replays journal rows that never got an outcome (crash recovery).
Must not touch: sockets or mail libraries (the transports and outbound adapters do that),
the booking policy (the agent's) or SQL (the store's).
"""
from __future__ import annotations

import asyncio
import email.policy
import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from typing import Callable, Protocol, Sequence

from bot.store.mail import NULL_SENDER, Draft, duplicate_outcome
from bot.config.settings import Settings
from mail.mime import message_key
from mail.parse import read_message

log = logging.getLogger(__name__)

SentListener = Callable[[int], None]


class Sender(Protocol):
    async def send(self, raw: bytes, mail_from: str, rcpt_to: Sequence[str]) -> None: ...


class Deciding(Protocol):
    def handle(self, msg: EmailMessage, now: datetime, *,
               message_key: str | None = None): ...  # -> Decision(replies, outcome)


def envelope_of(raw: bytes) -> tuple[str | None, str | None]:
    """(Message-ID, sender address) from the headers only; (None, None) parts when unreadable.
    Used for the journal row, before anything else may fail on the message."""
    try:
        headers = BytesHeaderParser(policy=email.policy.compat32).parsebytes(bytes(raw))
        message_id = (headers.get("Message-ID") or "").strip() or None
        sender = parseaddr(str(headers.get("From") or ""))[1].strip().lower() or None
        return message_id, sender
    except Exception:
        return None, None


def serialize(reply: EmailMessage) -> tuple[bytes, list[str]]:
    """Wire bytes and envelope recipients (To, Cc, Bcc) of a reply; Bcc never goes on the wire."""
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in reply.get_all(name, [])]
    rcpt = list(dict.fromkeys(addr for _, addr in getaddresses(fields) if addr))
    if "Bcc" in reply:
        del reply["Bcc"]
    return reply.as_bytes(policy=email.policy.SMTP), rcpt


def to_drafts(replies: Sequence[EmailMessage], context: str = "") -> list[Draft]:
    """Replies as queue entries (wire bytes, envelope). Every mail the bot sends is automatic:
    null envelope sender (RFC 3834 3.3). One without recipients is logged and left out."""
    drafts = []
    for reply in replies:
        wire, rcpt = serialize(reply)
        if not rcpt:
            log.error("%s: a reply without recipients was dropped: %r", context or "mail",
                      reply.get("Subject"))
            continue
        drafts.append(Draft(wire, tuple(rcpt), NULL_SENDER))
    return drafts


def retry_delay(attempts_before: int, schedule: Sequence[int]) -> timedelta:
    """Delay after the (attempts_before+1)-th failed try; the last step repeats forever."""
    steps = tuple(schedule) or (60,)
    return timedelta(seconds=steps[min(attempts_before, len(steps) - 1)])


class MailPipeline:
    """`accept` for the transports, `run_sender` (or `start`/`stop`) for the outgoing side."""

    def __init__(self, settings: Settings, store, agent: Deciding, outbound: Sender | None = None,
                 *, clock: Callable[[], datetime] | None = None, poll_seconds: float = 1.0):
        self.settings = settings
        self.store = store
        self.agent = agent
        self.outbound = outbound
        self._clock = clock
        self._poll = poll_seconds
        self._wake = asyncio.Event()
        self._decide_lock = asyncio.Lock()
        self._listeners: list[SentListener] = []
        self._task: asyncio.Task | None = None
        self._in_progress: set[int] = set()  # journal ids accept() is handling now
        self._waiting: dict[int, list[int]] = {}  # original journal id -> duplicates to notify
        self._stopping = False

    # --- wiring -------------------------------------------------------------------------------
    def add_sent_listener(self, listener: SentListener) -> None:
        """`listener(journal_id)` runs when no reply for that journal row is left unsent."""
        self._listeners.append(listener)

    on_sent = add_sent_listener

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        if hasattr(self.agent, "reconfigure"):
            self.agent.reconfigure(settings)

    def now(self) -> datetime:
        return self._clock() if self._clock else datetime.now(self.settings.service.timezone)

    def wake(self) -> None:
        self._wake.set()

    # --- inbound ------------------------------------------------------------------------------
    async def accept(self, raw: bytes, transport: str) -> int:
        """Journal, decide, queue the replies; returns the journal id. Raises only when the
        mail could not be journalled or its replies not queued (the transport then answers
        with a temporary failure, so the mail is offered again)."""
        raw = bytes(raw)
        message_id, sender = envelope_of(raw)
        journal_id = self.store.journal(raw, transport, message_id, sender, self.now())
        # Logged here, before the decision: "accepted … as journal #N" precedes "journal #N: …".
        log.info("accepted mail from %s via %s as journal #%s", sender or "(no sender)",
                 transport, journal_id)
        self._in_progress.add(journal_id)
        try:
            await self._process(journal_id, raw, message_id)
        finally:
            self._in_progress.discard(journal_id)
        return journal_id

    async def _process(self, journal_id: int, raw: bytes, message_id: str | None) -> None:
        now = self.now()
        # A mail without a Message-ID is recognised again by its exact bytes (SMTP retry,
        # IMAP re-fetch, journal replay), so it is never booked twice.
        key = message_key(raw, message_id)
        # One decision at a time (the agent keeps rate state), and the duplicate check inside
        # the same lock: two transports delivering one mail at once still get one answer.
        async with self._decide_lock:
            original = self.store.processed_journal(key)
            if original is None:
                try:
                    decision = await asyncio.to_thread(self._decide, raw, now, key)
                except Exception as exc:
                    self.store.set_outcome(journal_id, f"error: {type(exc).__name__}: {exc}")
                    raise
                drafts = self._drafts(journal_id, decision.replies)
                # Replies, processed Message-ID and outcome in ONE transaction: a crash
                # leaves all or nothing, so a replay never queues a reply twice.
                original = self.store.commit_decision(journal_id, decision.outcome, drafts, key)
            else:
                self.store.set_outcome(journal_id, duplicate_outcome(original))
        if original is not None:
            # The same mail again (an SMTP retry, an IMAP re-fetch after a restart): its
            # replies are queued under the original row; this row is done when they are sent.
            log.info("journal #%s: duplicate of journal #%s", journal_id, original)
            self._notify_with(journal_id, original)
            return
        log.info("journal #%s: %s (%d repl%s queued)", journal_id, decision.outcome,
                 len(drafts), "y" if len(drafts) == 1 else "ies")
        if drafts:
            self._wake.set()
        else:
            self._notify_later(journal_id)

    def _drafts(self, journal_id: int, replies) -> list[Draft]:
        return to_drafts(replies, f"journal #{journal_id}")

    def _decide(self, raw: bytes, now: datetime, key: str):
        return self.agent.handle(read_message(raw), now, message_key=key)

    async def recover(self) -> int:
        """Replay journal rows without an outcome (the process died while handling them)."""
        replayed = 0
        for row in self.store.unhandled_mail():
            if row.id in self._in_progress:
                continue  # journalled by a live accept() that is deciding right now
            try:
                await self._process(row.id, row.raw, row.message_id)
                replayed += 1
            except Exception:
                log.exception("journal #%s could not be replayed", row.id)
        if replayed:
            log.warning("recovered %d journalled mail(s) left unhandled by a crash", replayed)
        return replayed

    # --- outbound -----------------------------------------------------------------------------
    async def send_due(self) -> int:
        """One pass over the due queue; returns how many mails went out."""
        if self.outbound is None:
            return 0
        sent = 0
        for mail in self.store.due_mail(self.now()):
            try:
                await self.outbound.send(mail.raw, mail.mail_from, mail.rcpt_to)
            except Exception as exc:
                self._failed(mail, exc)
                continue
            self.store.mark_sent(mail.id, self.now())
            sent += 1
            self._done(mail.journal_id)
        return sent

    def _failed(self, mail, exc: Exception) -> None:
        """Retry later, or dead-letter: a permanent refusal (5xx) will not heal by itself,
        and neither will a reply still failing after `give_up_hours`."""
        now = self.now()
        error = f"{type(exc).__name__}: {exc}"
        give_up = timedelta(hours=self.settings.mail.give_up_hours)
        too_old = mail.first_failed is not None and now - mail.first_failed >= give_up
        if getattr(exc, "permanent", False) or too_old:
            self.store.mark_dead(mail.id, error, now)
            log.error("outgoing #%s (journal #%s, to %s) given up after %d attempt(s): %s",
                      mail.id, mail.journal_id, ", ".join(mail.rcpt_to), mail.attempts + 1,
                      error)
            self._done(mail.journal_id)
            return
        delay = retry_delay(mail.attempts, self.settings.mail.retry_seconds)
        self.store.mark_retry(mail.id, error, now + delay, failed_at=now)
        log.warning("outgoing #%s failed (attempt %d), retry in %ss: %r", mail.id,
                    mail.attempts + 1, int(delay.total_seconds()), exc)

    def _done(self, journal_id: int | None) -> None:
        """A reply was sent or dead-lettered: when none of its row is left, tell listeners."""
        if journal_id is not None and self.store.pending_for_journal(journal_id) == 0:
            self._notify(journal_id)
            for duplicate in self._waiting.pop(journal_id, ()):
                self._notify(duplicate)

    async def run_sender(self) -> None:
        """Recover, then send due mail whenever woken or every `poll_seconds` (retries)."""
        await self.recover()
        while not self._stopping:
            self._wake.clear()
            try:
                await self.send_due()
            except Exception:  # a store hiccup must not end the sender
                log.exception("send pass failed")
            # asyncio.wait, not wait_for: on 3.11 wait_for can swallow a cancellation.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=self._poll)
            finally:
                waiter.cancel()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run_sender(), name="mail-sender")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- listeners ----------------------------------------------------------------------------
    def _notify(self, journal_id: int) -> None:
        for listener in self._listeners:
            try:
                listener(journal_id)
            except Exception:
                log.exception("on_sent listener failed for journal #%s", journal_id)

    def _notify_with(self, journal_id: int, original: int) -> None:
        """Tell listeners about `journal_id` once the replies of `original` have gone out
        (at once when none are pending): the duplicate must not be \\Seen before them."""
        if original and self.store.pending_for_journal(original) > 0:
            self._waiting.setdefault(original, []).append(journal_id)
        else:
            self._notify_later(journal_id)

    def _notify_later(self, journal_id: int) -> None:
        # After accept() has returned, so the transport has recorded the journal id first.
        asyncio.get_running_loop().call_soon(self._notify, journal_id)
