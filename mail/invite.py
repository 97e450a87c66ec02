"""Calendar invitations (pure): a text/calendar payload → the facts of its event.

Owns: reading METHOD, UID, SEQUENCE, SUMMARY, DESCRIPTION, DTSTART/DTEND/DURATION (with VTIMEZONE, Windows
zone names such as "W. Europe Standard Time", "(UTC+01:00) …" names, UTC 'Z' times and floating
times), ORGANIZER and ATTENDEE (a single value or a list; rooms and resources left out).
Must not touch: MIME walking (mail.mime), booking rules and the bot's address (mail.parse).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

import icalendar


@dataclass(frozen=True, slots=True)
class Invitation:
    method: str                      # "REQUEST", "PUBLISH", "CANCEL", … ("" when absent)
    uid: str | None
    summary: str
    description: str
    start: datetime | None           # aware, in the service zone; None for all-day or missing
    end: datetime | None
    organizer: str                   # lower-cased address, '' when absent
    attendees: tuple[str, ...]       # lower-cased addresses, people only, in order, no repeats
    all_day: bool = False
    sequence: int = 0                # SEQUENCE (RFC 5545 3.8.7.4): bumped by each update


def read_invitation(payload: bytes, zone: tzinfo) -> Invitation | None:
    """The first (non-override) VEVENT of the calendar, or None if there is none or it is broken."""
    try:
        calendar = icalendar.Calendar.from_ical(payload)
        events = [c for c in calendar.walk("VEVENT")]
    except Exception:
        return None
    if not events:
        return None
    event = next((e for e in events if e.get("RECURRENCE-ID") is None), events[0])
    try:
        return _invitation(calendar, event, zone)
    except Exception:
        return None


def _invitation(calendar, event, zone: tzinfo) -> Invitation:
    start_raw = _when(event, "DTSTART", zone)
    all_day = isinstance(start_raw, date) and not isinstance(start_raw, datetime)
    start = start_raw if isinstance(start_raw, datetime) else None
    end: datetime | None = None
    end_raw = _when(event, "DTEND", zone)
    if isinstance(end_raw, datetime):
        end = end_raw
    elif start is not None and event.get("DURATION") is not None:
        try:
            duration = event.get("DURATION").dt
            if isinstance(duration, timedelta):
                end = start + duration
        except Exception:
            end = None
    uid = _text(event.get("UID")) or None
    return Invitation(
        method=_text(calendar.get("METHOD")).upper(),
        uid=uid,
        summary=_text(event.get("SUMMARY")),
        description=_text(event.get("DESCRIPTION")),
        start=start,
        end=end,
        organizer=_address(event.get("ORGANIZER")),
        attendees=_attendees(event.get("ATTENDEE")),
        all_day=all_day,
        sequence=_sequence(event.get("SEQUENCE")),
    )


def _sequence(value) -> int:
    """SEQUENCE as a non-negative integer; absent or garbage is 0 (RFC 5545's default)."""
    try:
        number = int(str(value if not isinstance(value, list) else value[0]).strip())
    except (TypeError, ValueError):
        return 0
    return max(0, min(number, 2**31 - 1))


def _when(event, name: str, zone: tzinfo) -> datetime | date | None:
    prop = event.get(name)
    if prop is None:
        return None
    try:
        value = prop.dt
    except Exception:
        return None
    if not isinstance(value, datetime):
        return value if isinstance(value, date) else None
    if value.tzinfo is None or value.utcoffset() is None:
        tzid = str(prop.params.get("TZID", "")) if hasattr(prop, "params") else ""
        value = value.replace(tzinfo=_offset_from_name(tzid) or zone)
    return value.astimezone(zone)


def _offset_from_name(tzid: str) -> tzinfo | None:
    """Outlook sometimes names a zone only by its display text, "(UTC+01:00) Amsterdam, …"."""
    match = re.search(r"(?:UTC|GMT)\s*([+-])(\d{1,2}):?(\d{2})?", tzid)
    if not match:
        return None
    sign = 1 if match.group(1) == "+" else -1
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    return timezone(sign * timedelta(minutes=minutes))


def _attendees(value) -> tuple[str, ...]:
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    seen: list[str] = []
    for item in values:
        params = getattr(item, "params", {}) or {}
        if str(params.get("CUTYPE", "INDIVIDUAL")).upper() in ("ROOM", "RESOURCE"):
            continue
        if str(params.get("ROLE", "")).upper() == "NON-PARTICIPANT":
            continue
        address = _address(item)
        if address and address not in seen:
            seen.append(address)
    return tuple(seen)


def _address(value) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    text = re.sub(r"^mailto:", "", text, flags=re.IGNORECASE).strip().lower()
    return text if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", text) else ""


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return " ".join(str(value).split()) if "\n" not in str(value) else str(value).strip()
