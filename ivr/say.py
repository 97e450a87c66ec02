"""Numbers, counts, times and dates as spoken words, in German and English (pure).

Owns the grammar of saying things: cardinals (0 .. 999 999 999), ordinals with German gender and
case ("der dritte Teilnehmer", "den dritten Dezember"), counts with singular/plural ("eine
Person", "fünf Personen", "one person", "five people"), clock times ("zehn Uhr dreißig", "ten
thirty a.m.") and dates ("Dienstag, den dritten Dezember", "Tuesday, December third").
`ivr.catalog` calls these to fill the `{placeholders}` of prompt texts.

Must not touch: files, clocks (the caller passes `today`), TTS. A language without rules here
gets digits ("3", "10:30"), which espeak-ng then reads in that language's own voice.
"""
from __future__ import annotations

import datetime as dt
import enum


class Gender(enum.Enum):
    MASCULINE = "m"
    FEMININE = "f"
    NEUTER = "n"


class Case(enum.Enum):
    NOMINATIVE = "nom"
    ACCUSATIVE = "acc"
    DATIVE = "dat"
    GENITIVE = "gen"


class Noun(enum.Enum):
    """Things the IVR counts. Values are the names used in prompt placeholders ({x:count,person})."""
    PERSON = "person"
    PARTICIPANT = "participant"
    MINUTE = "minute"
    HOUR = "hour"
    TRY = "try"


# German: (singular, plural, gender); English: (singular, plural)
_DE_NOUNS = {
    Noun.PERSON: ("Person", "Personen", Gender.FEMININE),
    Noun.PARTICIPANT: ("Teilnehmer", "Teilnehmer", Gender.MASCULINE),
    Noun.MINUTE: ("Minute", "Minuten", Gender.FEMININE),
    Noun.HOUR: ("Stunde", "Stunden", Gender.FEMININE),
    Noun.TRY: ("Versuch", "Versuche", Gender.MASCULINE),
}
_EN_NOUNS = {
    Noun.PERSON: ("person", "people"),
    Noun.PARTICIPANT: ("participant", "participants"),
    Noun.MINUTE: ("minute", "minutes"),
    Noun.HOUR: ("hour", "hours"),
    Noun.TRY: ("attempt", "attempts"),
}

_MAX = 999_999_999


def _base(lang: str) -> str:
    return lang.lower().replace("_", "-").split("-")[0]


def _check(n: int, lo: int = 0) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected an int, got {n!r}")
    if not lo <= n <= _MAX:
        raise ValueError(f"{n} is outside {lo}..{_MAX}")


# ---- German ----------------------------------------------------------------------------------

_DE_ONES = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun",
            "zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn",
            "achtzehn", "neunzehn")
_DE_TENS = ("", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig",
            "neunzig")
_DE_ORD_STEM = {1: "erst", 3: "dritt", 7: "siebt", 8: "acht"}
_DE_WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_DE_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
              "Oktober", "November", "Dezember")
# the article-like "ein" before a noun, by gender and case
_DE_EIN = {
    (Gender.MASCULINE, Case.NOMINATIVE): "ein", (Gender.MASCULINE, Case.ACCUSATIVE): "einen",
    (Gender.MASCULINE, Case.DATIVE): "einem", (Gender.MASCULINE, Case.GENITIVE): "eines",
    (Gender.FEMININE, Case.NOMINATIVE): "eine", (Gender.FEMININE, Case.ACCUSATIVE): "eine",
    (Gender.FEMININE, Case.DATIVE): "einer", (Gender.FEMININE, Case.GENITIVE): "einer",
    (Gender.NEUTER, Case.NOMINATIVE): "ein", (Gender.NEUTER, Case.ACCUSATIVE): "ein",
    (Gender.NEUTER, Case.DATIVE): "einem", (Gender.NEUTER, Case.GENITIVE): "eines",
}
_DE_KEINE = {Case.NOMINATIVE: "keine", Case.ACCUSATIVE: "keine", Case.DATIVE: "keinen",
             Case.GENITIVE: "keiner"}


def _de_below_1000(n: int) -> str:
    """German words for 1..999 as a prefix: a final 1 is 'ein' ('einundzwanzig', 'hundertein')."""
    hundreds, rest = divmod(n, 100)
    out = (("ein" if hundreds == 1 else _DE_ONES[hundreds]) + "hundert") if hundreds else ""
    if rest == 0:
        return out
    if rest < 20:
        return out + ("ein" if rest == 1 else _DE_ONES[rest])
    tens, ones = divmod(rest, 10)
    if ones:
        out += ("ein" if ones == 1 else _DE_ONES[ones]) + "und"
    return out + _DE_TENS[tens]


def _de_cardinal(n: int) -> str:
    if n == 0:
        return "null"
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    word = ""
    if thousands:
        word += _de_below_1000(thousands) + "tausend"
    if units:
        word += _de_below_1000(units)
        if units % 100 == 1:        # standing alone, a final one is "eins": "hunderteins"
            word += "s"
    parts = []
    if millions:
        parts.append("eine Million" if millions == 1 else _de_below_1000(millions) + " Millionen")
    if word:
        parts.append(word)
    return " ".join(parts)


def _de_ordinal_stem(n: int) -> str:
    if n < 20:
        return _DE_ORD_STEM.get(n, _DE_ONES[n] + "t")
    if n >= 100 and 0 < n % 100 < 20:
        # "hundertdritte": the head keeps its cardinal form, only the tail becomes ordinal
        return _de_cardinal(n - n % 100) + _de_ordinal_stem(n % 100)
    return _de_cardinal(n) + "st"


def _de_weak_ending(gender: Gender, case: Case) -> str:
    # after the definite article (weak declension): -e in the nominative (and acc. fem./neut.),
    # -en everywhere else
    if case is Case.NOMINATIVE or (case is Case.ACCUSATIVE and gender is not Gender.MASCULINE):
        return "e"
    return "en"


# ---- English ---------------------------------------------------------------------------------

_EN_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
            "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                     "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}
_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")


def _en_below_1000(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_EN_ONES[hundreds], "hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return words


def _en_cardinal(n: int) -> str:
    if n == 0:
        return "zero"
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    words: list[str] = []
    if millions:
        words += _en_below_1000(millions) + ["million"]
    if thousands:
        words += _en_below_1000(thousands) + ["thousand"]
    words += _en_below_1000(units)
    return " ".join(words)


def _en_ordinal(n: int) -> str:
    words = _en_cardinal(n)
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    head, last = words[:cut], words[cut:]
    if last in _EN_ORD_IRREGULAR:
        return head + _EN_ORD_IRREGULAR[last]
    if last.endswith("y"):
        return head + last[:-1] + "ieth"
    return head + last + "th"


# ---- public ----------------------------------------------------------------------------------

def cardinal(n: int, lang: str, gender: Gender | None = None, case: Case = Case.NOMINATIVE) -> str:
    """`n` in words. German with a `gender` inflects a final one before a noun ("eine", "einen")."""
    _check(n)
    match _base(lang):
        case "de":
            if gender is not None and n % 100 == 1:
                head = _de_cardinal(n - 1) if n > 1 else ""
                sep = " " if head.endswith(("Million", "Millionen")) else ""
                return head + sep + _DE_EIN[(gender, case)]
            return _de_cardinal(n)
        case "en":
            return _en_cardinal(n)
        case _:
            return str(n)


def ordinal(n: int, lang: str, gender: Gender = Gender.MASCULINE,
            case: Case = Case.NOMINATIVE) -> str:
    """`n` as an ordinal after a definite article: "dritte"/"dritten", "third"."""
    _check(n, lo=1)
    match _base(lang):
        case "de":
            if n >= 1_000_000:
                raise ValueError(f"no German ordinal words for {n}")
            return _de_ordinal_stem(n) + _de_weak_ending(gender, case)
        case "en":
            return _en_ordinal(n)
        case _:
            return f"{n}."


def count(n: int, noun: Noun, lang: str, case: Case = Case.NOMINATIVE) -> str:
    """A number of things: "eine Person", "fünf Personen", "keine Versuche"; "one person", "no people"."""
    _check(n)
    match _base(lang):
        case "de":
            singular, plural, gender = _DE_NOUNS[noun]
            if n == 0:
                return f"{_DE_KEINE[case]} {plural}"
            return f"{cardinal(n, lang, gender, case)} {singular if n == 1 else plural}"
        case "en":
            singular, plural = _EN_NOUNS[noun]
            if n == 0:
                return f"no {plural}"
            return f"{_en_cardinal(n)} {singular if n == 1 else plural}"
        case _:
            return f"{n} {_EN_NOUNS[noun][0 if n == 1 else 1]}"


def plural(n: int, singular: str, plural_: str) -> str:
    """The word agreeing with `n` ("ist"/"sind", "is"/"are"): singular only for exactly one."""
    _check(n)
    return singular if n == 1 else plural_


_KEY_WORDS = {"de": {"*": "Stern", "#": "Raute"}, "en": {"*": "star", "#": "hash"}}


def keys(sequence: str, lang: str) -> str:
    """Keypad keys as said on the phone: "*6" → "Stern sechs" / "star six", "*#" → "star hash".
    Other languages keep the symbols and digits (espeak-ng reads them in that language)."""
    base = _base(lang)
    words = _KEY_WORDS.get(base)
    if words is None:
        return " ".join(sequence)
    return " ".join(words.get(k) or cardinal(int(k), base) for k in sequence)


def time_of_day(t: dt.time | dt.datetime, lang: str) -> str:
    """A clock time: "zehn Uhr dreißig", "ein Uhr"; "ten thirty a.m.", "ten oh five p.m.", "twelve noon"."""
    hour, minute = t.hour, t.minute
    match _base(lang):
        case "de":
            head = "ein Uhr" if hour == 1 else f"{_de_cardinal(hour)} Uhr"
            return head if minute == 0 else f"{head} {_de_cardinal(minute)}"
        case "en":
            if minute == 0 and hour in (0, 12):
                return "twelve midnight" if hour == 0 else "twelve noon"
            h12 = hour % 12 or 12
            suffix = "a.m." if hour < 12 else "p.m."
            if minute == 0:
                return f"{_en_cardinal(h12)} {suffix}"
            mins = f"oh {_en_cardinal(minute)}" if minute < 10 else _en_cardinal(minute)
            return f"{_en_cardinal(h12)} {mins} {suffix}"
        case _:
            return f"{hour}:{minute:02d}"


def date(d: dt.date, lang: str, with_year: bool = False) -> str:
    """A calendar date: "Dienstag, den dritten Dezember"; "Tuesday, December third"."""
    match _base(lang):
        case "de":
            out = (f"{_DE_WEEKDAYS[d.weekday()]}, den "
                   f"{ordinal(d.day, 'de', Gender.MASCULINE, Case.ACCUSATIVE)} {_DE_MONTHS[d.month - 1]}")
            return f"{out} {_de_cardinal(d.year)}" if with_year else out
        case "en":
            out = f"{_EN_WEEKDAYS[d.weekday()]}, {_EN_MONTHS[d.month - 1]} {_en_ordinal(d.day)}"
            return f"{out}, {_en_year(d.year)}" if with_year else out
        case _:
            return d.isoformat()


def _en_year(year: int) -> str:
    # 2024 → "twenty twenty-four", 2000..2009 → "two thousand five"
    if 2000 <= year <= 2009 or year % 100 == 0 or year >= 10000:
        return _en_cardinal(year)
    high, low = divmod(year, 100)
    return f"{_en_cardinal(high)} {'oh ' + _en_cardinal(low) if low < 10 else _en_cardinal(low)}"


def when(moment: dt.datetime, lang: str, today: dt.date | None = None) -> str:
    """A start moment: "heute um zehn Uhr", "Dienstag, den dritten Dezember, um zehn Uhr dreißig";
    "today at ten a.m.", "Tuesday, December third, at ten thirty a.m.". `today` enables the
    relative words; without it the date is always spoken."""
    day = moment.date()
    relative = None
    if today is not None:
        relative = {0: ("heute", "today"), 1: ("morgen", "tomorrow")}.get((day - today).days)
    match _base(lang):
        case "de":
            head = relative[0] if relative else f"{date(day, lang)},"
            return f"{head} um {time_of_day(moment, lang)}"
        case "en":
            head = relative[1] if relative else f"{date(day, lang)},"
            return f"{head} at {time_of_day(moment, lang)}"
        case _:
            return f"{day.isoformat()} {time_of_day(moment, lang)}"
