"""ivr.catalog: the prompt catalogs load, are complete, fail loudly, and resolve to segments."""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from ivr import catalog
from ivr.catalog import CatalogError, Recording, Text, Tone
from ivr.prompt_ids import PROMPT_PARAMS, PromptId

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"
LANGS = ("de", "en")


@pytest.fixture(scope="module")
def cat():
    return catalog.load(PROMPTS, LANGS)


@pytest.fixture
def tree(tmp_path):
    """A writable copy of the shipped catalogs."""
    for lang in LANGS:
        shutil.copy(PROMPTS / f"{lang}.toml", tmp_path / f"{lang}.toml")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(tree: Path) -> str:
    with pytest.raises(CatalogError) as err:
        catalog.load(tree, LANGS)
    return "\n".join(err.value.problems)


# ---- the shipped catalogs ----------------------------------------------------------------------

def test_shipped_catalogs_cover_every_prompt_in_both_languages(cat):
    for lang in LANGS:
        for prompt in PromptId:
            segments = catalog.resolve(cat, prompt, _sample_params(prompt), lang).segments
            assert segments, (lang, prompt)
            if prompt is not PromptId.BEEP:
                assert all(isinstance(s, Text) and s.text.strip() for s in segments)


def test_every_parameter_is_used_by_every_language(cat):
    for (lang, prompt), template in cat.templates.items():
        used = {p.name for p in template.parts if isinstance(p, catalog.Placeholder)}
        assert used == set(PROMPT_PARAMS.get(prompt, ())), (lang, prompt)


def test_german_and_english_texts_differ(cat):
    same = [p for p in catalog.static_prompts() if p is not PromptId.BEEP
            and p is not PromptId.LANGUAGE_MENU
            and cat.templates[("de", p)].text == cat.templates[("en", p)].text]
    assert same == []


def _sample_params(prompt):
    samples = {"n": 3, "count": 5, "tries_left": 2, "minutes": 5, "number": 2, "seat": 7, "start": dt.datetime(2024, 12, 3, 10, 30),
               "name": "Anna", "inviter": "Bob", "title": "Budget", "keys": "*6"}
    return {k: samples[k] for k in PROMPT_PARAMS.get(prompt, ())}


# ---- resolving ---------------------------------------------------------------------------------

def _text(cat, prompt, params, lang, **kw) -> str:
    (seg,) = catalog.resolve(cat, prompt, params, lang, **kw).segments
    assert isinstance(seg, Text)
    return seg.text


def test_the_third_participant_is_spoken_as_an_ordinal(cat):
    assert _text(cat, PromptId.YOU_ARE_NTH, {"n": 3}, "de") == "Sie sind der dritte Teilnehmer."
    assert _text(cat, PromptId.YOU_ARE_NTH, {"n": 3}, "en") == "You are the third participant."


def test_participant_count_agrees_in_number(cat):
    assert _text(cat, PromptId.PARTICIPANT_COUNT, {"count": 5}, "en") == \
        "There are five people in this conference."
    assert _text(cat, PromptId.PARTICIPANT_COUNT, {"count": 1}, "en") == \
        "There is one person in this conference."
    assert _text(cat, PromptId.PARTICIPANT_COUNT, {"count": 1}, "de") == \
        "In dieser Konferenz ist eine Person."
    assert _text(cat, PromptId.PARTICIPANT_COUNT, {"count": 5}, "de") == \
        "In dieser Konferenz sind fünf Personen."


def test_tries_left_in_the_accusative(cat):
    assert _text(cat, PromptId.PIN_WRONG, {"tries_left": 1}, "de").endswith(
        "Sie haben noch einen Versuch.")
    assert _text(cat, PromptId.PIN_WRONG, (("tries_left", 2),), "en").endswith(
        "You have two attempts left.")


def test_start_time_is_spoken_relative_to_today(cat):
    start = dt.datetime(2024, 12, 3, 10, 30)
    en = _text(cat, PromptId.CONFERENCE_NOT_STARTED, {"start": start}, "en", today=start.date())
    assert "It starts today at ten thirty a.m. Please" in en
    de = _text(cat, PromptId.CONFERENCE_NOT_STARTED, {"start": start}, "de")
    assert "Beginn ist Dienstag, den dritten Dezember, um zehn Uhr dreißig." in de


def test_a_recorded_name_is_spliced_between_texts(cat, tmp_path):
    wav = tmp_path / "name-17.wav"
    res = catalog.resolve(cat, PromptId.JOIN_ANNOUNCE, {"name": wav}, "de")
    assert res.segments == (Recording(str(wav)), Text("ist der Konferenz beigetreten."))
    res = catalog.resolve(cat, PromptId.INVITEE_GREETING, {"inviter": str(wav), "title": "Q3"}, "en")
    assert res.segments == (Text("Hello."), Recording(str(wav)),
                            Text("invites you to the conference call Q3."))


def test_a_text_name_stays_text(cat):
    assert _text(cat, PromptId.LEAVE_ANNOUNCE, {"name": "Anna  Schmidt"}, "en") == \
        "Anna Schmidt has left the conference."


def test_beep_is_a_tone(cat):
    assert catalog.resolve(cat, PromptId.BEEP, (), "de").segments == (Tone(1000, 250),)


def test_an_unknown_language_falls_back_to_the_default(cat):
    res = catalog.resolve(cat, PromptId.GOODBYE, (), "fr")
    assert res.lang == "de" and res.segments == (Text("Auf Wiederhören."),)


def test_wrong_parameters_are_refused(cat):
    with pytest.raises(ValueError, match="missing \\['n'\\]"):
        catalog.resolve(cat, PromptId.YOU_ARE_NTH, {}, "de")
    with pytest.raises(ValueError, match="unexpected \\['x'\\]"):
        catalog.resolve(cat, PromptId.GOODBYE, {"x": 1}, "de")
    with pytest.raises(TypeError, match="'n' must be an int"):
        catalog.resolve(cat, PromptId.YOU_ARE_NTH, {"n": "3"}, "de")
    with pytest.raises(TypeError, match="'start' must be a datetime"):
        catalog.resolve(cat, PromptId.CONFERENCE_NOT_STARTED, {"start": "10:30"}, "de")


# ---- overrides ---------------------------------------------------------------------------------

def test_a_recorded_override_wins_over_the_text(tree):
    (tree / "en").mkdir()
    (tree / "en" / "welcome.wav").write_bytes(b"RIFF")
    cat = catalog.load(tree, LANGS)
    assert catalog.resolve(cat, PromptId.WELCOME, (), "en").segments == \
        (Recording(str(tree / "en" / "welcome.wav")),)
    assert isinstance(catalog.resolve(cat, PromptId.WELCOME, (), "de").segments[0], Text)


def test_an_override_can_replace_the_beep(tree):
    (tree / "de").mkdir()
    (tree / "de" / "beep.wav").write_bytes(b"RIFF")
    cat = catalog.load(tree, LANGS)
    assert catalog.resolve(cat, PromptId.BEEP, (), "de").segments == \
        (Recording(str(tree / "de" / "beep.wav")),)


def test_override_files_must_name_a_static_prompt(tree):
    (tree / "de").mkdir()
    (tree / "de" / "welcom.wav").write_bytes(b"RIFF")
    (tree / "de" / "you_are_nth.wav").write_bytes(b"RIFF")
    problems = _problems(tree)
    assert f"{tree / 'de' / 'welcom.wav'}: 'welcom' is not a prompt id" in problems
    assert "'you_are_nth' has parameters" in problems


# ---- validation --------------------------------------------------------------------------------

def test_a_missing_prompt_names_file_and_key(tree):
    _edit(tree / "en.toml", 'goodbye = "Goodbye."\n', "")
    assert f"{tree / 'en.toml'}: key 'goodbye': missing" in _problems(tree)


def test_an_unknown_prompt_names_file_and_key(tree):
    (tree / "de.toml").write_text((tree / "de.toml").read_text() + 'good_bye = "Tschüss"\n')
    assert f"{tree / 'de.toml'}: key 'good_bye': unknown prompt id" in _problems(tree)


def test_an_unknown_placeholder_names_file_key_and_placeholder(tree):
    _edit(tree / "en.toml", "You are the {n:ordinal} participant.", "You are number {nr}.")
    problems = _problems(tree)
    assert f"{tree / 'en.toml'}: key 'you_are_nth': unknown placeholder {{nr}}" in problems


def test_a_placeholder_in_a_static_prompt_is_unknown(tree):
    _edit(tree / "de.toml", 'goodbye = "Auf Wiederhören."', 'goodbye = "Auf Wiederhören, {name}."')
    assert "key 'goodbye': unknown placeholder {name} (parameters of this prompt: none)" in _problems(tree)


@pytest.mark.parametrize(("new", "why"), [
    ("{n:roman}", "unknown kind 'roman'"),
    ("{n:ordinal,x}", "option 'x' is not valid for ordinal"),
    ("{n:count}", "count needs a noun"),
    ("{n:plural,is}", "plural needs two words"),
    ("{n:when}", "'when' does not fit n, which is a number"),
    ("{n!r}", "conversion '!r'"),
])
def test_bad_placeholder_specs_are_explained(tree, new, why):
    _edit(tree / "en.toml", "the {n:ordinal} participant", f"the {new} participant")
    assert why in _problems(tree)


def test_beep_is_not_text(tree):
    (tree / "en.toml").write_text((tree / "en.toml").read_text() + 'beep = "beep"\n')
    assert "key 'beep': is a generated tone" in _problems(tree)


def test_empty_texts_and_bad_toml_are_refused(tree):
    _edit(tree / "en.toml", 'goodbye = "Goodbye."', 'goodbye = " "')
    _edit(tree / "de.toml", 'goodbye = "Auf Wiederhören."', 'goodbye = "Auf Wiederhören.')
    problems = _problems(tree)
    assert "en.toml: key 'goodbye': must be a non-empty text" in problems
    assert "de.toml: not valid TOML" in problems


def test_a_missing_language_file_is_reported(tree):
    (tree / "en.toml").unlink()
    assert f"{tree / 'en.toml'}: cannot read" in _problems(tree)


def test_all_problems_are_reported_at_once(tree):
    _edit(tree / "en.toml", 'goodbye = "Goodbye."\n', "")
    _edit(tree / "de.toml", 'muted = "', 'mutte = "')
    problems = _problems(tree)
    assert "key 'goodbye': missing" in problems and "key 'mutte': unknown" in problems \
        and "de.toml: key 'muted': missing" in problems


def test_static_prompts_are_those_without_parameters():
    static = catalog.static_prompts()
    assert PromptId.WELCOME in static and PromptId.BEEP in static
    assert not set(static) & set(PROMPT_PARAMS)
    assert len(static) == len(PromptId) - len(PROMPT_PARAMS)


def test_keys_are_spoken_as_on_the_phone(cat):
    de = catalog.resolve(cat, PromptId.KEY_TOGGLE_MUTE, {"keys": "*6"}, "de")
    en = catalog.resolve(cat, PromptId.KEY_COUNT, {"keys": "*#"}, "en")
    assert de.segments[0].text.startswith("Stern sechs:")
    assert en.segments[0].text.startswith("star hash:")
    with pytest.raises(catalog.CatalogError, match="does not fit keys"):
        catalog.parse('key_help = "{keys:cardinal}: help"\n' + "\n".join(
            f'{p.value} = "x"' for p in PromptId if p is not PromptId.KEY_HELP
            and p is not PromptId.BEEP), "en", "t.toml")
