"""Time zones written in a booking text (pure, regex only): "16:00 UTC", "4pm GMT", "10:00Z",
"15:00 +0000", "9 am EST", "16 Uhr MEZ", "16 Uhr UTC", "10:00 London time", "16 Uhr Londoner Zeit".

Owns: finding a zone or offset written right after a clock time (or a time range) and what it
means. Abbreviations name their fixed offset (EST is UTC-5 all year, CEST/MESZ UTC+2, as they are
defined); a place ("London time", "Eastern time", "deutscher Zeit") names the place's zone with
its daylight-saving rules. Only a zone attached to a time counts: "UTC" alone in a signature, a
quoted header's "+0100" or a word such as "Central" elsewhere in the text change nothing.
Must not touch: dates, durations, counts (mail.datetext), booking rules (mail.parse).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Written:
    """A zone the mail named: `tz` to read its times in; `start`/`end`: where the zone's
    words are in the text (blanked by the caller so they cannot read as anything else)."""
    tz: tzinfo
    start: int
    end: int


def _fixed(hours: float, name: str) -> timezone:
    return timezone(timedelta(hours=hours), name)


# Abbreviations people put after a time. Ambiguous ones (IST, CST of China, BST of
# Bangladesh) are read as they are in German/English business mail.
_ABBREVIATIONS: dict[str, tzinfo] = {
    "UTC": timezone.utc, "GMT": _fixed(0, "GMT"), "Z": timezone.utc, "UT": timezone.utc,
    "WET": _fixed(0, "WET"), "WEST": _fixed(1, "WEST"), "BST": _fixed(1, "BST"),
    "CET": _fixed(1, "CET"), "MEZ": _fixed(1, "MEZ"), "CEST": _fixed(2, "CEST"),
    "MESZ": _fixed(2, "MESZ"), "EET": _fixed(2, "EET"), "OEZ": _fixed(2, "OEZ"),
    "EEST": _fixed(3, "EEST"), "OESZ": _fixed(3, "OESZ"), "MSK": _fixed(3, "MSK"),
    "EST": _fixed(-5, "EST"), "EDT": _fixed(-4, "EDT"), "CST": _fixed(-6, "CST"),
    "CDT": _fixed(-5, "CDT"), "MST": _fixed(-7, "MST"), "MDT": _fixed(-6, "MDT"),
    "PST": _fixed(-8, "PST"), "PDT": _fixed(-7, "PDT"), "IST": _fixed(5.5, "IST"),
    "JST": _fixed(9, "JST"), "AEST": _fixed(10, "AEST"), "AEDT": _fixed(11, "AEDT"),
    # The US "time" families follow daylight saving: "9am ET" is New York's wall clock.
    "ET": ZoneInfo("America/New_York"), "CT": ZoneInfo("America/Chicago"),
    "MT": ZoneInfo("America/Denver"), "PT": ZoneInfo("America/Los_Angeles"),
}

# "<place> time" / "Zeit <place>" / "<Ort>er Zeit": a place with its daylight-saving rules.
_PLACES: dict[str, str] = {
    "london": "Europe/London", "londoner": "Europe/London", "uk": "Europe/London",
    "british": "Europe/London", "britischer": "Europe/London", "irish": "Europe/Dublin",
    "dublin": "Europe/Dublin", "lisbon": "Europe/Lisbon", "lissabon": "Europe/Lisbon",
    "berlin": "Europe/Berlin", "berliner": "Europe/Berlin", "german": "Europe/Berlin",
    "deutscher": "Europe/Berlin", "paris": "Europe/Paris", "pariser": "Europe/Paris",
    "french": "Europe/Paris", "vienna": "Europe/Vienna", "wiener": "Europe/Vienna",
    "zurich": "Europe/Zurich", "zürich": "Europe/Zurich", "zürcher": "Europe/Zurich",
    "central european": "Europe/Berlin", "mitteleuropäischer": "Europe/Berlin",
    "athens": "Europe/Athens", "helsinki": "Europe/Helsinki", "moscow": "Europe/Moscow",
    "new york": "America/New_York", "new yorker": "America/New_York",
    "eastern": "America/New_York", "us eastern": "America/New_York",
    "central": "America/Chicago", "chicago": "America/Chicago", "mountain": "America/Denver",
    "denver": "America/Denver", "pacific": "America/Los_Angeles",
    "us pacific": "America/Los_Angeles", "los angeles": "America/Los_Angeles",
    "san francisco": "America/Los_Angeles", "toronto": "America/Toronto",
    "india": "Asia/Kolkata", "indian": "Asia/Kolkata", "tokyo": "Asia/Tokyo",
    "japan": "Asia/Tokyo", "singapore": "Asia/Singapore", "sydney": "Australia/Sydney",
    "utc": "UTC", "gmt": "UTC",
}
_ANY_CASE = frozenset({"utc", "gmt", "cet", "cest", "mez", "mesz"})
_PLACE = "|".join(sorted((re.escape(p) for p in _PLACES), key=len, reverse=True))
_ABBR = "|".join(sorted((a for a in _ABBREVIATIONS if a != "Z"), key=len, reverse=True))

# A clock time: "16:00", "16.00", "16 Uhr", "4pm", "4 p.m.", "16h"; the zone follows it.
_CLOCK = r"\d{1,2}(?:[:.]\d{2})?(?::\d{2})?(?:\s*(?:uhr|h|a\.?m\.?|p\.?m\.?))?"
_OPEN = r"[ \t]*\(?[ \t]*"
# After UTC/GMT any offset ("UTC+2", "GMT -05:00"); alone only the four-digit form of mail
# headers ("+0000", "-0500") or "+01:00": "10:00-12:00" and "10 - 12 Uhr" are ranges.
_OFFSET = (r"(?:(?:UTC|GMT|UT)[ \t]*([+\-\u2212])[ \t]*(\d{1,2})(?::?(\d{2}))?"
           r"|([+\-\u2212])(\d{2})(\d{2})|(\+)(\d{2}):(\d{2}))(?![\d:])")
_ZONE_AFTER_TIME = re.compile(
    rf"(?<![\d:.])(?:{_CLOCK})(?:{_OPEN}(?:"
    rf"(?P<offset>{_OFFSET})"                                     # +0000, UTC+2, GMT-05:00
    rf"|(?P<abbr>\b(?:{_ABBR})\b)"                                # UTC, CET, MESZ, EST, PT
    rf"|(?P<place>\b(?:{_PLACE}))[ \t]+(?:time|zeit)\b"           # London time, deutscher Zeit
    rf"|(?:time|zeit)[ \t]+(?:in[ \t]+)?(?P<place2>{_PLACE})\b"   # Zeit Berlin, time in London
    rf")|(?P<zulu>(?<=\d)Z\b))", re.IGNORECASE)


def find_zone(text: str) -> Written | None:
    """The first zone written right after a clock time in `text`, or None."""
    for match in _ZONE_AFTER_TIME.finditer(text):
        tz = _meaning(match)
        if tz is not None:
            name = next(g for g in ("offset", "abbr", "place", "place2", "zulu") if match.group(g))
            start = match.start(name)
            end = match.end()
            return Written(tz, start, end)
    return None


def _meaning(match: re.Match) -> tzinfo | None:
    if match.group("zulu"):
        return timezone.utc
    if match.group("abbr"):
        word = match.group("abbr")
        # Lower-case "ist", "est", "et", "pt" are words ("um 10 Uhr ist …"): only the
        # unmistakable ones count in lower case.
        if word != word.upper() and word.lower() not in _ANY_CASE:
            return None
        return _ABBREVIATIONS.get(word.upper())
    place = match.group("place") or match.group("place2")
    if place:
        return ZoneInfo(_PLACES[" ".join(place.lower().split())])
    groups = re.fullmatch(_OFFSET, match.group("offset"), re.IGNORECASE).groups()
    sign, hours, minutes = next(groups[i:i + 3] for i in (0, 3, 6) if groups[i])
    hours_i, minutes_i = int(hours), int(minutes or 0)
    if hours_i > 14 or minutes_i > 59:
        return None
    delta = timedelta(hours=hours_i, minutes=minutes_i) * (1 if sign == "+" else -1)
    if delta == timedelta(0):
        return timezone.utc
    return timezone(delta)
