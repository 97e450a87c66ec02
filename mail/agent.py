"""The mail agent policy (pure): one inbound mail in, the reply mails and a journal note out.

Owns the decision what to do with a mail, in this order: never answer robots (no mail loops:
Auto-Submitted, Precedence bulk/list/junk, mailing lists, empty Return-Path, our own address,
mailer-daemons, delivery reports); when `mail.authserv_id` is set, never answer a mail the
receiving MTA did not authenticate for its From domain (no backscatter to forged senders);
a per-sender rate limit (one notice per hour, then silence;
it comes before the sender check so refusals cannot be used to flood a forged address);
senders not allowed by config get a polite refusal; a subject with a booking reference is a
follow-up (organizer only: cancel, change, status); anything else is a new booking.
Invitee mails are capped at min(participants - 1, `mail.max_invitees`): one mail must not fan
out to a hundred strangers. A booking whose replies cannot be composed is cancelled again
before the apology goes out: nothing is half-booked.
Must not touch sockets, files, the clock (`now` is passed in) or the store's internals: it speaks
to any `bot.booking.ledger.Ledger`. Wording and MIME are `mail.compose`'s; reading mails is `mail.parse`'s.
Nothing raises out of `handle()`: an unexpected error becomes an apology and "error: …".
"""
from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Callable

from bot.booking.domain import Booking, elapsed, normalize_reference, utc_add
from bot.booking.ledger import Full, Ledger, Refused, Reserved, ReserveResult
from bot.config.settings import Settings
from mail import compose
from mail.body import COMMAND_WORDS, Command, booking_text, read_command  # noqa: F401
from mail.compose import Problem
from mail.itip import CalendarPolicy
from mail.mime import authenticated, extract, header, sender as sender_of
from mail.parse import (ParseError, calendar_event, detect_language, parse_booking, parse_change,
                        strip_subject_prefixes)

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# "CB-7K2Q9", "cb 7k2q9", "CB7K2Q9": candidates for bot.booking.domain.normalize_reference.
_REFERENCE = re.compile(r"\bCB[\s-]?[0-9A-Z]{5}\b", re.IGNORECASE)
_DAEMONS = frozenset({"mailer-daemon", "mailer_daemon", "mail-daemon", "postmaster"})


@dataclass(frozen=True, slots=True)
class Decision:
    replies: tuple[EmailMessage, ...]
    outcome: str  # journal note: "booked CB-7K2Q9", "refused: past", "ignored: auto-submitted"


class Limit(enum.Enum):
    PASS = "pass"
    NOTICE = "notice"    # first mail over the limit: one short notice
    SILENT = "silent"    # further mails in that hour: no reply at all


class RateLimiter:
    """Per sender: at most `limit` mails answered in any sliding hour; the first mail beyond
    gets a notice, the rest of that hour is silent. State is bounded by the senders of the
    last hour."""

    def __init__(self, limit: int, window: timedelta = HOUR) -> None:
        self._limit, self._window = limit, window
        self._seen: dict[str, deque[datetime]] = {}
        self._noticed: dict[str, datetime] = {}

    def set_limit(self, limit: int) -> None:
        """A config reload changes the limit; the counts of the last hour stay."""
        self._limit = limit

    def check(self, sender: str, at: datetime) -> Limit:
        self._forget(at)
        seen = self._seen.setdefault(sender, deque())
        if len(seen) < self._limit:
            seen.append(at)
            return Limit.PASS
        if sender in self._noticed:
            return Limit.SILENT
        self._noticed[sender] = at
        return Limit.NOTICE

    def _forget(self, at: datetime) -> None:
        horizon = at - self._window
        for key in list(self._seen):
            seen = self._seen[key]
            while seen and seen[0] <= horizon:
                seen.popleft()
            if not seen:
                del self._seen[key]
        for key, when in list(self._noticed.items()):
            if when <= horizon:
                del self._noticed[key]


def sender_allowed(sender: str, allowed: tuple[str, ...]) -> bool:
    """Entries are full addresses ("alice@example.com") or domains ("example.com",
    "@example.com"); a domain matches exactly, not its subdomains. Empty: nobody."""
    domain = sender.rpartition("@")[2]
    for entry in allowed:
        entry = entry.strip().lower()
        if "@" in entry.lstrip("@"):
            if entry == sender:
                return True
        elif entry.lstrip("@") == domain:
            return True
    return False


def find_reference(subject: str) -> str | None:
    for match in _REFERENCE.finditer(subject):
        reference = normalize_reference(match.group())
        if reference:
            return reference
    return None


def own_text(msg: EmailMessage) -> str:
    """The writer's own words: quotes of earlier mails and signatures are cut by `mail.body`."""
    return "\n".join(booking_text(text) for text in extract(msg).texts)


def find_command(msg: EmailMessage, booking: Booking) -> Command:
    """What a follow-up orders (`mail.body.read_command`): the subject counts from its start,
    after Re:/AW:, without the reference and the booking's title (which may contain anything);
    the text only in its first clause, outside quotes. No order: status."""
    subject = strip_subject_prefixes(header(msg, "Subject"))
    subject = _REFERENCE.sub(" ", subject.replace(booking.title, " "))
    subject = strip_subject_prefixes(subject.replace("[", " ").replace("]", " ").strip())
    return read_command(subject, own_text(msg))


def mail_key(msg: EmailMessage) -> str | None:
    """The Message-ID, or a digest of the message for a mail without one (the pipeline passes
    the digest of the raw bytes instead: `mail.mime.message_key`)."""
    message_id = header(msg, "Message-ID")
    if message_id:
        return message_id
    try:
        return f"<{hashlib.sha256(msg.as_bytes()).hexdigest()}@confbot>"
    except Exception:
        return None


def invited(booking: Booking, settings: Settings) -> tuple[list[str], list[str]]:
    """(invited, not invited): each invitee once, never the organizer (who has the full
    mail) nor the bot; at most min(participants - 1, max_invitees) get a mail, so a
    forged or careless booking cannot make the bot mail a crowd."""
    skip = {booking.organizer.lower(), *settings.mail.own_addresses()}
    out: list[str] = []
    for invitee in booking.invitees:
        address = invitee.strip().lower()
        if address and "@" in address and address not in skip:
            skip.add(address)
            out.append(invitee.strip())
    limit = max(0, min(booking.participants - 1, settings.mail.max_invitees))
    return out[:limit], out[limit:]


def cancellation_mails(cancelled: Booking, settings: Settings, *, to: str,
                       original: EmailMessage | None, now: datetime,
                       lang: str | None = None) -> tuple[EmailMessage, ...]:
    """What a cancellation sends, however it was ordered (a mail, a calendar CANCEL, `confbot
    booking cancel`): the organizer's cancellation (METHOD:CANCEL, or a declining REPLY to
    their own invitation) and a notice to every invitee who was mailed the booking."""
    replies = [compose.cancellation(cancelled, settings, to=to, original=original, now=now,
                                    lang=lang)]
    replies += [compose.cancellation_notice(cancelled, invitee, settings, now=now)
                for invitee in invited(cancelled, settings)[0]]
    return tuple(replies)


class Agent(CalendarPolicy):
    def __init__(self, settings: Settings, ledger: Ledger, *,
                 rate_limit_clock: Callable[[], datetime] | None = None) -> None:
        """`rate_limit_clock`: where the rate limiter reads the time; by default the `now`
        given to `handle()` (so replaying the journal is deterministic)."""
        self.settings = settings
        self.ledger = ledger
        self._clock = rate_limit_clock
        self._limiter = RateLimiter(settings.mail.rate_limit_per_hour)
        # The key of the mail being handled (one at a time: the pipeline serialises decisions).
        self._key: str | None = None

    def reconfigure(self, settings: Settings) -> None:
        """Take a reloaded config (allowed senders, limits, numbers) for the next mail."""
        self.settings = settings
        self._limiter.set_limit(settings.mail.rate_limit_per_hour)

    def handle(self, msg: EmailMessage, now: datetime, *,
               message_key: str | None = None) -> Decision:
        """`message_key`: what identifies this mail for de-duplication (the pipeline passes
        `mail.mime.message_key` of the raw bytes); by default its Message-ID or a digest."""
        try:
            ignored = self.ignore_reason(msg)
        except Exception as exc:  # cannot tell whether answering is safe: stay silent
            log.exception("loop check failed")
            return Decision((), f"error: {type(exc).__name__}: {exc}")
        if ignored is not None:
            return Decision((), f"ignored: {ignored}")
        sender = sender_of(msg)
        try:
            self._key = message_key or mail_key(msg)
            return self._decide(msg, sender, now)
        except Exception as exc:
            log.exception("mail from %s could not be handled", sender)
            outcome = f"error: {type(exc).__name__}: {exc}"
            try:
                reply = compose.refusal(Problem.ERROR, self.settings, to=sender, original=msg,
                                        now=now, lang=self._language(msg))
            except Exception:
                log.exception("could not even compose the apology")
                return Decision((), outcome)
            return Decision((reply,), outcome)

    def ignore_reason(self, msg: EmailMessage) -> str | None:
        """Why this mail must get no answer at all, or None (RFC 3834 section 2)."""
        auto = header(msg, "Auto-Submitted").split(";")[0].strip().lower()
        if auto and auto != "no":
            return "auto-submitted"
        precedence = header(msg, "Precedence").lower()
        if precedence in ("bulk", "list", "junk"):
            return f"precedence {precedence}"
        if header(msg, "List-Id"):
            return "mailing list"
        if msg.get("Return-Path") is not None and header(msg, "Return-Path").strip("<> ") == "":
            return "empty return-path"
        if msg.get_content_type() == "multipart/report":
            return "delivery report"
        sender = sender_of(msg)
        if not sender:
            return "no sender address"
        if sender in self.settings.mail.own_addresses():
            return "own address"
        if sender.partition("@")[0] in _DAEMONS:
            return "mailer-daemon"
        return None

    # -- the policy ------------------------------------------------------------------------

    def _decide(self, msg: EmailMessage, sender: str, now: datetime) -> Decision:
        authserv_id = self.settings.mail.authserv_id
        if authserv_id and not authenticated(msg, authserv_id):
            # Possibly forged: any answer would go to whoever the forger named.
            log.warning("mail claiming to be from %s is not authenticated by %s; ignored",
                        sender, authserv_id)
            return Decision((), "ignored: unauthenticated")
        limit = self._limiter.check(sender, self._clock() if self._clock else now)
        if limit is Limit.SILENT:
            return Decision((), "ignored: rate limited")
        if limit is Limit.NOTICE:
            return self._refuse(Problem.RATE_LIMITED, msg, sender, now, "rate limited")
        allowed = self.settings.mail.allowed_senders
        if not sender_allowed(sender, allowed):
            problem = Problem.NOT_ALLOWED if allowed else Problem.NOBODY_ALLOWED
            return self._refuse(problem, msg, sender, now, "sender not allowed")
        reference = find_reference(header(msg, "Subject"))
        if reference is not None:
            return self._follow_up(msg, sender, reference, now)
        return self._book(msg, sender, now)

    def _book(self, msg: EmailMessage, sender: str, now: datetime) -> Decision:
        message_id = self._key
        invitation = calendar_event(msg, self.settings)
        if invitation is not None:   # an update or cancel of a booked event (mail.itip)?
            decided = self._calendar(msg, sender, invitation, now)
            if decided is not None:
                return decided
        parsed = parse_booking(msg, now=now, settings=self.settings)
        if isinstance(parsed, ParseError):
            reply = compose.refuse_missing(self.settings, to=sender, original=msg, now=now,
                                           lang=parsed.language, missing=parsed.missing,
                                           error=parsed.error, reason=parsed.reason,
                                           bilingual=parsed.bilingual)
            why = parsed.reason or "missing " + (", ".join(parsed.missing) or "details")
            return Decision((reply,), f"refused: {why}")
        request = parsed.request
        result = self.ledger.reserve(request, now, self.settings.capacity,
                                     self.settings.pins.length, source_message_id=message_id)
        if isinstance(result, Reserved):
            booking = result.booking
            if not booking.active:   # replay of a mail whose booking was withdrawn (below)
                raise RuntimeError(f"{booking.reference} was withdrawn after an earlier failure")
            try:
                invited, not_invited = self._invitees(booking)
                replies = [compose.confirmation(booking, self.settings, to=sender, original=msg,
                                                now=now, lang=request.language,
                                                not_invited=not_invited,
                                                written_zone=request.written_zone)]
                replies += [compose.invitee_mail(booking, invitee, self.settings, now=now)
                            for invitee in invited]
            except Exception:
                # No PINs can go out: give the lines back before the apology (B3).
                self.ledger.cancel(booking.reference, message_id)
                raise
            return Decision(tuple(replies), f"booked {booking.reference}")
        return self._not_reserved(result, msg, sender, now, request.language, request.start,
                                  request.end, request.participants)

    def _not_reserved(self, result: ReserveResult, msg: EmailMessage, sender: str,
                      now: datetime, lang: str, start: datetime, end: datetime,
                      participants: int, kept: Booking | None = None) -> Decision:
        """`kept`: the booking a refused change leaves as it was (the reply says so)."""
        if isinstance(result, Full):
            reply = compose.refuse_full(self.settings, to=sender, original=msg, now=now,
                                        lang=lang, start=start, end=end,
                                        participants=participants, reason=result.reason,
                                        free_lines=result.free_lines, proposals=result.proposals,
                                        kept=kept)
            return Decision((reply,), f"refused: full ({result.reason})")
        assert isinstance(result, Refused), result
        reply = compose.refuse_rule(self.settings, to=sender, original=msg, now=now, lang=lang,
                                    reason=result.reason, detail=result.detail, start=start,
                                    end=end, participants=participants, kept=kept)
        return Decision((reply,), f"refused: {result.reason}")

    def _follow_up(self, msg: EmailMessage, sender: str, reference: str,
                   now: datetime) -> Decision:
        booking = self.ledger.get(reference)
        lang = self._language(msg, booking)
        if booking is None:
            return self._refuse(Problem.UNKNOWN_REFERENCE, msg, sender, now,
                                f"unknown reference {reference}", lang, reference=reference)
        if booking.organizer.lower() != sender:
            return self._refuse(Problem.NOT_ORGANIZER, msg, sender, now,
                                f"not the organizer of {reference}", lang,
                                reference=reference)
        command = find_command(msg, booking)
        if command is Command.CANCEL and not booking.active and booking.cancelled_by == self._key:
            # This very mail cancelled it, but its replies were never queued (a crash between
            # the cancellation and the journal): send them now.
            return self._cancelled(msg, sender, booking, now, lang)
        if command is not Command.STATUS and not booking.active:
            return self._refuse(Problem.ALREADY_CANCELLED, msg, sender, now,
                                f"{reference} already cancelled", lang, reference=reference)
        match command:
            case Command.CANCEL:
                return self._cancel(msg, sender, booking, now, lang)
            case Command.CHANGE:
                return self._change(msg, sender, booking, now, lang)
            case Command.STATUS:
                reply = compose.status(booking, self.settings, to=sender, original=msg, now=now,
                                       lang=lang)
                return Decision((reply,), f"status {reference}")

    def _cancel(self, msg: EmailMessage, sender: str, booking: Booking, now: datetime,
                lang: str) -> Decision:
        cancelled = self.ledger.cancel(booking.reference, self._key)
        if cancelled is None:
            return self._refuse(Problem.UNKNOWN_REFERENCE, msg, sender, now,
                                f"unknown reference {booking.reference}", lang,
                                reference=booking.reference)
        return self._cancelled(msg, sender, cancelled, now, lang)

    def _cancelled(self, msg: EmailMessage, sender: str, cancelled: Booking, now: datetime,
                   lang: str) -> Decision:
        replies = cancellation_mails(cancelled, self.settings, to=sender, original=msg, now=now,
                                     lang=lang)
        return Decision(replies, f"cancelled {cancelled.reference}")

    def _change(self, msg: EmailMessage, sender: str, booking: Booking, now: datetime,
                lang: str) -> Decision:
        wanted = parse_change(msg, now=now, settings=self.settings, current=booking)
        changes = {key: wanted[key] for key in ("start", "end", "participants")
                   if wanted.get(key) is not None}
        if not changes:
            return self._refuse(Problem.NOTHING_TO_CHANGE, msg, sender, now,
                                f"change of {booking.reference} without new values", lang,
                                reference=booking.reference)
        start = changes.get("start", booking.start)
        end = changes.get("end", utc_add(start, elapsed(booking.start, booking.end)))
        participants = changes.get("participants", booking.participants)
        result = self.ledger.change(booking.reference, now, self.settings.capacity, **changes)
        if not isinstance(result, Reserved):
            return self._not_reserved(result, msg, sender, now, lang, start, end, participants,
                                      kept=booking)
        updated = result.booking
        replies = [compose.confirmation(updated, self.settings, to=sender, original=msg,
                                        now=now, lang=lang, changed=True)]
        replies += [compose.invitee_mail(updated, invitee, self.settings, now=now, changed=True)
                    for invitee in self._invitees(updated)[0]]
        return Decision(tuple(replies), f"changed {booking.reference}")

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _decision(replies: tuple[EmailMessage, ...], outcome: str) -> Decision:
        return Decision(replies, outcome)

    def _refuse(self, problem: Problem, msg: EmailMessage, sender: str, now: datetime,
                note: str, lang: str | None = None, **facts: object) -> Decision:
        reply = compose.refusal(problem, self.settings, to=sender, original=msg, now=now,
                                lang=lang or self._language(msg), sender=sender, **facts)
        return Decision((reply,), f"refused: {note}")

    def _invitees(self, booking: Booking) -> tuple[list[str], list[str]]:
        return invited(booking, self.settings)

    def _language(self, msg: EmailMessage, booking: Booking | None = None) -> str:
        """The mail's language; when it is undecided, the booking's or the service default."""
        default = booking.language if booking else self.settings.service.default_language
        try:
            return detect_language(f"{header(msg, 'Subject')}\n{own_text(msg)}", default=default)
        except Exception:
            return default
