"""Prompt catalogs (pure): `prompts/<lang>.toml` → validated templates; (prompt, params, lang) → segments.

Owns the catalog format (prompt id → text with `{param:kind,options}` placeholders, see the
header of prompts/de.toml), its validation at load (every problem collected, each naming the file
and the key), the recorded overrides `prompts/<lang>/<id>.wav`, and `resolve`, which turns a
`Play(prompt, params)` into the segments to play, in the order of STYLE lesson 7: a recorded
override wins; else the text, with a recorded caller name spliced in as a WAV; `beep` is a tone.

Must not touch: audio, TTS, the clock (`today` is passed in), or anything but reading the
catalog files and listing the override folders at load time.
"""
from __future__ import annotations

import datetime as dt
import enum
import os
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ivr import say
from ivr.prompt_ids import PROMPT_PARAMS, PromptId


class Kind(enum.Enum):
    """How a placeholder's value is spoken ({n:ordinal} → ORDINAL)."""
    TEXT = "text"
    CARDINAL = "cardinal"
    ORDINAL = "ordinal"
    COUNT = "count"
    PLURAL = "plural"
    TIME = "time"
    DATE = "date"
    WHEN = "when"
    KEYS = "keys"            # "*6" → "star six" / "Stern sechs"


class ParamType(enum.Enum):
    NUMBER = "a number"
    MOMENT = "a date/time"
    TEXT = "text or a recorded WAV"
    KEYS = "keys on the keypad"


# the value type of each fixed parameter name (ivr.prompt_ids.PROMPT_PARAMS says which prompt has which)
PARAM_TYPES: Mapping[str, ParamType] = MappingProxyType({
    "n": ParamType.NUMBER, "count": ParamType.NUMBER, "tries_left": ParamType.NUMBER,
    "minutes": ParamType.NUMBER, "number": ParamType.NUMBER, "seat": ParamType.NUMBER,
    "start": ParamType.MOMENT, "name": ParamType.TEXT, "inviter": ParamType.TEXT,
    "title": ParamType.TEXT, "keys": ParamType.KEYS,
})
_KINDS_FOR = {
    ParamType.NUMBER: {Kind.TEXT, Kind.CARDINAL, Kind.ORDINAL, Kind.COUNT, Kind.PLURAL},
    ParamType.MOMENT: {Kind.TIME, Kind.DATE, Kind.WHEN},
    ParamType.TEXT: {Kind.TEXT},
    ParamType.KEYS: {Kind.KEYS},
}
_GENDERS = {g.value: g for g in say.Gender}
_CASES = {c.value: c for c in say.Case}
_NOUNS = {n.value: n for n in say.Noun}
_TEXT_LIMIT = 120       # a title from a booking mail is read out, not a whole paragraph


# ---- values --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Text:
    """Words for the TTS."""
    text: str


@dataclass(frozen=True, slots=True)
class Recording:
    """A WAV file to splice in as it is (an override or a caller's recorded name)."""
    path: str


@dataclass(frozen=True, slots=True)
class Tone:
    hz: int
    ms: int


Segment = Text | Recording | Tone

# prompts that are tones, not text (no catalog entry; a recorded override still wins)
TONES: Mapping[PromptId, Tone] = MappingProxyType({PromptId.BEEP: Tone(hz=1000, ms=250)})


@dataclass(frozen=True, slots=True)
class Resolved:
    prompt: PromptId
    lang: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    kind: Kind = Kind.TEXT
    gender: say.Gender | None = None      # None: cardinals in counting form ("eins")
    case: say.Case = say.Case.NOMINATIVE
    noun: say.Noun | None = None
    words: tuple[str, str] = ("", "")     # PLURAL: (singular word, plural word)


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    parts: tuple[str | Placeholder, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    languages: tuple[str, ...]
    default_language: str
    templates: Mapping[tuple[str, PromptId], Template]
    overrides: Mapping[tuple[str, PromptId], str]     # (lang, prompt) → WAV path


class CatalogError(ValueError):
    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__("prompt catalog invalid:\n  " + "\n  ".join(self.problems))


def params_of(prompt: PromptId) -> frozenset[str]:
    return PROMPT_PARAMS.get(prompt, frozenset())


def static_prompts() -> tuple[PromptId, ...]:
    """Prompts without parameters: rendered ahead of time by `ivr.speech.render.render_all`."""
    return tuple(p for p in PromptId if not params_of(p))


# ---- parsing and validation ------------------------------------------------------------------

def _placeholder(field: str, spec: str, conversion: str | None, prompt: PromptId) -> Placeholder:
    """One `{name:kind,opt,...}`; raises ValueError with the reason."""
    if conversion:
        raise ValueError(f"conversion '!{conversion}' in {{{field}}} is not supported")
    allowed = params_of(prompt)
    if field not in allowed:
        known = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"unknown placeholder {{{field}}} (parameters of this prompt: {known})")
    ptype = PARAM_TYPES.get(field, ParamType.TEXT)
    default = "keys" if ptype is ParamType.KEYS else "text"
    kind_name, *opts = [s.strip() for s in spec.split(",")] if spec else [default]
    try:
        kind = Kind(kind_name)
    except ValueError:
        raise ValueError(f"unknown kind '{kind_name}' in {{{field}:{spec}}} "
                         f"(kinds: {', '.join(k.value for k in Kind)})") from None
    if kind not in _KINDS_FOR[ptype]:
        raise ValueError(f"{{{field}:{spec}}}: '{kind.value}' does not fit {field}, which is {ptype.value}")
    if kind is Kind.PLURAL:
        if len(opts) != 2 or not all(opts):
            raise ValueError(f"{{{field}:{spec}}}: plural needs two words, e.g. {{{field}:plural,is,are}}")
        return Placeholder(field, kind, words=(opts[0], opts[1]))
    fields: dict[str, object] = {}
    for opt in opts:
        if kind in (Kind.CARDINAL, Kind.ORDINAL) and opt in _GENDERS:
            fields["gender"] = _GENDERS[opt]
        elif kind in (Kind.CARDINAL, Kind.ORDINAL, Kind.COUNT) and opt in _CASES:
            fields["case"] = _CASES[opt]
        elif kind is Kind.COUNT and opt in _NOUNS:
            fields["noun"] = _NOUNS[opt]
        else:
            raise ValueError(f"{{{field}:{spec}}}: option '{opt}' is not valid for {kind.value}")
    if kind is Kind.COUNT and "noun" not in fields:
        raise ValueError(f"{{{field}:{spec}}}: count needs a noun ({', '.join(_NOUNS)})")
    return Placeholder(field, kind, **fields)


def _template(text: str, prompt: PromptId) -> Template:
    parts: list[str | Placeholder] = []
    for literal, field, spec, conversion in string.Formatter().parse(text):
        if literal:
            parts.append(literal)
        if field is not None:
            parts.append(_placeholder(field, spec or "", conversion, prompt))
    return Template(text, tuple(parts))


def parse(text: str, lang: str, source: str) -> dict[PromptId, Template]:
    """One catalog file's text → templates; CatalogError lists every problem as 'source: key: why'."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError([f"{source}: not valid TOML: {exc}"]) from None
    problems: list[str] = []
    out: dict[PromptId, Template] = {}
    ids = {p.value: p for p in PromptId}
    for key, value in data.items():
        prompt = ids.get(key)
        if prompt is None:
            problems.append(f"{source}: key '{key}': unknown prompt id")
        elif prompt in TONES:
            problems.append(f"{source}: key '{key}': is a generated tone, not text; remove it "
                            f"(record prompts/{lang}/{key}.wav to replace the tone)")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{source}: key '{key}': must be a non-empty text")
        else:
            try:
                out[prompt] = _template(value, prompt)
            except ValueError as exc:
                problems.append(f"{source}: key '{key}': {exc}")
    for prompt in PromptId:
        if prompt not in TONES and prompt.value not in data:
            problems.append(f"{source}: key '{prompt.value}': missing")
    if problems:
        raise CatalogError(problems)
    return out


def _overrides(folder: Path, lang: str) -> tuple[dict[PromptId, str], list[str]]:
    found: dict[PromptId, str] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    ids = {p.value: p for p in PromptId}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".wav":
            continue
        prompt = ids.get(path.stem)
        if prompt is None:
            problems.append(f"{path}: '{path.stem}' is not a prompt id")
        elif params_of(prompt):
            problems.append(f"{path}: '{path.stem}' has parameters and cannot be a recording")
        else:
            found[prompt] = str(path)
    return found, problems


def load(prompts_dir: str | os.PathLike, languages: Iterable[str],
         default_language: str | None = None) -> Catalog:
    """Read `<dir>/<lang>.toml` and the overrides in `<dir>/<lang>/` for every language."""
    root = Path(prompts_dir)
    langs = tuple(languages)
    if not langs:
        raise CatalogError([f"{root}: no languages configured"])
    default = default_language or langs[0]
    if default not in langs:
        raise CatalogError([f"default language '{default}' is not one of {list(langs)}"])
    problems: list[str] = []
    templates: dict[tuple[str, PromptId], Template] = {}
    overrides: dict[tuple[str, PromptId], str] = {}
    for lang in langs:
        path = root / f"{lang}.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{path}: cannot read: {exc.strerror or exc}")
            continue
        try:
            templates.update({(lang, p): t for p, t in parse(text, lang, str(path)).items()})
        except CatalogError as exc:
            problems.extend(exc.problems)
        found, bad = _overrides(root / lang, lang)
        overrides.update({(lang, p): f for p, f in found.items()})
        problems.extend(bad)
    if problems:
        raise CatalogError(problems)
    return Catalog(langs, default, MappingProxyType(templates), MappingProxyType(overrides))


# ---- resolving -------------------------------------------------------------------------------

def _is_recording(value: object) -> bool:
    return isinstance(value, os.PathLike) or (isinstance(value, str) and value.lower().endswith(".wav"))


def _number(value: object, prompt: PromptId, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{prompt.value}: parameter '{name}' must be an int, got {value!r}")
    return value


def _spoken(ph: Placeholder, value: object, lang: str, prompt: PromptId,
            today: dt.date | None) -> str:
    match ph.kind:
        case Kind.TEXT:
            return " ".join(str(value).split())[:_TEXT_LIMIT]
        case Kind.CARDINAL:
            return say.cardinal(_number(value, prompt, ph.name), lang, ph.gender, ph.case)
        case Kind.ORDINAL:
            return say.ordinal(_number(value, prompt, ph.name), lang,
                               ph.gender or say.Gender.MASCULINE, ph.case)
        case Kind.COUNT:
            assert ph.noun is not None
            return say.count(_number(value, prompt, ph.name), ph.noun, lang, ph.case)
        case Kind.PLURAL:
            return say.plural(_number(value, prompt, ph.name), *ph.words)
        case Kind.KEYS:
            return say.keys(str(value), lang)
    if not isinstance(value, (dt.date, dt.time)):
        raise TypeError(f"{prompt.value}: parameter '{ph.name}' must be a datetime, got {value!r}")
    match ph.kind:
        case Kind.TIME:
            if not isinstance(value, (dt.datetime, dt.time)):
                raise TypeError(f"{prompt.value}: parameter '{ph.name}' must carry a time")
            return say.time_of_day(value, lang)
        case Kind.DATE:
            return say.date(value if not isinstance(value, dt.datetime) else value.date(), lang)
        case _:
            if not isinstance(value, dt.datetime):
                raise TypeError(f"{prompt.value}: parameter '{ph.name}' must be a datetime")
            return say.when(value, lang, today)


def _tidy(text: str) -> str:
    text = " ".join(text.split())
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"(?<!\.)\.\.(?!\.)", ".", text)     # "a.m." at a sentence end: one full stop


def resolve(catalog: Catalog, prompt: PromptId,
            params: Mapping[str, object] | Iterable[tuple[str, object]] = (),
            lang: str | None = None, today: dt.date | None = None) -> Resolved:
    """What to play for `Play(prompt, params)` in `lang` (an unknown language falls back to the
    catalog's default, so a booking in an unconfigured language still hears prompts)."""
    values = dict(params)
    wanted = params_of(prompt)
    if set(values) != wanted:
        missing, extra = sorted(wanted - set(values)), sorted(set(values) - wanted)
        raise ValueError(f"{prompt.value}: parameters missing {missing}, unexpected {extra}")
    lang = lang if lang in catalog.languages else catalog.default_language
    override = catalog.overrides.get((lang, prompt))
    if override is not None:
        return Resolved(prompt, lang, (Recording(override),))
    if prompt in TONES:
        return Resolved(prompt, lang, (TONES[prompt],))
    segments: list[Segment] = []
    pending = ""
    for part in catalog.templates[(lang, prompt)].parts:
        if isinstance(part, str):
            pending += part
            continue
        value = values[part.name]
        if part.kind is Kind.TEXT and _is_recording(value):
            if _tidy(pending):
                segments.append(Text(_tidy(pending)))
            segments.append(Recording(os.fspath(value)))
            pending = ""
        else:
            pending += _spoken(part, value, lang, prompt, today)
    if _tidy(pending):
        segments.append(Text(_tidy(pending)))
    return Resolved(prompt, lang, tuple(segments))
