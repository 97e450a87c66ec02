"""The booking-mail parser (pure): a mail → a `BookingRequest` or a precise `ParseError`.

Owns: combining the mail's parts (mail.mime), its booking text (mail.body), its wording
(mail.datetext) and its calendar invitation (mail.invite) into one request, and the rules a
request must meet before it reaches the ledger: a start that is not past, a length within
`max_minutes`, not beyond `max_days_ahead`, at most `room_max` participants.
Must not touch: the network, the clock (the caller passes `now`), the ledger, reply wording
beyond the one English sentence in `ParseError.error`.
"""
from __future__ import annotations

import email.utils
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message

from bot.booking.domain import PAST_GRACE, Booking, BookingRequest, DialInMode, elapsed, utc_add
from bot.config.settings import Settings
from mail.body import booking_text
from mail.datetext import (When, detect_language, find_count, find_duration, find_when,
                           language_scores)
from mail.invite import Invitation, read_invitation
from mail.mime import extract, header, read_message, sender, sent_at

__all__ = ["Parsed", "ParseError", "parse_booking", "parse_change", "read_message", "calendar_event",
           "detect_language", "clean_title", "strip_subject_prefixes"]

log = logging.getLogger(__name__)

MISSING_PHRASES = {
    "start": "when the conference starts (date and time)",
    "duration": "how long the conference lasts (its end is not after its start)",
    "participants": "how many participants will dial in",
    "title": "a title for the conference (a Subject or a 'Topic:' line)",
}


# Fewer German (or English) marker words than this, and the language is undecided.
UNDECIDED_BELOW = 2


@dataclass(frozen=True, slots=True)
class Parsed:
    request: BookingRequest

    def to_json(self) -> dict:
        r = self.request
        return {
            "start": r.start.isoformat(),
            "end": r.end.isoformat(),
            "duration_minutes": int(r.duration.total_seconds() // 60),
            "participants": r.participants,
            "title": r.title,
            "organizer": r.organizer,
            "invitees": list(r.invitees),
            "language": r.language,
        }


@dataclass(frozen=True, slots=True)
class ParseError:
    error: str
    missing: tuple[str, ...] = ()
    reason: str | None = None
    language: str = "en"
    # True when the mail is neither clearly German nor clearly English (another language,
    # gibberish, an unreadable charset): the refusal is then written in both languages.
    bilingual: bool = False

    def to_json(self) -> dict:
        out: dict = {"error": self.error}
        if self.missing:
            out["missing"] = list(self.missing)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|fwd?|wg|fw|antw|wtr|sv|vs|tr|rv|odp)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*|"
    r"\[(?:extern(?:al)?|ext|spam)\]\s*)+", re.IGNORECASE)
_FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:re|aw)\s*:\s*)*(?:fwd?|wg|fw|tr|wtr)\s*:", re.IGNORECASE)
_TITLE_LINE = re.compile(
    r"^[ \t]*\*?(?:thema|topic|title|titel|betreff der konferenz|name der konferenz|"
    r"conference title|konferenztitel|meeting title)\*?[ \t]*:[ \t]*(\S.*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE)
_ADDRESS = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+(?![\w-])")
_INITIATOR_PAYS = re.compile(
    r"gebührenfrei|gebuehrenfrei|kostenfrei für (?:die )?teilnehmer|kostenlos für (?:die )?teilnehmer|"
    r"übernehme (?:ich )?die (?:kosten|gebühren)|kosten übernehme ich|auf meine kosten|"
    r"initiator zahlt|ich zahle|zahle ich|toll[- ]free|free (?:of charge )?for (?:the )?(?:participants|callers)|"
    r"\bi(?:'ll| will)? pay\b|initiator pays|at my (?:own )?(?:expense|cost)|i(?:'ll| will)? cover the (?:cost|charges)",
    re.IGNORECASE)
_BOOKING_WORDS = re.compile(
    r"konferenz|telko|telefonkonferenz|\bcall\b|meeting|besprechung|termin|buch|\bbook|conference|"
    r"einwahl|dial|teilnehm|particip|reserv|schalte|uhr\b", re.IGNORECASE)


def parse_booking(msg: Message | bytes, *, now: datetime, settings: Settings) -> Parsed | ParseError:
    """Read a booking mail. Never raises: an unexpected failure is a ParseError ("unreadable")."""
    try:
        return _parse(msg, now=now, settings=settings)
    except Exception:  # the exception barrier for one mail: log it, answer politely
        log.exception("parser failed on a mail")
        return ParseError("The mail could not be read.", reason="unreadable")


def _parse(msg: Message | bytes, *, now: datetime, settings: Settings) -> Parsed | ParseError:
    if not isinstance(msg, Message):
        msg = read_message(bytes(msg))
    zone = settings.service.timezone
    now = now if now.tzinfo is not None else now.replace(tzinfo=zone)
    base = (sent_at(msg) or now).astimezone(zone)
    subject = header(msg, "Subject")
    content = extract(msg)
    forwarded = bool(_FORWARD_SUBJECT.match(subject))
    text = "\n".join(t for t in (booking_text(x, forwarded_subject=forwarded) for x in content.texts) if t)
    invitation = next((inv for inv in (read_invitation(c, zone) for c in content.calendars) if inv), None)
    sample = " ".join([subject, text] + ([invitation.summary, invitation.description] if invitation else []))
    lang = detect_language(sample, default=settings.service.default_language)
    de, en, fr = language_scores(sample)
    undecided = max(de, en) < UNDECIDED_BELOW
    own = settings.mail.own_addresses() | delivered_to(msg)
    organizer = sender(msg) or (invitation.organizer if invitation else "")

    def refuse(error: str, reason: str | None = None, missing: tuple[str, ...] = ()) -> ParseError:
        return ParseError(error, missing, reason, lang, bilingual=undecided)

    if not text.strip() and invitation is None:
        if content.unreadable:
            return refuse(f"The mail's text is in a character set I cannot read "
                          f"({', '.join(sorted(set(content.unreadable)))}).", "unreadable")
        if not content.calendars:
            return refuse("The mail has no text I could read a booking from.", "not_a_booking")
    if not organizer:
        return refuse("The mail has no sender address to answer.", "not_a_booking")
    if organizer in own:
        return refuse("The mail comes from the booking service itself.", "not_a_booking")
    if fr > max(de, en) and fr >= 3:
        return ParseError("The mail is not written in German or English, the languages I can "
                          "read.", (), "foreign_language", lang, bilingual=True)
    if invitation is not None:
        # A calendar invitation goes to every attendee at once: its To is the bot only when
        # the bot is its one recipient.
        own = own | _only_to(msg)
        return _from_invitation(invitation, text, subject, organizer, own, lang, now, settings, refuse)
    return _from_text(text, subject, organizer, own, lang, base, now, settings, refuse)


def _from_text(text, subject, organizer, own, lang, base, now, settings, refuse) -> Parsed | ParseError:
    title, text_rest = _title(text, subject)
    count, rest = find_count(text_rest)
    duration, rest = find_duration(rest)
    when = find_when(rest, base, lang)
    if when.day is None or when.start is None:   # the Subject may carry what the body lacks
        clean_subject = _SUBJECT_PREFIX.sub("", subject)
        s_count, s_rest = find_count(clean_subject)
        s_duration, s_rest = find_duration(s_rest)
        s_when = find_when(s_rest, base, lang)
        when = When(when.day or s_when.day, when.start or s_when.start, when.end or s_when.end,
                    when.zone or s_when.zone)
        count, duration = count or s_count, duration or s_duration
    invitees = _invitees(text, organizer, own)
    if count is None and invitees:
        count = 1 + len(invitees)   # the organizer and everyone named
    start = _start(when, base)
    missing = tuple(name for name, absent in (("start", start is None), ("participants", not count),
                                               ("title", not title)) if absent)
    if missing:
        if when.day is None and when.start is None and not count and not _BOOKING_WORDS.search(text + subject):
            return refuse("The mail does not look like a conference booking.", "not_a_booking")
        return refuse(_missing_sentence(missing, when), missing=missing)
    if when.end is not None:   # on the clock the start was written in
        end = datetime.combine(start.date(), when.end, start.tzinfo)
        if elapsed(start, end) <= timedelta(0):
            end = datetime.combine(start.date() + timedelta(days=1), when.end, start.tzinfo)
    else:   # "3 hours" are three real hours, also on the nights the clocks change
        end = utc_add(start, duration or timedelta(minutes=settings.capacity.default_minutes))
    service = settings.service.timezone
    request = BookingRequest(start=start.astimezone(service), end=end.astimezone(service),
                             participants=count, title=title, organizer=organizer,
                             invitees=invitees, language=lang, dial_in_mode=_dial_in_mode(text),
                             written_zone=when.zone)
    return _checked(request, now, settings, refuse)


def _from_invitation(inv: Invitation, text, subject, organizer, own, lang, now, settings,
                     refuse) -> Parsed | ParseError:
    if inv.method in ("CANCEL", "REPLY", "COUNTER", "DECLINECOUNTER", "REFRESH"):
        return refuse(f"The calendar mail is not an invitation (METHOD:{inv.method}); to change or "
                      f"cancel a booking, reply to its confirmation.", "not_a_booking")
    description = booking_text(inv.description)
    title = clean_title(inv.summary or "") or _title(text, subject)[0]
    invitees = tuple(dict.fromkeys(a for a in (inv.organizer, *inv.attendees)
                                   if a and a not in own and a != organizer))
    stated, _ = find_count(text + "\n" + description)
    participants = max(1 + len(invitees), stated or 0)
    if inv.start is None:
        detail = ("The invitation is an all-day event; it does not say when the conference starts."
                  if inv.all_day else "The invitation does not say when the conference starts.")
        return refuse(detail, missing=("start",) + (() if title else ("title",)))
    if not title:
        return refuse(_missing_sentence(("title",), None), missing=("title",))
    end = inv.end or utc_add(inv.start, timedelta(minutes=settings.capacity.default_minutes))
    request = BookingRequest(start=inv.start, end=end, participants=participants, title=title,
                             organizer=organizer, invitees=invitees, language=lang,
                             dial_in_mode=_dial_in_mode(text + "\n" + description),
                             invite_uid=inv.uid, invite_sequence=inv.sequence)
    return _checked(request, now, settings, refuse)


def calendar_event(msg: Message | bytes, settings: Settings) -> Invitation | None:
    """The mail's first readable calendar event (any METHOD), or None. Never raises."""
    try:
        if not isinstance(msg, Message):
            msg = read_message(bytes(msg))
        zone = settings.service.timezone
        return next((inv for inv in (read_invitation(c, zone) for c in extract(msg).calendars)
                     if inv), None)
    except Exception:
        log.exception("calendar part could not be read")
        return None


def _checked(request: BookingRequest, now: datetime, settings: Settings, refuse) -> Parsed | ParseError:
    cap = settings.capacity
    minutes = int(request.duration.total_seconds() // 60)   # real minutes (UTC), not wall clock
    when = _say(request.start)
    if request.duration <= timedelta(0):
        return refuse(_missing_sentence(("duration",), None), missing=("duration",))
    # The same grace as the capacity planner: "now, 10:00" arriving at 10:02 still books.
    if elapsed(now, request.start) < -PAST_GRACE:
        return refuse(f"The conference would start on {when}, which is in the past.", "past")
    if minutes > cap.max_minutes:
        return refuse(f"The conference would last {minutes} minutes; at most {cap.max_minutes} "
                      f"minutes can be booked.", "too_long")
    if request.start > now + timedelta(days=cap.max_days_ahead):
        return refuse(f"The conference would start on {when}; bookings can be made at most "
                      f"{cap.max_days_ahead} days ahead.", "too_far_ahead")
    if request.participants > cap.room_max:
        return refuse(f"The mail asks for {request.participants} participants; a conference holds "
                      f"at most {cap.room_max}.", "too_many_participants")
    return Parsed(request)


def _start(when: When, base: datetime) -> datetime | None:
    """The start on the clock it was written in: the zone the mail named, else the service's."""
    if when.start is None:
        return None
    if when.zone is not None:
        base = base.astimezone(when.zone)
    if when.day is not None:
        return datetime.combine(when.day, when.start, base.tzinfo)
    today = datetime.combine(base.date(), when.start, base.tzinfo)
    # A bare time means today, if still ahead (or only just past: the late-mail grace).
    return today if elapsed(base, today) > -PAST_GRACE else None


TITLE_MAX = 200
# Bidirectional overrides and isolates: they make a title read differently than it is.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def clean_title(text: str) -> str:
    """One line of at most TITLE_MAX characters: every run of whitespace (line breaks,
    U+2028/U+2029, tabs) becomes one space, control and bidi-override characters are dropped.
    A title goes into Subject headers and .ics SUMMARY lines, where a line break is an error."""
    kept = []
    for ch in text:
        if ch.isspace() or unicodedata.category(ch) in ("Zl", "Zp"):
            kept.append(" ")
        elif unicodedata.category(ch) == "Cc" or ch in _BIDI:
            continue
        else:
            kept.append(ch)
    return " ".join("".join(kept).split())[:TITLE_MAX].strip()


def strip_subject_prefixes(subject: str) -> str:
    """The subject without reply/forward prefixes ("Re:", "AW:", "Fwd:", "[extern]" …)."""
    return _SUBJECT_PREFIX.sub("", subject)


def _title(text: str, subject: str) -> tuple[str, str]:
    match = _TITLE_LINE.search(text)
    if match:
        title = clean_title(match.group(1).strip(" *\"'")).strip(" *\"'")
        rest = text[:match.start()] + text[match.end():]
        if title:
            return title, rest
    return clean_title(_SUBJECT_PREFIX.sub("", subject)), text


def _invitees(text: str, organizer: str, own: frozenset[str]) -> tuple[str, ...]:
    found = (a.lower().rstrip(".") for a in _ADDRESS.findall(text))
    return tuple(dict.fromkeys(a for a in found if a != organizer and a not in own))[:100]


def delivered_to(msg: Message) -> frozenset[str]:
    """The mailbox this copy was delivered to: the topmost Delivered-To (added by the final
    delivery, Dovecot's LMTP and most MDAs) and X-Original-To (Postfix). It is the bot under
    whatever alias it was reached. Lower headers are earlier hops (a forwarding mailbox)."""
    out = set()
    for name in ("Delivered-To", "X-Original-To"):
        try:
            values = msg.get_all(name) or []
        except Exception:
            continue
        if values:
            address = email.utils.parseaddr(str(values[0]))[1].strip().lower()
            if "@" in address:
                out.add(address)
    return frozenset(out)


def _only_to(msg: Message) -> frozenset[str]:
    """The To address when it is the mail's one recipient (no Cc, one To address)."""
    try:
        if msg.get("Cc"):
            return frozenset()
        pairs = email.utils.getaddresses([str(v) for v in msg.get_all("To") or []])
    except Exception:
        return frozenset()
    addresses = {a.strip().lower() for _, a in pairs if "@" in a}
    return frozenset(addresses) if len(addresses) == 1 else frozenset()


def _dial_in_mode(text: str) -> DialInMode:
    return DialInMode.INITIATOR_PAYS if _INITIATOR_PAYS.search(text) else DialInMode.ALL_PREMIUM


def _missing_sentence(missing: tuple[str, ...], when: When | None) -> str:
    if missing == ("start",) and when is not None and when.day is not None:
        return "The mail gives a date but no start time for the conference."
    if missing == ("start",) and when is not None and when.start is not None:
        return "The mail gives a time but no date for the conference."
    phrases = [MISSING_PHRASES[m] for m in missing]
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"The mail does not say {listed}."


def _say(moment: datetime) -> str:
    return f"{moment:%A} {moment.day} {moment:%B %Y} at {moment:%H:%M}"


def parse_change(msg: Message | bytes, *, now: datetime, settings: Settings,
                 current: Booking | None = None) -> dict:
    """What a follow-up mail asks to change: any of "start", "end" (aware datetimes) and
    "participants" (int), only the keys the text states. With `current`, a bare time keeps the
    booking's day, a bare day keeps its time, and a new start keeps its length. Never raises."""
    try:
        if not isinstance(msg, Message):
            msg = read_message(bytes(msg))
        zone = settings.service.timezone
        now = now if now.tzinfo is not None else now.replace(tzinfo=zone)
        base = (sent_at(msg) or now).astimezone(zone)
        text = "\n".join(booking_text(t) for t in extract(msg).texts)
        count, rest = find_count(text)
        duration, rest = find_duration(rest)
        when = find_when(rest, base, detect_language(text))
        out: dict = {}
        start = None
        if when.start is not None and (when.day is not None or current is not None):
            written = when.zone or zone   # "change to 15:00 UTC": on the UTC clock
            day = when.day or current.start.astimezone(written).date()
            start = datetime.combine(day, when.start, written).astimezone(zone)
        elif when.day is not None and current is not None:
            start = datetime.combine(when.day, current.start.astimezone(zone).timetz())
        if start is not None:
            out["start"] = start
        anchor = start or (current.start.astimezone(zone) if current else None)
        if anchor is not None:
            if when.end is not None:   # an end time is read on the clock it was written in
                written = when.zone or zone
                end = datetime.combine(anchor.astimezone(written).date(), when.end,
                                       written).astimezone(zone)
                out["end"] = end if elapsed(anchor, end) > timedelta(0) else end + timedelta(days=1)
            elif duration is not None:
                out["end"] = utc_add(anchor, duration)
            elif start is not None and current is not None:
                out["end"] = utc_add(start, elapsed(current.start, current.end))
        if count:
            out["participants"] = count
        return out
    except Exception:
        log.exception("change parser failed on a mail")
        return {}
