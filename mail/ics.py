"""iCalendar (.ics) objects for booking mails (pure), built with the `icalendar` package.

Owns the mapping Booking -> VCALENDAR for the three iTIP methods the bot sends (RFC 5546):
PUBLISH (a plain booking: the bot publishes the event), REPLY (the booking came as a calendar
invitation: the bot, as an attendee, accepts or declines the organizer's event under the
invitation's UID), CANCEL (a published booking was cancelled). Times are written in UTC.
Must not touch mail headers, sockets, files or clocks (`now` is passed in).
"""
from __future__ import annotations

import enum
from datetime import datetime, timezone

import icalendar

from bot.booking.domain import Booking

PRODID = "-//confbot//telephone conferences//EN"


class Method(enum.Enum):
    PUBLISH = "PUBLISH"
    REPLY = "REPLY"
    CANCEL = "CANCEL"


class PartStat(enum.Enum):
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"


def own_uid(booking: Booking, bot_address: str) -> str:
    """The UID of the event the bot publishes for a booking: stable across changes, so a
    later PUBLISH (higher SEQUENCE) or CANCEL updates the same calendar entry."""
    domain = bot_address.rpartition("@")[2] or "confbot"
    return f"{booking.reference.lower()}@{domain}"


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("booking times must be timezone-aware")
    return dt.astimezone(timezone.utc)


def _address(email_address: str, name: str | None = None) -> icalendar.vCalAddress:
    addr = icalendar.vCalAddress(f"mailto:{email_address}")
    if name:
        addr.params["CN"] = name
    return addr


def build(booking: Booking, method: Method, *, bot_address: str, now: datetime,
          location: str, description: str, bot_name: str = "confbot",
          partstat: PartStat = PartStat.ACCEPTED) -> bytes:
    """One VEVENT for `booking` under `method`.

    REPLY needs `booking.invite_uid` (the organizer's event) and answers with the bot as the
    replying ATTENDEE (PARTSTAT `partstat`); PUBLISH and CANCEL use the bot's own UID with the bot
    as ORGANIZER. SEQUENCE is the booking's; DTSTAMP is `now` in UTC."""
    if method is Method.REPLY and not booking.invite_uid:
        raise ValueError("METHOD:REPLY needs the invitation's UID")
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method.value)

    event = icalendar.Event()
    event.add("dtstamp", _utc(now))
    event.add("dtstart", _utc(booking.start))
    event.add("dtend", _utc(booking.end))
    event.add("summary", booking.title)
    # A REPLY answers one version of the organizer's event: its SEQUENCE (RFC 5546 3.2.3);
    # the bot's own events count their own changes.
    event.add("sequence", booking.invite_sequence if method is Method.REPLY else booking.sequence)
    event.add("location", location)
    event.add("description", description)
    if method is Method.REPLY:
        event.add("uid", booking.invite_uid)
        event.add("organizer", _address(booking.organizer))
        attendee = _address(bot_address, bot_name)
        attendee.params["PARTSTAT"] = partstat.value
        event.add("attendee", attendee)
    else:
        event.add("uid", own_uid(booking, bot_address))
        event.add("organizer", _address(bot_address, bot_name))
        if method is Method.CANCEL:
            event.add("status", "CANCELLED")
        else:
            event.add("status", "CONFIRMED")
            event.add("transp", "OPAQUE")
    cal.add_component(event)
    return cal.to_ical()
