"""Booking by email, end to end, with real parts only: a real Dovecot (IMAPS + LMTP), the real
SMTP listener driven by `swaks`, the real SqliteStore, Agent and MailPipeline, and replies
leaving through aiosmtplib to an in-test SMTP relay (aiosmtpd on a free loopback port).

Also the pipeline's promises: a failed send is retried and never lost, \\Seen only after the
replies went out, the same mail twice books once, a crash between journal and reply is
recovered at the next start.
"""
from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import re
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import aiosmtplib
import icalendar
import pytest

from bot.config.settings import (CapacitySettings, DialIn, ImapSettings, MailSettings, Outbound,
                          RelaySettings, Route, Settings, ServiceSettings, SmtpListen, Tariff)
from bot.store.sqlite import SqliteStore
from mail.agent import Agent
from mail.ics import own_uid
from mail.transport.imap_in import ImapAgent
from mail.transport.outbound import RelaySender
from mail.transport.pipeline import MailPipeline
from mail.transport.smtp_in import SmtpListener
from tests.mail_fixtures import RecordingRelay

pytest_plugins = ("tests.dovecot",)
pytestmark = pytest.mark.timeout(20)

BERLIN = ZoneInfo("Europe/Berlin")
BOT = "confbot@conf.example"
PREMIUM = "+49 900 5555 100"
TOLLFREE = "+49 800 5555 200"
_n = itertools.count(1)


def settings_for(relay_port: int, **mail_changes) -> Settings:
    return Settings(
        service=ServiceSettings(timezone=BERLIN),
        dialin=(DialIn(PREMIUM, "4990055551000", Tariff.PREMIUM, Route.PIN),
                DialIn(TOLLFREE, "4980055552000", Tariff.TOLLFREE, Route.PIN)),
        capacity=CapacitySettings(total_lines=40, room_max=20),
        mail=replace(MailSettings(address=BOT, allowed_senders=("example.com",),
                                  outbound=Outbound.RELAY,
                                  relay=RelaySettings(host="127.0.0.1", port=relay_port),
                                  smtp=SmtpListen(host="127.0.0.1", port=0)), **mail_changes))


def booking_mail(tag: str, *, invitees: str = "", body: str | None = None) -> bytes:
    day = (datetime.now(BERLIN) + timedelta(days=3)).strftime("%d.%m.%Y")
    text = body or (f"Please book a telephone conference on {day} at 10:00 for 60 minutes "
                    f"with 6 participants.\n{invitees}")
    return (f"From: Alice <alice@example.com>\r\nTo: {BOT}\r\nSubject: Review {tag}\r\n"
            f"Date: {email.utils.format_datetime(datetime.now(BERLIN))}\r\n"
            f"Message-ID: <{tag}@example.com>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()


def parsed(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def check_confirmation(raw: bytes, store: SqliteStore) -> str:
    """Asserts the reply carries the booking's PIN, the dial-in number and its .ics event;
    returns the booking reference."""
    msg = parsed(raw)
    reference = re.search(r"CB-[0-9A-Z]{5}", msg["Subject"]).group(0)
    booking = store.get(reference)
    assert booking is not None and booking.participants == 6
    body = msg.get_body(("plain",)).get_content()
    assert f"Participant PIN: {booking.participant_pin}" in body
    assert f"Moderator PIN: {booking.moderator_pin}" in body
    assert PREMIUM in body
    (ics,) = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert ics.get_param("method") == "PUBLISH"
    calendar = icalendar.Calendar.from_ical(ics.get_content())
    assert calendar.get("method") == "PUBLISH"
    (event,) = calendar.walk("VEVENT")
    assert str(event.get("uid")) == own_uid(booking, BOT)
    assert event.decoded("DTSTART") == booking.start
    return reference


async def wait_until(predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class Rig:
    """Store + agent + pipeline + relay, started inside the test's loop."""

    def __init__(self, tmp_path, **mail_changes):
        self.tmp_path = tmp_path
        self.mail_changes = mail_changes

    async def __aenter__(self):
        self.relay = await RecordingRelay().start()
        self.settings = settings_for(self.relay.port, **self.mail_changes)
        self.store = SqliteStore(self.tmp_path / "confbot.sqlite3")
        self.pipeline = MailPipeline(self.settings, self.store, Agent(self.settings, self.store),
                                     RelaySender(self.settings.mail.relay, timeout=5),
                                     poll_seconds=0.1)
        self.sent_events: list[int] = []
        self.pipeline.add_sent_listener(self.sent_events.append)
        await self.pipeline.start()
        return self

    async def __aexit__(self, *exc):
        await self.pipeline.stop()
        await self.relay.stop()
        self.store.close()


def test_booking_delivered_to_dovecot_is_answered_via_the_relay_and_then_marked_seen(
        dovecot, tmp_path):
    box = dovecot.add_user(f"e2e{next(_n)}")
    tag = f"imap-booking-{next(_n)}"

    async def scenario():
        async with Rig(tmp_path) as rig:
            imap_settings = ImapSettings(host="127.0.0.1", port=dovecot.imaps_port,
                                         user=box.user, password=box.password)
            imap = ImapAgent(imap_settings, rig.pipeline, ssl_context=dovecot.ssl_context())
            await imap.start()
            try:
                await wait_until(lambda: imap.idles >= 1)
                loop = asyncio.get_running_loop()
                raw = booking_mail(tag, invitees="Please invite bob@example.com.")
                delivered = loop.time()
                await asyncio.to_thread(dovecot.deliver, box, raw)
                first = await rig.relay.next(5)
                second = await rig.relay.next(5)
                print(f"\nIMAP: LMTP delivery -> first reply at the relay: "
                      f"{(first.at - delivered) * 1000:.0f} ms")
                await wait_until(lambda: "S" in dovecot.flags(box).get(f"<{tag}@example.com>", ""))
            finally:
                await imap.stop()
            return first, second, rig.store.mails(), rig.store

    first, second, journal, store = asyncio.run(scenario())
    by_rcpt = {r.rcpt_to: r for r in (first, second)}
    assert set(by_rcpt) == {("alice@example.com",), ("bob@example.com",)}
    # Header From is the bot; the envelope is the null sender (RFC 3834: bounces go nowhere).
    assert all(r.mail_from == "<>" for r in (first, second))
    assert all(BOT in parsed(r.raw)["From"] for r in (first, second))
    reference = check_confirmation(by_rcpt[("alice@example.com",)].raw, store)
    invitation = by_rcpt[("bob@example.com",)].raw.decode()
    assert store.get(reference).participant_pin in invitation
    assert store.get(reference).moderator_pin not in invitation
    (row,) = journal
    assert row.transport == "imap" and row.outcome == f"booked {reference}"


def test_booking_sent_with_swaks_to_the_smtp_listener_gets_its_reply(tmp_path):
    swaks = shutil.which("swaks")
    assert swaks, "swaks is installed on this machine (Debian package swaks)"
    tag = f"swaks-{next(_n)}"

    async def scenario():
        async with Rig(tmp_path) as rig:
            listener = SmtpListener(rig.settings.mail.smtp, rig.pipeline.accept)
            await listener.start()
            try:
                raw = booking_mail(tag)
                head, _, body = raw.decode().partition("\r\n\r\n")
                # swaks replaces its own headers only when spelled as it spells them.
                headers = [h for line in head.split("\r\n")
                           if not line.startswith(("From:", "To:"))
                           for h in ("--header", line.replace("Message-ID:", "Message-Id:"))]
                proc = await asyncio.create_subprocess_exec(
                    swaks, "--server", f"127.0.0.1:{listener.port}",
                    "--from", "alice@example.com", "--to", BOT,
                    "--h-From", "Alice <alice@example.com>", *headers, "--body", body,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
                transcript, _ = await asyncio.wait_for(proc.communicate(), 15)
                reply = await rig.relay.next(5)
            finally:
                await listener.stop()
            return proc.returncode, transcript.decode(), reply, rig.store.mails(), rig.store

    code, transcript, reply, journal, store = asyncio.run(scenario())
    assert code == 0, transcript
    assert "<-  250 2.0.0 OK" in transcript  # answered after journalling
    assert reply.rcpt_to == ("alice@example.com",)
    reference = check_confirmation(reply.raw, store)
    (row,) = journal
    assert row.transport == "smtp" and row.message_id == f"<{tag}@example.com>"
    assert row.outcome == f"booked {reference}"


def test_a_booking_mistake_is_a_reply_mail_not_an_smtp_error(tmp_path):
    async def scenario():
        async with Rig(tmp_path) as rig:
            listener = SmtpListener(rig.settings.mail.smtp, rig.pipeline.accept)
            await listener.start()
            try:
                _, status = await aiosmtplib.send(
                    booking_mail(f"vague-{next(_n)}", body="Can we have a call sometime?"),
                    sender="alice@example.com", recipients=[BOT], hostname="127.0.0.1",
                    port=listener.port, start_tls=False)
                reply = await rig.relay.next(5)
            finally:
                await listener.stop()
            return status, reply, rig.store.list()

    status, reply, bookings = asyncio.run(scenario())
    assert status.startswith("2.0.0")
    assert reply.rcpt_to == ("alice@example.com",)
    assert bookings == []  # nothing half-booked
    assert "CB-" not in parsed(reply.raw)["Subject"]


def test_a_failed_send_is_retried_and_listeners_hear_only_after_it_went_out(tmp_path):
    async def scenario():
        async with Rig(tmp_path, retry_seconds=(1, 1)) as rig:
            rig.relay.down = True
            journal_id = await rig.pipeline.accept(booking_mail(f"retry-{next(_n)}"), "smtp")
            await wait_until(lambda: rig.store.pending_for_journal(journal_id) == 1)
            await asyncio.sleep(1.6)  # at least one failed try and its retry
            failed_tries = rig.store.due_mail(datetime.now(BERLIN) + timedelta(hours=1))
            heard_while_down = list(rig.sent_events)
            rig.relay.down = False
            reply = await rig.relay.next(5)
            await wait_until(lambda: journal_id in rig.sent_events)
            return journal_id, failed_tries, heard_while_down, reply, rig.store

    journal_id, failed_tries, heard_while_down, reply, store = asyncio.run(scenario())
    (pending,) = failed_tries
    assert pending.attempts >= 1 and "451" in pending.last_error
    assert heard_while_down == []
    check_confirmation(reply.raw, store)
    assert store.pending_for_journal(journal_id) == 0


def test_the_same_mail_twice_books_once_and_is_answered_once(tmp_path):
    raw = booking_mail(f"twice-{next(_n)}")

    async def scenario():
        async with Rig(tmp_path) as rig:
            first = await rig.pipeline.accept(raw, "smtp")
            second = await rig.pipeline.accept(raw, "imap")
            reply = await rig.relay.next(5)
            await asyncio.sleep(0.3)
            return first, second, reply, list(rig.relay.received), rig.store

    first, second, reply, received, store = asyncio.run(scenario())
    assert first != second
    assert len(received) == 1 and len(store.list()) == 1
    outcomes = {m.id: m.outcome for m in store.mails()}
    assert outcomes[first].startswith("booked CB-")
    assert outcomes[second].startswith("duplicate")


def test_mail_journalled_before_a_crash_is_answered_at_the_next_start(tmp_path):
    raw = booking_mail(f"crash-{next(_n)}")
    crashed = SqliteStore(tmp_path / "confbot.sqlite3")
    journal_id = crashed.journal(raw, "smtp", "<crash@example.com>", "alice@example.com",
                                 datetime.now(BERLIN))
    crashed.close()  # the process died before deciding

    async def scenario():
        async with Rig(tmp_path) as rig:
            reply = await rig.relay.next(5)
            return reply, rig.store.get_mail(journal_id), rig.store

    reply, row, store = asyncio.run(scenario())
    reference = check_confirmation(reply.raw, store)
    assert row.outcome == f"booked {reference}"


# --- crash safety and duplicates (issue 2, store + pipeline) --------------------------------------

class Crash(Exception):
    """Stands in for the process dying at one exact point."""


def test_a_crash_between_queueing_and_the_outcome_queues_nothing_and_replay_answers_once(tmp_path):
    """Replies, processed Message-ID and outcome are one transaction: a crash just before the
    outcome is written leaves none of them, so the replay after restart answers exactly once."""
    raw = booking_mail(f"torn-{next(_n)}", invitees="Please invite bob@example.com.")
    path = tmp_path / "confbot.sqlite3"
    store = SqliteStore(path)
    settings = settings_for(1)

    def crash_at_outcome(db, journal_id, outcome):
        raise Crash(f"died before writing {outcome!r}")
    store._set_outcome = crash_at_outcome
    pipeline = MailPipeline(settings, store, Agent(settings, store), None)
    with pytest.raises(Crash):
        asyncio.run(pipeline.accept(raw, "smtp"))
    (row,) = store.unhandled_mail()
    message_id = row.message_id
    left = (store.due_mail(datetime.now(BERLIN)), store.is_processed(message_id))
    store.close()
    assert left == ([], False)      # the torn transaction was rolled back completely

    async def restart():
        async with Rig(tmp_path) as rig:
            replies = [await rig.relay.next(5), await rig.relay.next(5)]
            await asyncio.sleep(0.3)       # room for a wrong third mail to show up
            return replies, list(rig.relay.received), rig.store

    replies, received, store = asyncio.run(restart())
    assert len(received) == 2
    assert sorted(r.rcpt_to for r in replies) == [("alice@example.com",), ("bob@example.com",)]
    (booking,) = store.list()
    assert store.get_mail(row.id).outcome == f"booked {booking.reference}"
    assert store.processed_journal(message_id) == row.id


def test_a_duplicate_is_reported_sent_only_after_the_originals_replies_went_out(tmp_path):
    raw = booking_mail(f"dup-wait-{next(_n)}")

    async def scenario():
        async with Rig(tmp_path, retry_seconds=(1,)) as rig:
            rig.relay.down = True
            first = await rig.pipeline.accept(raw, "smtp")
            second = await rig.pipeline.accept(raw, "imap")
            await asyncio.sleep(0.5)
            heard_while_down = list(rig.sent_events)
            rig.relay.down = False
            await rig.relay.next(5)
            await wait_until(lambda: second in rig.sent_events)
            return first, second, heard_while_down, list(rig.sent_events), rig.store

    first, second, heard_while_down, heard, store = asyncio.run(scenario())
    assert heard_while_down == []           # IMAP must not set \Seen on either copy yet
    assert heard.index(first) < heard.index(second)
    assert store.processed_journal(store.get_mail(second).message_id) == first
    assert store.get_mail(second).outcome == f"duplicate: Message-ID already processed (journal #{first})"


def test_one_mail_delivered_by_both_transports_at_once_is_answered_once(tmp_path):
    raw = booking_mail(f"both-{next(_n)}")

    async def scenario():
        async with Rig(tmp_path) as rig:
            ids = await asyncio.gather(rig.pipeline.accept(raw, "smtp"),
                                       rig.pipeline.accept(raw, "imap"))
            await rig.relay.next(5)
            await asyncio.sleep(0.3)
            return ids, list(rig.relay.received), rig.store

    ids, received, store = asyncio.run(scenario())
    assert len(received) == 1 and len(store.list()) == 1
    outcomes = sorted(store.get_mail(i).outcome.split(":")[0].split()[0] for i in ids)
    assert outcomes == ["booked", "duplicate"]


def test_a_bounce_to_the_smtp_listener_is_journalled_and_never_answered(tmp_path):
    """`MAIL FROM:<>` (a bounce, another robot): the listener writes `Return-Path: <>` and the
    agent's loop check stays silent, even though the mail itself looks like a booking."""
    raw = booking_mail(f"bounce-{next(_n)}")

    async def scenario():
        async with Rig(tmp_path) as rig:
            listener = SmtpListener(rig.settings.mail.smtp, rig.pipeline.accept)
            await listener.start()
            try:
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port,
                                         start_tls=False)
                async with client:
                    await client.sendmail("", [BOT], raw)
                await asyncio.sleep(0.3)
            finally:
                await listener.stop()
            return list(rig.relay.received), rig.store.mails(), rig.store.list()

    received, journal, bookings = asyncio.run(scenario())
    assert received == [] and bookings == []
    (row,) = journal
    assert row.outcome == "ignored: empty return-path"
    on_the_wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # SMTP sends CRLF
    assert row.raw == f"Return-Path: <>\r\nDelivered-To: {BOT}\r\n".encode() + on_the_wire


BAD_MAILS = {
    "broken_mime": (b"From: alice@example.com\r\nSubject: Call\r\nMessage-ID: <bm@example.com>\r\n"
                    b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n"
                    b"Content-Transfer-Encoding: base64\r\n\r\n@@@not base64@@@\r\n"),
    "unknown_charset": (b"From: alice@example.com\r\nSubject: Call\r\nMessage-ID: <uc@example.com>\r\n"
                        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n"
                        b"\xff\xfe\xfd 10:00\r\n"),
    "other_language": (b"From: alice@example.com\r\nSubject: Conferencia\r\n"
                       b"Message-ID: <ol@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                       + "Bonjour, je voudrais réserver une conférence pour demain avec huit "
                       "personnes. Merci et à bientôt.\r\n".encode()),
    "no_headers_at_all": b"\x00\x01garbage without any header\r\n\r\n\xff",
}


@pytest.mark.parametrize("name", sorted(BAD_MAILS))
def test_bad_input_keeps_the_raw_mail_gets_an_answer_or_a_logged_refusal_and_service_goes_on(
        tmp_path, name):
    raw = BAD_MAILS[name]

    async def scenario():
        async with Rig(tmp_path) as rig:
            bad = await rig.pipeline.accept(raw, "smtp")
            good = await rig.pipeline.accept(booking_mail(f"after-{name}-{next(_n)}"), "smtp")
            replies = [await rig.relay.next(5)]
            if rig.store.get_mail(bad).outcome.startswith("refused"):
                replies.append(await rig.relay.next(5))
            return rig.store.get_mail(bad), rig.store.get_mail(good), replies

    bad, good, replies = asyncio.run(scenario())
    assert bad.raw == raw                            # the journal keeps the mail as received
    assert bad.outcome.startswith(("refused: ", "ignored: "))
    assert good.outcome.startswith("booked CB-")     # and the service kept running
    if bad.outcome.startswith("refused"):
        assert {r.rcpt_to for r in replies} == {("alice@example.com",)}
        answer = next(parsed(r.raw) for r in replies if "CB-" not in parsed(r.raw)["Subject"])
        assert answer["In-Reply-To"] == bad.message_id


# --- reviewer findings: replay of a cancellation, mail without Message-ID, dead letters ------------

def cancel_mail(reference: str, tag: str) -> bytes:
    return (f"From: alice@example.com\r\nTo: {BOT}\r\nSubject: Re: Confirmed [{reference}]\r\n"
            f"Message-ID: <{tag}@example.com>\r\n\r\nPlease cancel it.\r\n").encode()


def test_a_cancellation_torn_by_a_crash_is_answered_with_the_cancellation_at_the_next_start(tmp_path):
    """ledger.cancel commits on its own; a crash before the replies are committed must not make
    the replay answer "already cancelled": the invitees still need their CANCEL .ics."""
    path = tmp_path / "confbot.sqlite3"
    settings = settings_for(1)
    store = SqliteStore(path)
    pipeline = MailPipeline(settings, store, Agent(settings, store), None)
    asyncio.run(pipeline.accept(booking_mail(f"tc-{next(_n)}", invitees="Invite bob@example.com."),
                                "smtp"))
    (booking,) = store.list()

    def crash_at_outcome(db, journal_id, outcome):
        raise Crash(f"died before writing {outcome!r}")
    store._set_outcome = crash_at_outcome
    with pytest.raises(Crash):
        asyncio.run(pipeline.accept(cancel_mail(booking.reference, f"tc-cancel-{next(_n)}"), "smtp"))
    cancelled = store.get(booking.reference)
    store.close()
    assert not cancelled.active                  # the ledger did commit the cancellation

    async def restart():
        async with Rig(tmp_path) as rig:
            await rig.relay.next(5), await rig.relay.next(5)      # the booking's two replies
            replies = [await rig.relay.next(5), await rig.relay.next(5)]
            await asyncio.sleep(0.3)
            return replies, rig.store.mails()

    replies, rows = asyncio.run(restart())
    assert sorted(r.rcpt_to for r in replies) == [("alice@example.com",), ("bob@example.com",)]
    for reply in replies:
        (ics,) = [p for p in parsed(reply.raw).iter_attachments()
                  if p.get_content_type() == "text/calendar"]
        assert ics.get_param("method") == "CANCEL"
    assert rows[0].outcome == f"cancelled {booking.reference}"


def test_a_mail_without_message_id_is_booked_once_whatever_the_transport_or_replay(tmp_path):
    day = (datetime.now(BERLIN) + timedelta(days=3)).strftime("%d.%m.%Y")
    raw = (f"From: Alice <alice@example.com>\r\nTo: {BOT}\r\nSubject: No id {next(_n)}\r\n\r\n"
           f"Please book a conference on {day} at 10:00 for 60 minutes with 6 participants.\r\n"
           ).encode()

    async def scenario():
        async with Rig(tmp_path) as rig:
            first = await rig.pipeline.accept(raw, "smtp")
            second = await rig.pipeline.accept(raw, "smtp")      # the client retried
            third = await rig.pipeline.accept(raw, "imap")       # and it came by IMAP too
            await rig.relay.next(5)
            await asyncio.sleep(0.3)
            return (first, second, third), list(rig.relay.received), rig.store

    ids, received, store = asyncio.run(scenario())
    assert len(store.list()) == 1 and len(received) == 1
    outcomes = {m.id: m.outcome for m in store.mails()}
    assert outcomes[ids[0]].startswith("booked CB-")
    assert outcomes[ids[1]].startswith("duplicate") and outcomes[ids[2]].startswith("duplicate")


def test_a_reply_refused_permanently_is_dead_lettered_logged_and_counts_as_done(tmp_path, caplog):
    raw = booking_mail(f"dead-{next(_n)}", invitees="Please invite ghost@example.com.")

    async def scenario():
        async with Rig(tmp_path, retry_seconds=(1,)) as rig:
            rig.relay.refuse = {"ghost@example.com"}
            journal_id = await rig.pipeline.accept(raw, "smtp")
            confirmation = await rig.relay.next(5)
            await wait_until(lambda: journal_id in rig.sent_events)
            await asyncio.sleep(1.5)                 # a retry would have happened by now
            return journal_id, confirmation, list(rig.relay.received), rig.store

    with caplog.at_level("ERROR", logger="mail.transport.pipeline"):
        journal_id, confirmation, received, store = asyncio.run(scenario())
    assert confirmation.rcpt_to == ("alice@example.com",) and len(received) == 1
    (dead,) = store.dead_mail()
    assert dead.rcpt_to == ("ghost@example.com",) and dead.attempts == 1
    assert "ghost@example.com" in dead.last_error and dead.journal_id == journal_id
    assert store.due_mail(datetime.now(BERLIN) + timedelta(days=1)) == []
    assert store.pending_for_journal(journal_id) == 0
    assert any(f"journal #{journal_id}" in r.getMessage() and r.levelname == "ERROR"
               for r in caplog.records)


class AlwaysDown:
    """An outbound double (same `send` interface) whose relay never answers."""
    def __init__(self):
        self.tries = 0

    async def send(self, raw, mail_from, rcpt_to):
        self.tries += 1
        raise ConnectionRefusedError("relay unreachable")


def test_a_reply_failing_for_give_up_hours_is_dead_lettered_and_counts_as_done(tmp_path):
    start = datetime.now(BERLIN)
    clock = [start]
    settings = settings_for(1, retry_seconds=(60,), give_up_hours=72)
    store = SqliteStore(tmp_path / "confbot.sqlite3")
    outbound = AlwaysDown()
    pipeline = MailPipeline(settings, store, Agent(settings, store), outbound,
                            clock=lambda: clock[0])
    heard: list[int] = []
    pipeline.add_sent_listener(heard.append)

    async def scenario():
        journal_id = await pipeline.accept(booking_mail(f"old-{next(_n)}"), "smtp")
        await pipeline.send_due()                             # first failure at `start`
        clock[0] = start + timedelta(hours=71, minutes=59)
        await pipeline.send_due()                             # still within the give-up time
        alive = (store.dead_mail(), store.pending_for_journal(journal_id))
        clock[0] = start + timedelta(hours=72, minutes=1)
        await pipeline.send_due()
        await pipeline.send_due()                             # dead: never tried again
        await asyncio.sleep(0)
        return journal_id, alive

    journal_id, alive = asyncio.run(scenario())
    assert alive == ([], 1)
    (dead,) = store.dead_mail()
    assert outbound.tries == 3 and dead.attempts == 3
    assert dead.first_failed == start.replace(microsecond=0).astimezone(dead.first_failed.tzinfo)
    assert "ConnectionRefusedError" in dead.last_error
    assert heard == [journal_id]
