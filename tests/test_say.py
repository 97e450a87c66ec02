"""ivr.say: numbers, counts, times and dates as the caller hears them, in German and English."""
from __future__ import annotations

import datetime as dt

import pytest

from ivr import say
from ivr.say import Case, Gender, Noun

CARDINALS = [
    (0, "null", "zero"),
    (1, "eins", "one"),
    (6, "sechs", "six"),
    (7, "sieben", "seven"),
    (11, "elf", "eleven"),
    (12, "zwölf", "twelve"),
    (16, "sechzehn", "sixteen"),
    (17, "siebzehn", "seventeen"),
    (21, "einundzwanzig", "twenty-one"),
    (30, "dreißig", "thirty"),
    (42, "zweiundvierzig", "forty-two"),
    (99, "neunundneunzig", "ninety-nine"),
    (100, "einhundert", "one hundred"),
    (101, "einhunderteins", "one hundred one"),
    (111, "einhundertelf", "one hundred eleven"),
    (600, "sechshundert", "six hundred"),
    (777, "siebenhundertsiebenundsiebzig", "seven hundred seventy-seven"),
    (1000, "eintausend", "one thousand"),
    (1001, "eintausendeins", "one thousand one"),
    (2024, "zweitausendvierundzwanzig", "two thousand twenty-four"),
    (9999, "neuntausendneunhundertneunundneunzig", "nine thousand nine hundred ninety-nine"),
    (21000, "einundzwanzigtausend", "twenty-one thousand"),
    (1_000_001, "eine Million eins", "one million one"),
    (3_000_000, "drei Millionen", "three million"),
]


@pytest.mark.parametrize(("n", "de", "en"), CARDINALS)
def test_cardinals_in_both_languages(n, de, en):
    assert say.cardinal(n, "de") == de
    assert say.cardinal(n, "en") == en


ORDINALS = [
    (1, "erste", "first"), (2, "zweite", "second"), (3, "dritte", "third"), (4, "vierte", "fourth"),
    (5, "fünfte", "fifth"), (7, "siebte", "seventh"), (8, "achte", "eighth"), (9, "neunte", "ninth"),
    (12, "zwölfte", "twelfth"), (19, "neunzehnte", "nineteenth"), (20, "zwanzigste", "twentieth"),
    (21, "einundzwanzigste", "twenty-first"), (33, "dreiunddreißigste", "thirty-third"),
    (100, "einhundertste", "one hundredth"), (103, "einhundertdritte", "one hundred third"),
    (1000, "eintausendste", "one thousandth"),
]


@pytest.mark.parametrize(("n", "de", "en"), ORDINALS)
def test_ordinals_in_both_languages(n, de, en):
    assert say.ordinal(n, "de") == de
    assert say.ordinal(n, "en-US") == en


@pytest.mark.parametrize(("gender", "case", "word"), [
    (Gender.MASCULINE, Case.NOMINATIVE, "dritte"),    # der dritte Teilnehmer
    (Gender.FEMININE, Case.NOMINATIVE, "dritte"),     # die dritte Person
    (Gender.MASCULINE, Case.ACCUSATIVE, "dritten"),   # den dritten Dezember
    (Gender.FEMININE, Case.ACCUSATIVE, "dritte"),     # die dritte Person
    (Gender.NEUTER, Case.ACCUSATIVE, "dritte"),       # das dritte Mal
    (Gender.MASCULINE, Case.DATIVE, "dritten"),       # am dritten Dezember
    (Gender.FEMININE, Case.GENITIVE, "dritten"),      # der dritten Person
])
def test_german_ordinals_follow_gender_and_case(gender, case, word):
    assert say.ordinal(3, "de", gender, case) == word


def test_german_one_before_a_noun_agrees_with_it():
    assert say.cardinal(1, "de", Gender.FEMININE) == "eine"
    assert say.cardinal(1, "de", Gender.MASCULINE, Case.ACCUSATIVE) == "einen"
    assert say.cardinal(1, "de", Gender.MASCULINE, Case.DATIVE) == "einem"
    assert say.cardinal(101, "de", Gender.FEMININE) == "einhunderteine"
    assert say.cardinal(21, "de", Gender.FEMININE) == "einundzwanzig"   # no inflection inside


@pytest.mark.parametrize(("n", "noun", "lang", "case", "words"), [
    (1, Noun.PERSON, "de", Case.NOMINATIVE, "eine Person"),
    (5, Noun.PERSON, "de", Case.NOMINATIVE, "fünf Personen"),
    (0, Noun.PERSON, "de", Case.NOMINATIVE, "keine Personen"),
    (1, Noun.TRY, "de", Case.ACCUSATIVE, "einen Versuch"),
    (2, Noun.TRY, "de", Case.ACCUSATIVE, "zwei Versuche"),
    (1, Noun.PARTICIPANT, "de", Case.NOMINATIVE, "ein Teilnehmer"),
    (12, Noun.PARTICIPANT, "de", Case.NOMINATIVE, "zwölf Teilnehmer"),
    (1, Noun.PERSON, "en", Case.NOMINATIVE, "one person"),
    (5, Noun.PERSON, "en", Case.NOMINATIVE, "five people"),
    (0, Noun.PERSON, "en", Case.NOMINATIVE, "no people"),
    (1, Noun.MINUTE, "en", Case.NOMINATIVE, "one minute"),
    (90, Noun.MINUTE, "en", Case.NOMINATIVE, "ninety minutes"),
])
def test_counts_use_singular_only_for_one(n, noun, lang, case, words):
    assert say.count(n, noun, lang, case) == words


def test_plural_picks_the_agreeing_word():
    assert [say.plural(n, "is", "are") for n in (0, 1, 2)] == ["are", "is", "are"]


@pytest.mark.parametrize(("hh", "mm", "de", "en"), [
    (10, 30, "zehn Uhr dreißig", "ten thirty a.m."),
    (10, 0, "zehn Uhr", "ten a.m."),
    (1, 0, "ein Uhr", "one a.m."),
    (9, 5, "neun Uhr fünf", "nine oh five a.m."),
    (12, 0, "zwölf Uhr", "twelve noon"),
    (0, 0, "null Uhr", "twelve midnight"),
    (0, 15, "null Uhr fünfzehn", "twelve fifteen a.m."),
    (13, 1, "dreizehn Uhr eins", "one oh one p.m."),
    (17, 45, "siebzehn Uhr fünfundvierzig", "five forty-five p.m."),
    (23, 59, "dreiundzwanzig Uhr neunundfünfzig", "eleven fifty-nine p.m."),
])
def test_clock_times(hh, mm, de, en):
    assert say.time_of_day(dt.time(hh, mm), "de") == de
    assert say.time_of_day(dt.time(hh, mm), "en") == en


@pytest.mark.parametrize(("day", "de", "en"), [
    (dt.date(2024, 12, 3), "Dienstag, den dritten Dezember", "Tuesday, December third"),
    (dt.date(2025, 3, 1), "Samstag, den ersten März", "Saturday, March first"),
    (dt.date(2025, 5, 22), "Donnerstag, den zweiundzwanzigsten Mai", "Thursday, May twenty-second"),
    (dt.date(2025, 6, 30), "Montag, den dreißigsten Juni", "Monday, June thirtieth"),
])
def test_dates(day, de, en):
    assert say.date(day, "de") == de
    assert say.date(day, "en") == en


def test_dates_with_the_year():
    assert say.date(dt.date(2024, 12, 3), "de", with_year=True) == \
        "Dienstag, den dritten Dezember zweitausendvierundzwanzig"
    assert say.date(dt.date(2024, 12, 3), "en", with_year=True) == \
        "Tuesday, December third, twenty twenty-four"
    assert say.date(dt.date(2005, 1, 2), "en", with_year=True).endswith("two thousand five")


def test_a_start_moment_is_relative_when_today_is_known():
    start = dt.datetime(2024, 12, 3, 10, 30)
    assert say.when(start, "de", today=dt.date(2024, 12, 3)) == "heute um zehn Uhr dreißig"
    assert say.when(start, "en", today=dt.date(2024, 12, 2)) == "tomorrow at ten thirty a.m."
    assert say.when(start, "de", today=dt.date(2024, 11, 30)) == \
        "Dienstag, den dritten Dezember, um zehn Uhr dreißig"
    assert say.when(start, "en") == "Tuesday, December third, at ten thirty a.m."


def test_unknown_languages_get_digits_for_espeak_to_read():
    assert say.cardinal(42, "fr") == "42"
    assert say.ordinal(3, "fr") == "3."
    assert say.time_of_day(dt.time(9, 5), "fr") == "9:05"


@pytest.mark.parametrize("bad", [-1, 1_000_000_000])
def test_out_of_range_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        say.cardinal(bad, "de")


def test_non_integers_are_refused():
    with pytest.raises(TypeError):
        say.cardinal(True, "en")
    with pytest.raises(TypeError):
        say.count("3", Noun.PERSON, "en")
    with pytest.raises(ValueError):
        say.ordinal(0, "en")


@pytest.mark.parametrize("keys, lang, spoken", [
    ("*6", "de", "Stern sechs"), ("*#", "de", "Stern Raute"), ("*1", "de", "Stern eins"),
    ("*6", "en", "star six"), ("#0", "en-GB", "hash zero"), ("*5", "fr", "* 5"),
])
def test_keys_are_said_as_on_a_phone(keys, lang, spoken):
    assert say.keys(keys, lang) == spoken
