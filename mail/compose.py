"""Reply mails (pure): the texts in German and English and the MIME messages that carry them.

Owns every word the bot writes by mail, the date/time wording in the service time zone, who
dials which number (B8), and the reply headers that keep mail loops away (Auto-Submitted,
In-Reply-To, References; RFC 3834). The .ics bodies come from `mail.ics`.
Must not decide anything (that is `mail.agent`), and must not touch sockets, files or clocks:
`now` is passed in. Replies always go to the given address, never to a Reply-To header.
"""
from __future__ import annotations

import enum
from datetime import datetime, timedelta, tzinfo
from typing import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from bot.booking.domain import Booking, DialInMode
from bot.booking.ledger import Slot
from bot.config.settings import Settings, Tariff
from mail import ics
from mail.mime import header, sent_at
from mail.texts import DAYS, MISSING_LABELS, MONTHS, PARSE_REASONS, RULE_TEXTS, TEXTS


class Problem(enum.Enum):
    """Why a mail gets a refusal instead of a booking; each has a text per language."""
    NOT_ALLOWED = "not_allowed"
    NOBODY_ALLOWED = "nobody_allowed"
    UNKNOWN_REFERENCE = "unknown_reference"
    NOT_ORGANIZER = "not_organizer"
    ALREADY_CANCELLED = "already_cancelled"
    NOTHING_TO_CHANGE = "nothing_to_change"
    RATE_LIMITED = "rate_limited"
    UNKNOWN_INVITATION = "unknown_invitation"   # a calendar CANCEL for an event never booked
    ERROR = "error"


def language(code: str | None) -> str:
    """The reply language: German for "de…", English for everything else."""
    return "de" if (code or "").lower().startswith("de") else "en"


# --- wording of dates, times and dial-in numbers ---------------------------------------------

def day_text(dt: datetime, lang: str) -> str:
    """`Tuesday, 14 January 2025` / `Dienstag, 14. Januar 2025`."""
    day, month = DAYS[lang][dt.weekday()], MONTHS[lang][dt.month - 1]
    if lang == "de":
        return f"{day}, {dt.day}. {month} {dt.year}"
    return f"{day}, {dt.day} {month} {dt.year}"


def span_text(start: datetime, end: datetime, tz: tzinfo, lang: str) -> str:
    """A window in the service time zone with the date written out, e.g.
    `Tuesday, 14 January 2025, 10:00–11:00 (CET)`; a window across midnight names both days."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    uhr = " Uhr" if lang == "de" else ""
    if s.date() == e.date():
        return f"{day_text(s, lang)}, {s:%H:%M}–{e:%H:%M}{uhr} ({s.tzname()})"
    return (f"{day_text(s, lang)}, {s:%H:%M}{uhr} ({s.tzname()}) – "
            f"{day_text(e, lang)}, {e:%H:%M}{uhr} ({e.tzname()})")


def _number(settings: Settings, tariff: Tariff, lang: str) -> str:
    dialin = settings.dialin_for(tariff)
    return dialin.number if dialin else TEXTS[lang]["no_number"]


def participant_number(booking: Booking, settings: Settings, lang: str) -> str:
    """The number the participants (not the organizer) dial: toll-free when the organizer pays."""
    tariff = Tariff.TOLLFREE if booking.dial_in_mode is DialInMode.INITIATOR_PAYS else Tariff.PREMIUM
    return _number(settings, tariff, lang)


def dialin_lines(booking: Booking, settings: Settings, lang: str, *, organizer: bool) -> list[str]:
    """Who dials what (B8). The organizer is told both numbers when they differ."""
    t = TEXTS[lang]
    if not organizer:
        return [f"{t['dial_in']}: {participant_number(booking, settings, lang)}"]
    premium = _number(settings, Tariff.PREMIUM, lang)
    if booking.dial_in_mode is DialInMode.ALL_PREMIUM:
        return [f"{t['dial_in_everyone']}: {premium}"]
    return [f"{t['dial_in_organizer']}: {premium}",
            f"{t['dial_in_participants']}: {participant_number(booking, settings, lang)}"]


def written_span(start: datetime, end: datetime, service: tzinfo, written: tzinfo | None,
                 lang: str) -> str | None:
    """The window on the clock the mail used ("16:00 UTC"), when it differs from the service
    zone's at the start or the end; else None."""
    if written is None:
        return None
    if all(moment.astimezone(written).utcoffset() == moment.astimezone(service).utcoffset()
           for moment in (start, end)):
        return None
    return span_text(start, end, written, lang)


def _details(booking: Booking, settings: Settings, lang: str, *, organizer: bool,
             written_zone: tzinfo | None = None) -> list[str]:
    t = TEXTS[lang]
    tz = settings.service.timezone
    lines = [f"{t['reference']}: {booking.reference}",
             f"{t['title']}: {booking.title}",
             f"{t['when']}: {span_text(booking.start, booking.end, tz, lang)}"]
    written = written_span(booking.start, booking.end, tz, written_zone, lang)
    if written:
        lines.append(f"{t['as_written']}: {written}")
    lines += [f"{t['participants']}: {booking.participants}",
              ""]
    lines += dialin_lines(booking, settings, lang, organizer=organizer)
    if organizer:
        lines += [f"{t['participant_pin']}: {booking.participant_pin}",
                  f"{t['moderator_pin']}: {booking.moderator_pin} {t['moderator_note']}"]
    else:
        lines.append(f"{t['pin']}: {booking.participant_pin}")
    return lines


def _calendar(booking: Booking, settings: Settings, method: ics.Method, now: datetime,
              partstat: ics.PartStat = ics.PartStat.ACCEPTED, *, organizer: bool = False) -> bytes:
    """The event text carries the participant PIN only (.ics files get forwarded) and the
    number its reader dials: the organizer's own calendar entry the premium number (B8: when
    the organizer pays, only the others dial toll-free), everyone else's the participants'."""
    lang = language(booking.language)
    number = (_number(settings, Tariff.PREMIUM, lang) if organizer
              else participant_number(booking, settings, lang))
    t = TEXTS[lang]
    location = f"{t['phone']} {number}, {t['pin']} {booking.participant_pin}"
    description = "\n".join([f"{t['reference']}: {booking.reference}",
                             f"{t['dial_in']}: {number}",
                             f"{t['pin']}: {booking.participant_pin}"])
    return ics.build(booking, method, bot_address=settings.mail.address, now=now,
                     location=location, description=description,
                     bot_name=settings.service.name, partstat=partstat)


def confirmation_method(booking: Booking) -> ics.Method:
    """REPLY to the organizer's own event when the booking came as an invitation, else PUBLISH."""
    return ics.Method.REPLY if booking.invite_uid else ics.Method.PUBLISH


# --- the message envelope ---------------------------------------------------------------------

def _message(settings: Settings, *, to: str, subject: str, body: list[str], now: datetime,
             lang: str, original: EmailMessage | None = None, auto: str = "auto-replied",
             calendar: tuple[bytes, ics.Method] | None = None,
             second: tuple[str, list[str]] | None = None) -> EmailMessage:
    """`second`: (language, body) of the same text in a second language, after a rule."""
    msg = EmailMessage()
    address = settings.mail.address
    msg["From"] = formataddr((settings.service.name, address))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or "confbot")
    if original is not None:
        parent = (original.get("Message-ID") or "").strip()
        references = " ".join((original.get("References") or "").split())
        if parent:
            msg["In-Reply-To"] = parent
            references = f"{references} {parent}".strip()
        if references:
            msg["References"] = references
    msg["Auto-Submitted"] = auto          # RFC 3834: never answered by well-behaved robots
    msg["X-Auto-Response-Suppress"] = "All"  # asks Exchange not to send out-of-office notes
    parts = [(lang, body)] + ([second] if second else [])
    text = "\n\n----------------------------------------\n\n".join(
        "\n".join([TEXTS[code]["greeting"], "", *lines, "",
                   TEXTS[code]["signature"].format(name=settings.service.name)])
        for code, lines in parts)
    msg.set_content(text + "\n")
    if calendar is not None:
        data, method = calendar
        text = data.decode("utf-8")
        msg.add_attachment(text, subtype="calendar", params={"method": method.value},
                           cte="7bit" if text.isascii() else "quoted-printable",
                           filename="cancel.ics" if method is ics.Method.CANCEL else "invite.ics")
    # After the body: set_content drops Content-* headers.
    msg["Content-Language"] = ", ".join(code for code, _ in parts)
    return msg


def _re(original: EmailMessage | None, lang: str) -> str:
    subject = header(original, "Subject") if original is not None else ""
    if not subject:
        return TEXTS[lang]["default_subject"]
    return subject if subject.lower().startswith(("re:", "aw:")) else f"Re: {subject}"


def _tagged(booking: Booking, kind: str, lang: str) -> str:
    """Subjects carry the reference so that replies come back as follow-ups. The title is
    made one line here too: a booking stored before titles were cleaned must not make the
    Subject header fail."""
    return f"{TEXTS[lang][kind]}: {one_line(booking.title)} [{booking.reference}]"


def one_line(text: str) -> str:
    """Header-safe: whitespace (incl. U+2028/2029) collapsed, control characters dropped."""
    return " ".join("".join(" " if ch.isspace() else ch for ch in text
                            if ch.isspace() or ch.isprintable()).split())


# --- the mails ----------------------------------------------------------------------------------

def confirmation(booking: Booking, settings: Settings, *, to: str, original: EmailMessage | None,
                 now: datetime, lang: str | None = None, changed: bool = False,
                 not_invited: Sequence[str] = (),
                 written_zone: tzinfo | None = None) -> EmailMessage:
    """To the organizer: everything, both PINs, and the .ics (REPLY or PUBLISH).
    `not_invited`: addresses the mail named but the bot did not write to (over the cap).
    `written_zone`: the zone the mail wrote its times in; shown too when it differs."""
    lang = language(lang or booking.language)
    t = TEXTS[lang]
    body = [t["changed_intro" if changed else "confirm_intro"], "",
            *_details(booking, settings, lang, organizer=True, written_zone=written_zone)]
    if not_invited:
        limit = min(booking.participants - 1, settings.mail.max_invitees)
        body += ["", t["not_invited"].format(limit=max(limit, 0)) + ":",
                 *(f"  - {address}" for address in not_invited)]
    body += ["", t["followup_hint"]]
    method = confirmation_method(booking)
    return _message(settings, to=to, original=original, now=now, lang=lang, body=body,
                    subject=_tagged(booking, "changed_subject" if changed else "confirm_subject", lang),
                    calendar=(_calendar(booking, settings, method, now, organizer=True), method))


def invitee_mail(booking: Booking, invitee: str, settings: Settings, *, now: datetime,
                 changed: bool = False) -> EmailMessage:
    """To one invitee: the participants' number and the participant PIN only (B5)."""
    lang = language(booking.language)
    t = TEXTS[lang]
    intro = t["invite_changed_intro" if changed else "invite_intro"].format(organizer=booking.organizer)
    body = [intro, "", *_details(booking, settings, lang, organizer=False)]
    return _message(settings, to=invitee, now=now, lang=lang, body=body, auto="auto-generated",
                    subject=_tagged(booking, "invite_subject", lang),
                    calendar=(_calendar(booking, settings, ics.Method.PUBLISH, now), ics.Method.PUBLISH))


def cancellation(booking: Booking, settings: Settings, *, to: str, original: EmailMessage | None,
                 now: datetime, lang: str | None = None) -> EmailMessage:
    """To the organizer. An invitation-based booking declines the organizer's own event (a
    CANCEL may only come from an event's organizer); a published one is cancelled."""
    lang = language(lang or booking.language)
    t = TEXTS[lang]
    when = span_text(booking.start, booking.end, settings.service.timezone, lang)
    body = [t["cancel_intro"].format(reference=booking.reference, title=booking.title, when=when)]
    if booking.invite_uid:
        cal = (_calendar(booking, settings, ics.Method.REPLY, now, ics.PartStat.DECLINED,
                         organizer=True), ics.Method.REPLY)
    else:
        cal = (_calendar(booking, settings, ics.Method.CANCEL, now, organizer=True),
               ics.Method.CANCEL)
    return _message(settings, to=to, original=original, now=now, lang=lang, body=body,
                    subject=_tagged(booking, "cancel_subject", lang), calendar=cal)


def cancellation_notice(booking: Booking, invitee: str, settings: Settings, *,
                        now: datetime, removed: bool = False) -> EmailMessage:
    """To one invitee: the conference is cancelled, or (`removed`) goes on without them (an
    updated invitation no longer lists them). Either way their calendar entry is cancelled."""
    lang = language(booking.language)
    t = TEXTS[lang]
    when = span_text(booking.start, booking.end, settings.service.timezone, lang)
    intro = t["uninvited_intro" if removed else "cancel_invitee_intro"]
    body = [intro.format(organizer=booking.organizer, title=booking.title, when=when)]
    return _message(settings, to=invitee, now=now, lang=lang, body=body, auto="auto-generated",
                    subject=_tagged(booking, "cancel_subject", lang),
                    calendar=(_calendar(booking, settings, ics.Method.CANCEL, now), ics.Method.CANCEL))


def status(booking: Booking, settings: Settings, *, to: str, original: EmailMessage | None,
           now: datetime, lang: str | None = None,
           note: tuple[str, dict] | None = None) -> EmailMessage:
    """The booking as it stands. `note`: (text key, placeholders) of a sentence put first
    (a replayed invitation: "nothing was changed")."""
    lang = language(lang or booking.language)
    t = TEXTS[lang]
    state = t["state_active"] if booking.active else t["state_cancelled"]
    body = [t[note[0]].format(reference=booking.reference, **note[1]), ""] if note else []
    body += [f"{t['status']}: {state}", "", *_details(booking, settings, lang, organizer=True)]
    if booking.invitees:
        body += ["", f"{t['invitees']}: {', '.join(booking.invitees)}"]
    if booking.active:
        body += ["", t["followup_hint"]]
    return _message(settings, to=to, original=original, now=now, lang=lang, body=body,
                    subject=_tagged(booking, "status_subject", lang))


def refusal(problem: Problem, settings: Settings, *, to: str, original: EmailMessage | None,
            now: datetime, lang: str, **facts: object) -> EmailMessage:
    """A short refusal; `facts` fill the text's placeholders (sender, reference, limit)."""
    lang = language(lang)
    text = TEXTS[lang][problem.value].format(limit=settings.mail.rate_limit_per_hour, **facts)
    return _message(settings, to=to, original=original, now=now, lang=lang, body=[text],
                    subject=_re(original, lang))


def refuse_missing(settings: Settings, *, to: str, original: EmailMessage | None, now: datetime,
                   lang: str, missing: tuple[str, ...], error: str = "",
                   reason: str | None = None, bilingual: bool = False,
                   kept: Booking | None = None) -> EmailMessage:
    """The booking mail could not become a request (`mail.parse.ParseError`). English replies
    quote the parser's exact sentence; German ones name each missing item and the broken rule
    in German, and fall back to the parser's sentence only for what they cannot say.
    `bilingual` (a mail in neither language): the whole text in German, then in English."""
    lang = language(lang)
    example = example_day(original, now, settings.service.timezone)
    if bilingual:
        blocks = [_missing_body(settings, other, missing, error, reason, example)
                  + _kept(kept, settings, other) for other in ("de", "en")]
        return _message(settings, to=to, original=original, now=now, lang="de", body=blocks[0],
                        subject=_re(original, "en"), second=("en", blocks[1]))
    return _message(settings, to=to, original=original, now=now, lang=lang,
                    body=_missing_body(settings, lang, missing, error, reason, example)
                    + _kept(kept, settings, lang), subject=_re(original, lang))


def example_day(original: EmailMessage | None, now: datetime, tz: tzinfo) -> str:
    """The date in the reply's example: a week after the mail was written (or after `now`,
    whichever is later), so the example could be booked as it stands ("14.01.2025" was in
    the past for everyone after that day)."""
    sent = sent_at(original) if original is not None else None
    base = max(now, sent) if sent is not None else now
    return f"{(base + timedelta(days=7)).astimezone(tz):%d.%m.%Y}"


def _kept(booking: Booking | None, settings: Settings, lang: str) -> list[str]:
    """After a refused change: the booking stays as it was."""
    if booking is None:
        return []
    when = span_text(booking.start, booking.end, settings.service.timezone, lang)
    return ["", TEXTS[lang]["kept"].format(reference=booking.reference, when=when,
                                           participants=booking.participants)]


def _missing_body(settings: Settings, lang: str, missing: tuple[str, ...], error: str,
                  reason: str | None, example: str) -> list[str]:
    t = TEXTS[lang]
    cap = settings.capacity
    lines = []
    if lang == "en" and error:
        lines.append(error)
    else:
        lines += [MISSING_LABELS[lang].get(item, item) for item in missing]
        template = PARSE_REASONS[lang].get(reason or "")
        if template:
            lines.append(template.format(max_minutes=cap.max_minutes, days=cap.max_days_ahead,
                                         room_max=cap.room_max))
        if not lines and error:
            lines.append(error)
    if lang == "en" and reason == "foreign_language":
        lines.append(PARSE_REASONS[lang][reason])
    return [t["missing_intro"], *(f"  - {line}" for line in lines), "", t["example"].format(date=example)]


def refuse_full(settings: Settings, *, to: str, original: EmailMessage | None, now: datetime,
                lang: str, start: datetime, end: datetime, participants: int, reason: str,
                free_lines: int, proposals: tuple[Slot, ...],
                kept: Booking | None = None) -> EmailMessage:
    """B3: the slot is full; list the nearest free slots of the same length."""
    lang = language(lang)
    t = TEXTS[lang]
    tz = settings.service.timezone
    key = "full_room_size" if reason == "room_size" else "full_lines"
    body = [t[key].format(when=span_text(start, end, tz, lang), free=max(free_lines, 0),
                          participants=participants, room_max=settings.capacity.room_max), ""]
    if proposals:
        body.append(t["proposals"])
        body += [f"  - {span_text(p.start, p.end, tz, lang)}" for p in proposals]
    else:
        body.append(t["no_proposals"])
    body += _kept(kept, settings, lang)
    return _message(settings, to=to, original=original, now=now, lang=lang, body=body,
                    subject=_re(original, lang))


def refuse_rule(settings: Settings, *, to: str, original: EmailMessage | None, now: datetime,
                lang: str, reason: str, detail: str, start: datetime, end: datetime,
                participants: int, kept: Booking | None = None) -> EmailMessage:
    """The request broke a booking rule (`bot.booking.ledger.Refused`); say which, with the limit."""
    lang = language(lang)
    cap = settings.capacity
    template = RULE_TEXTS[lang].get(reason)
    tz = settings.service.timezone
    text = template.format(
        when=span_text(start, end, tz, lang), minutes=int((end - start).total_seconds() // 60),
        max_minutes=cap.max_minutes, days=cap.max_days_ahead, room_max=cap.room_max,
        participants=participants) if template else detail
    return _message(settings, to=to, original=original, now=now, lang=lang,
                    body=[TEXTS[lang]["rule_intro"], "", text, *_kept(kept, settings, lang)],
                    subject=_re(original, lang))
