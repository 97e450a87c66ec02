"""German/English wording of when, how long and how many (pure, regex only).

Owns: finding the participant count, the duration and the date/time (absolute, weekday and
relative) in a booking text, and guessing the language. Counts and durations are found first
and blanked out, so "um 10 Uhr für 8 Personen" cannot read 8 as a time; the date search then
runs on what is left. Relative words resolve against `base` (the mail's Date in the service
zone) — this module never reads the clock.
Must not touch: MIME, booking rules (mail.parse), calendars (mail.invite).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from mail.zones import find_zone

_NUMBER_WORDS = {
    "ein": 1, "eine": 1, "einen": 1, "einer": 1, "eins": 1, "one": 1, "a": 1, "an": 1,
    "zwei": 2, "two": 2, "drei": 3, "three": 3, "vier": 4, "four": 4, "fünf": 5, "fuenf": 5,
    "five": 5, "sechs": 6, "six": 6, "sieben": 7, "seven": 7, "acht": 8, "eight": 8,
    "neun": 9, "nine": 9, "zehn": 10, "ten": 10, "elf": 11, "eleven": 11, "zwölf": 12,
    "zwoelf": 12, "twelve": 12, "fünfzehn": 15, "fifteen": 15, "zwanzig": 20, "twenty": 20,
    "dreißig": 30, "thirty": 30, "vierzig": 40, "forty": 40, "fünfzig": 50, "fifty": 50,
}
_WORD = "|".join(sorted((w for w in _NUMBER_WORDS if len(w) > 2), key=len, reverse=True))
_NUM = rf"(\d{{1,4}}|{_WORD})"


def _number(token: str) -> int | None:
    token = token.lower()
    return int(token) if token.isdigit() else _NUMBER_WORDS.get(token)


def _blank(text: str, match: re.Match) -> str:
    """Replace a match by a neutral separator of the same length (positions stay valid)."""
    return text[:match.start()] + " ;" + " " * (match.end() - match.start() - 2) + text[match.end():]


# --- language ----------------------------------------------------------------------------------

_DE_WORDS = frozenset(
    "der die das und ist nicht bitte ich wir für um uhr morgen mit eine einen ein zu am im "
    "konferenz telefonkonferenz teilnehmer personen stunde stunden minuten hallo grüße gruß "
    "nächsten nächste dienstag mittwoch donnerstag freitag montag sonntag samstag buchen "
    "möchte würde gerne danke vielen heute übermorgen von bis sind auf den dem des thema".split())
_EN_WORDS = frozenset(
    "the and is not please i we for at tomorrow with a an to on in of conference call "
    "participants people attendees hour hours minutes hi hello regards next tuesday wednesday "
    "thursday friday monday sunday saturday book would like thanks today from until are "
    "topic title this our my you be will".split())
_FR_WORDS = frozenset(
    "le la les et est je nous pour avec une un de des du bonjour merci réserver réunion "
    "demain heures personnes participants cordialement voudrais conférence semaine prochain "
    "mardi jeudi vendredi lundi mercredi".split())


def language_scores(text: str) -> tuple[int, int, int]:
    words = re.findall(r"[a-zäöüßéèàç']+", text.lower())
    de = sum(w in _DE_WORDS for w in words) + 2 * len(re.findall(r"[äöüß]", text.lower()))
    en = sum(w in _EN_WORDS for w in words)
    fr = sum(w in _FR_WORDS for w in words) + len(re.findall(r"[éèàç]", text.lower()))
    return de, en, fr


def detect_language(text: str, default: str = "en") -> str:
    """'de' or 'en', by counting common words (umlauts count for German)."""
    de, en, _ = language_scores(text)
    if de == en:
        return default if default in ("de", "en") else "en"
    return "de" if de > en else "en"


# --- participant count -------------------------------------------------------------------------

_PEOPLE = (r"(?:personen|person|teilnehmer(?:innen|n|:innen|\*innen|_innen)?|teilnehmende[n]?|tn|"
           r"leute|leitungen|anrufer(?:innen)?|einwahlen|gäste|participants?|people|persons|"
           r"attendees?|callers?|guests|lines|dial-?ins)")
_COUNT_PATTERNS = (
    re.compile(rf"\b(?:ca\.?\s*|etwa\s+|about\s+|around\s+|approx\.?\s*|up to\s+|bis zu\s+|"
               rf"max(?:imal|\.)?\s*)?{_NUM}(?:\s*(?:-|bis|to|or|oder)\s*{_NUM})?\s*{_PEOPLE}\b",
               re.IGNORECASE),
    re.compile(rf"\b(?:anzahl(?: der)? (?:teilnehmer(?:innen)?|personen)|teilnehmer(?:zahl|anzahl)?|"
               rf"teilnehmende|participants|number of (?:participants|people|callers|lines)|"
               rf"attendees|personen|people|headcount)\s*[:=]\s*(?:ca\.?\s*|about\s+)?{_NUM}\b(?!\s*[:.]\d)",
               re.IGNORECASE),
    re.compile(rf"\b(?:wir sind(?: zu)?|we(?:'ll| will)? be|we are|there will be)\s+{_NUM}\b(?!\s*[:.]?\d|\s*(?:uhr|am|pm))",
               re.IGNORECASE),
)


def find_count(text: str) -> tuple[int | None, str]:
    """The participant count (the upper bound of "8-10 Personen") and the text without it."""
    found: int | None = None
    for pattern in _COUNT_PATTERNS:
        for match in pattern.finditer(text):
            values = [_number(g) for g in match.groups() if g]
            values = [v for v in values if v is not None]
            if not values:
                continue
            if found is None:
                found = max(values)
            text = _blank(text, match)
    return found, text


# --- duration ----------------------------------------------------------------------------------

_FRACTION_PHRASES = (
    (re.compile(r"\b(?:anderthalb|eineinhalb|einundeinhalb|one and a half|an hour and a half|"
                r"one hour and a half|1 1/2)\s*(?:stunden?|std\.?|hours?)?\b", re.IGNORECASE), 90),
    (re.compile(r"\b(?:eine |a )?dreiviertel ?stunde|three[- ]quarters of an hour\b", re.IGNORECASE), 45),
    (re.compile(r"\b(?:eine |a )?viertel ?stunde|(?:a )?quarter of an hour|quarter hour\b", re.IGNORECASE), 15),
    (re.compile(r"\b(?:eine )?halbe stunde|half an hour|a half hour|half-hour|30-minute\b", re.IGNORECASE), 30),
)
_HOURS_UNIT = r"(?:stunden|stunde|std\.?|h|hours?|hrs?\.?)"
_MINUTES_UNIT = r"(?:minuten|min\.?|minutes|mins?)"
_DURATION_PATTERNS = (
    re.compile(rf"\b(\d{{1,2}}(?:[.,]\d{{1,2}})?|{_WORD})\s*-?\s*{_HOURS_UNIT}(?![a-zäöü\d])"
               rf"(?:\s*(?:und|and|,)?\s*(\d{{1,2}})\s*{_MINUTES_UNIT}(?![a-zäöü]))?", re.IGNORECASE),
    re.compile(rf"\b(\d{{1,3}}|{_WORD})\s*-?\s*{_MINUTES_UNIT}(?![a-zäöü])", re.IGNORECASE),
    re.compile(r"\b(\d{1,2})h(\d{2})\b", re.IGNORECASE),
    re.compile(r"\b(?:dauer|duration|länge|length)\s*[:=]?\s*(?:ca\.?\s*|about\s+)?(\d{1,2}):(\d{2})\b",
               re.IGNORECASE),
)
# "in 2 Stunden" / "vor 3 Stunden" / "um 10h" are points in time, not durations.
_NOT_DURATION_BEFORE = re.compile(r"(?:\bin|\bvor|\bago|\bum|\bat|\bab|\bvon|\bfrom|\bbis|\bto|\buntil|@)\s*$",
                                  re.IGNORECASE)


def find_duration(text: str) -> tuple[timedelta | None, str]:
    found: timedelta | None = None
    for pattern, minutes in _FRACTION_PHRASES:
        for match in pattern.finditer(text):
            found = found or timedelta(minutes=minutes)
            text = _blank(text, match)
    for index, pattern in enumerate(_DURATION_PATTERNS):
        for match in pattern.finditer(text):
            if index < 2 and _NOT_DURATION_BEFORE.search(text[max(0, match.start() - 8):match.start()]):
                continue
            minutes = _duration_minutes(index, match.groups())
            if minutes is None:
                continue
            found = found or timedelta(minutes=minutes)
            text = _blank(text, match)
    return found, text


def _duration_minutes(index: int, groups: tuple) -> int | None:
    if index == 0:
        amount = groups[0].replace(",", ".")
        hours = float(amount) if amount[0].isdigit() else _NUMBER_WORDS.get(amount.lower())
        if hours is None or hours > 24:
            return None
        return round(hours * 60) + (int(groups[1]) if groups[1] else 0)
    if index == 1:
        value = _number(groups[0])
        return value if value else None
    return int(groups[0]) * 60 + int(groups[1])


# --- dates and times ---------------------------------------------------------------------------

_MONTHS = {
    "januar": 1, "jänner": 1, "january": 1, "jan": 1, "februar": 2, "february": 2, "feb": 2,
    "märz": 3, "maerz": 3, "march": 3, "mär": 3, "mar": 3, "mrz": 3, "april": 4, "apr": 4,
    "mai": 5, "may": 5, "juni": 6, "june": 6, "jun": 6, "juli": 7, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9, "oktober": 10, "october": 10,
    "okt": 10, "oct": 10, "november": 11, "nov": 11, "dezember": 12, "december": 12, "dez": 12,
    "dec": 12,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAYS = {
    "montag": 0, "monday": 0, "dienstag": 1, "tuesday": 1, "mittwoch": 2, "wednesday": 2,
    "donnerstag": 3, "thursday": 3, "freitag": 4, "friday": 4, "samstag": 5, "sonnabend": 5,
    "saturday": 5, "sonntag": 6, "sunday": 6,
}
_WEEKDAY = "|".join(_WEEKDAYS)

_DATE_PATTERNS = (
    ("iso", re.compile(r"\b(20\d\d)-(\d{1,2})-(\d{1,2})\b")),
    ("dmy", re.compile(r"(?<![\d.])(\d{1,2})\.\s?(\d{1,2})\.(?:\s?(\d{4}|\d{2})(?![\d:]))?")),
    ("slash", re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])")),
    ("d_month", re.compile(rf"(?<![\d.])(\d{{1,2}})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?({_MONTH})\b\.?"
                           rf"(?:,?\s*(\d{{4}})\b)?", re.IGNORECASE)),
    ("month_d", re.compile(rf"\b({_MONTH})\b\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*[:.]\d|\s*(?:uhr|am|pm|h)\b)"
                           rf"(?:,?\s*(\d{{4}})\b)?", re.IGNORECASE)),
)
_RELATIVE_DAY = re.compile(
    r"\b(übermorgen|uebermorgen|day after tomorrow|day before yesterday|vorgestern|gestern|"
    r"yesterday|last night|morgen|tomorrow|heute|today|tonight)\b", re.IGNORECASE)
# Relative days in the past resolve to that past day, so the parser refuses them as "past"
# instead of reading "gestern um 10" as "um 10" (today).
_DAY_OFFSETS = {"übermorgen": 2, "uebermorgen": 2, "day after tomorrow": 2, "morgen": 1,
                "tomorrow": 1, "gestern": -1, "yesterday": -1, "last night": -1,
                "vorgestern": -2, "day before yesterday": -2}
_GREETING_MORGEN = re.compile(r"\bguten\s*$|\b(?:heute|gestern|montag|dienstag|mittwoch|donnerstag|"
                              r"freitag|samstag|sonntag)\s*$", re.IGNORECASE)
_IN_DAYS = re.compile(rf"\bin\s+{_NUM}\s+(tagen|tag|days?|wochen|woche|weeks?)\b", re.IGNORECASE)
_DAYS_AGO = re.compile(rf"\bvor\s+{_NUM}\s+(tagen|tag|wochen|woche)\b|"
                       rf"\b{_NUM}\s+(days?|weeks?)\s+ago\b", re.IGNORECASE)
_PAST_QUALIFIER = ("letzt", "vergangen", "vorige", "last", "past")
_WEEKDAY_PHRASE = re.compile(
    rf"\b(?:(übernächste[nm]?|uebernaechste[nm]?|nächste[nm]?|naechste[nm]?|kommende[nm]?|"
    rf"diese[nm]?|letzte[nmr]?|vergangene[nmr]?|vorige[nmr]?|next|this|coming|the following|"
    rf"last|past)\s+)?(?:(woche|week)\s+(?:am\s+|on\s+)?)?({_WEEKDAY})\b"
    rf"(?:\s+(?:nächste|kommende|next)\s+(woche|week))?", re.IGNORECASE)

# German "am" is "on": "um 3 am Mittwoch" is not 3 a.m.
_T = (r"(\d{1,2})(?:[:.](\d{2}))?\s*(uhr|h\b|a\.?m\.?(?!\s+(?:" + _WEEKDAY + r"|\d|den\b|;))|p\.?m\.?)?")
_DAYPART_PM = r"(?:\s*(nachmittags|abends|am nachmittag|am abend|in the afternoon|in the evening))?"
_RANGE = re.compile(
    rf"(?:\b(von|from|between|zwischen|ab)\s+)?(?<![\d:.,/]){_T}\s*(?:-|–|bis|to|until|till|and|und)\s*"
    rf"(?:um\s+)?{_T}(?![\d]|\s*(?:personen|teilnehmer|people|participants|minuten|minutes|min))",
    re.IGNORECASE)
_SINGLE = re.compile(
    rf"(?:\b(um|at|ab|gegen|around|start(?:s|ing)? at|beginn(?:end)?|beginning at|@|"
    rf"uhrzeit|zeit|time|start|beginn|begin)\s*:?\s*)?(?<![\d:.,/+]){_T}(?:\s*uhr\s+(\d{{2}}))?{_DAYPART_PM}"
    rf"(?![\d]|\s*[.:/]\d)", re.IGNORECASE)
_END_LABEL = re.compile(rf"\b(?:ende|end|endet|ends|bis|until|till)\s*:?\s*(?:um\s+)?{_T}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class When:
    day: date | None
    start: time | None
    end: time | None
    # A zone or offset written after the time ("16:00 UTC", "16 Uhr MESZ"): the day and the
    # times are on that zone's clock. None: the service zone's.
    zone: tzinfo | None = None


def find_when(text: str, base: datetime, lang: str = "en") -> When:
    """The first date and the first start (and end) time in `text`; relative words and year-less
    dates resolve against `base`, the mail's sending time in the service zone (or in the zone
    the text names after a time, `mail.zones`)."""
    written = find_zone(text)
    zone = None
    if written is not None:
        zone = written.tz
        text = text[:written.start] + " " * (written.end - written.start) + text[written.end:]
        base = base.astimezone(zone)
    text = re.sub(r"[\u2013\u2014\u2212]", "-", text)
    day, text = _find_day(text, base.date(), lang)
    start, end = _find_times(text)
    return When(day, start, end, zone if start is not None else None)


def _find_day(text: str, today: date, lang: str) -> tuple[date | None, str]:
    candidates: list[tuple[int, int, date, bool]] = []  # (start, end, day, absolute)
    for kind, pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            day = _absolute(kind, match.groups(), today, lang)
            if day is not None:
                candidates.append((match.start(), match.end(), day, True))
    for match in _RELATIVE_DAY.finditer(text):
        word = match.group(1).lower()
        if word == "morgen" and (_GREETING_MORGEN.search(text[max(0, match.start() - 12):match.start()])
                                 or text[match.start()] == "M" and not _starts_sentence(text, match.start())):
            continue  # "Guten Morgen", "heute Morgen", "Dienstag Morgen" are mornings
        offset = _DAY_OFFSETS.get(" ".join(word.split()), 0)
        candidates.append((match.start(), match.end(), today + timedelta(days=offset), False))
    for match in _IN_DAYS.finditer(text):
        amount = _number(match.group(1)) or 0
        unit = 7 if match.group(2).lower().startswith(("w",)) else 1
        candidates.append((match.start(), match.end(), today + timedelta(days=amount * unit), False))
    for match in _DAYS_AGO.finditer(text):
        amount = _number(match.group(1) or match.group(3)) or 0
        unit = 7 if (match.group(2) or match.group(4)).lower().startswith("w") else 1
        candidates.append((match.start(), match.end(), today - timedelta(days=amount * unit), False))
    for match in _WEEKDAY_PHRASE.finditer(text):
        candidates.append((match.start(), match.end(), _weekday(match, today), False))
    if not candidates:
        return None, text
    absolute_starts = [c[0] for c in candidates if c[3]]
    candidates.sort(key=lambda c: c[0])
    for start, end, day, absolute in candidates:
        # "Dienstag, 2.12." / "Dienstag, den 9.12." — the weekday only decorates the explicit date that follows it.
        if not absolute and any(0 <= a - end <= 8 for a in absolute_starts):
            continue
        for s, e, _, _ in candidates:   # blank every date so its digits cannot read as a time
            text = text[:s] + " ;" + " " * (e - s - 2) + text[e:]
        return day, text
    return None, text


def _starts_sentence(text: str, index: int) -> bool:
    before = text[:index].rstrip()
    return not before or before[-1] in ".!?:\n;,(" or before.lower().endswith((" ab", " bis"))


def _absolute(kind: str, groups: tuple, today: date, lang: str) -> date | None:
    year: int | None
    if kind == "iso":
        year, month, day = int(groups[0]), int(groups[1]), int(groups[2])
    elif kind == "dmy":
        day, month = int(groups[0]), int(groups[1])
        year = int(groups[2]) if groups[2] else None
    elif kind == "slash":
        first, second, year = int(groups[0]), int(groups[1]), int(groups[2])
        us = lang == "en" and second <= 31 and first <= 12
        month, day = (first, second) if (us and second > 12) or (us and first <= 12 and second <= 12) \
            else (second, first)
    elif kind == "d_month":
        day, month = int(groups[0]), _MONTHS[groups[1].lower()]
        year = int(groups[2]) if groups[2] else None
    else:
        month, day = _MONTHS[groups[0].lower()], int(groups[1])
        year = int(groups[2]) if groups[2] else None
    if year is not None and year < 100:
        year += 2000
    try:
        if year is not None:
            return date(year, month, day)
        guess = date(today.year, month, day)
        # A year-less date that has passed means next year ("3.1." written in December).
        return guess if guess >= today - timedelta(days=1) else date(today.year + 1, month, day)
    except ValueError:
        return None


def _weekday(match: re.Match, today: date) -> date:
    qualifier = (match.group(1) or "").lower()
    week_first = match.group(2) or match.group(4)
    target = _WEEKDAYS[match.group(3).lower()]
    if qualifier.startswith(_PAST_QUALIFIER):   # "letzten Montag", "last Monday"
        return today - timedelta(days=(today.weekday() - target) % 7 or 7)
    ahead = (target - today.weekday()) % 7 or 7
    if qualifier.startswith(("über", "ueber")):
        ahead += 7
    if week_first:   # "nächste Woche Dienstag": the Tuesday of next calendar week
        monday_next = today + timedelta(days=7 - today.weekday())
        return monday_next + timedelta(days=target + (7 if qualifier.startswith(("über", "ueber")) else 0))
    return today + timedelta(days=ahead)


def _find_times(text: str) -> tuple[time | None, time | None]:
    range_match = next((m for m in _RANGE.finditer(text) if _range_is_time(m)), None)
    single = next((m for m in _SINGLE.finditer(text) if _single_is_time(m)), None)
    if range_match and (single is None or range_match.start() <= single.start() + 4):
        g = range_match.groups()
        end = _clock(g[4], g[5], g[6], None)
        start = _clock(g[1], g[2], g[3] or (g[6] if g[6] and g[6].lower()[0] in "ap" else None), None)
        if start and end and start > end and g[3] is None and start.hour < 12 and end.hour >= 12:
            start = None
        if start and end:
            if g[6] and g[6].lower()[0] == "p" and not g[3] and start.hour < 12 and start.hour + 12 <= end.hour:
                start = start.replace(hour=start.hour + 12)
            return start, end
    if single is None:
        return None, None
    g = single.groups()
    start = _clock(g[1], g[2] or g[4], g[3], g[5])
    end = None
    if start is not None:
        for match in _END_LABEL.finditer(text, single.end()):
            m = match.groups()
            end = _clock(m[0], m[1], m[2], None)
            if end is not None and m[2] is None and not m[1] and end <= start and end.hour < 12:
                end = end.replace(hour=end.hour + 12) if end.hour + 12 > start.hour else end
            break
    return start, end


def _range_is_time(match: re.Match) -> bool:
    g = match.groups()
    marked = bool(g[0] or g[2] or g[3] or g[5] or g[6])
    return marked and _clock(g[1], g[2], g[3], None) is not None and _clock(g[4], g[5], g[6], None) is not None


def _single_is_time(match: re.Match) -> bool:
    g = match.groups()
    lead, minutes, suffix = g[0], g[2], g[3]
    if not (lead or suffix or (minutes and ":" in match.group(0))):
        return False
    if lead and lead.lower() in ("uhrzeit", "zeit", "time", "start", "beginn", "begin") and not (minutes or suffix):
        return ":" in match.group(0)
    return _clock(g[1], minutes or g[4], suffix, g[5]) is not None


def _clock(hour_text: str | None, minute_text: str | None, suffix: str | None,
           daypart: str | None) -> time | None:
    if hour_text is None:
        return None
    hour, minute = int(hour_text), int(minute_text) if minute_text else 0
    marker = (suffix or "").lower().replace(".", "")
    if marker in ("am", "pm"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if marker == "pm" else 0)
    elif daypart and hour < 12:
        hour += 12
    elif not minute_text and marker != "uhr" and 1 <= hour <= 6:
        hour += 12   # "at 3" / "um 3" in a business mail means the afternoon
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)
