"""Speech input: the vosk adapter (the only module that imports vosk), and the spoken keywords of
each menu.

Owns loading a vosk model once (`SpeechModel`; the Kaldi model is read-only after loading and
shared by all calls and threads), recognising one finished utterance with a grammar-restricted
recogniser (`Recognizer.recognize`: a fresh `KaldiRecognizer` per utterance, so concurrent calls
never share decoder state), and mapping what was said to the keys the menu takes (`Grammar`,
`grammar_for`), and checking a model against every menu's grammar (`grammar_problems`).
Must not touch: files other than the model, threads (callers run `recognize` in
a worker, never on the media clock thread), the VAD, the call flow's state.

vosk 0.3.45 quirks handled here:
- A grammar word missing from the model's vocabulary is silently dropped (a log line only), so a
  menu could lose a choice unnoticed: `SpeechModel.missing_words` lets the composition root
  refuse such a grammar at load time. Small models have no "[unk]" word, so out-of-grammar speech
  is always forced onto *some* grammar word; a single-choice menu therefore accepts only a result
  that is exactly one phrase (noise tends to come out as several).
- The decoder needs silence around a word: in a trial with the Korean model, espeak-ng words
  with no leading silence were 4/6, with 300 ms on both sides 6/6. `recognize` pads.
- Models are trained on 16 kHz audio; the feature pipeline upsamples 8 kHz input, but the
  telephone band loses too much (2/6 in the same trial): run the bridge at 16 kHz with speech on.
"""
from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import vosk

from ivr.events import CollectDigits, Play, PromptId

PAD_MS = 300                # silence added before and after an utterance (see the quirks above)


class SpeechUnavailable(RuntimeError):
    """The model directory is missing or vosk cannot load it."""


# ---- grammars: what can be said in each menu, and the keys it stands for (pure) ---------------

@dataclass(frozen=True, slots=True)
class Grammar:
    """Spoken phrases → the keys they stand for. With `sequence`, an utterance may string several
    phrases together and their keys are joined ("eins zwei raute" → "12#": PINs and numbers);
    without, it must be exactly one phrase (a menu choice)."""
    phrases: tuple[tuple[str, str], ...]
    sequence: bool = False

    @classmethod
    def of(cls, mapping: Mapping[str, str], sequence: bool = False) -> Grammar:
        phrases = tuple((" ".join(p.lower().split()), keys) for p, keys in mapping.items())
        if not phrases or any(not p for p, _ in phrases):
            raise ValueError("a grammar needs at least one non-empty phrase")
        return cls(phrases, sequence)

    @classmethod
    def words(cls, words: Sequence[str]) -> Grammar:
        """A grammar whose keywords are the words themselves (for tests and free choices)."""
        return cls.of({w: w for w in words})

    @property
    def vocabulary(self) -> list[str]:
        """The phrases as vosk's grammar list (each phrase a string of words)."""
        return [p for p, _ in self.phrases]

    def keys_for(self, text: str) -> str | None:
        """The keys a recognised text stands for, or None if it is not a sentence of this grammar."""
        table = dict(self.phrases)
        words = text.lower().split()
        if not words:
            return None
        if not self.sequence:
            return table.get(" ".join(words))
        longest = max(len(p.split()) for p in table)
        keys, at = "", 0
        while at < len(words):          # greedy longest match: "three way" before "three"
            for n in range(min(longest, len(words) - at), 0, -1):
                hit = table.get(" ".join(words[at:at + n]))
                if hit is not None:
                    keys, at = keys + hit, at + n
                    break
            else:
                return None
        return keys


class Menu(enum.Enum):
    MAIN = "main"               # ivr.flowconfig.MAIN_MENU_KEYS
    LANGUAGE = "language"       # 1..n: the configured languages in order
    CONFIRM = "confirm"         # name confirmation: 1 keep, 2 again
    INVITATION = "invitation"   # the invitee's choice: 1 join, 2 decline
    DIGITS = "digits"           # PINs and phone numbers: digits, * and #


# The prompt that asks a question → the menu the answer comes from. The driver sees the prompt
# in the actions right before `CollectDigits`.
MENU_OF_PROMPT: Mapping[PromptId, Menu] = {
    PromptId.MAIN_MENU: Menu.MAIN,
    PromptId.LANGUAGE_MENU: Menu.LANGUAGE,
    PromptId.NAME_CONFIRM: Menu.CONFIRM,
    PromptId.INVITEE_CHOICE: Menu.INVITATION,
    PromptId.ENTER_PIN: Menu.DIGITS,
    PromptId.PIN_WRONG: Menu.DIGITS,
    PromptId.INVITE_ENTER_NUMBER: Menu.DIGITS,
    PromptId.THREEWAY_ENTER_NUMBER: Menu.DIGITS,
}



def menu_asked(actions: Sequence[object]) -> Menu | None:
    """The menu a flow's action list asks, or None when it asks nothing: the question is the
    last known prompt played before the last `CollectDigits` (a retry plays INVALID_INPUT first,
    then the question again); a multi-digit answer with no known prompt is DIGITS."""
    collect = max((i for i, a in enumerate(actions) if isinstance(a, CollectDigits)), default=None)
    if collect is None:
        return None
    for a in reversed(actions[:collect]):
        if isinstance(a, Play) and a.prompt in MENU_OF_PROMPT:
            return MENU_OF_PROMPT[a.prompt]
    return Menu.DIGITS if actions[collect].max > 1 else None


_DIGITS: Mapping[str, Mapping[str, str]] = {
    "de": {"null": "0", "eins": "1", "zwei": "2", "zwo": "2", "drei": "3", "vier": "4",
           "fünf": "5", "sechs": "6", "sieben": "7", "acht": "8", "neun": "9",
           "raute": "#", "stern": "*"},
    "en": {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
           "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
           "hash": "#", "pound": "#", "star": "*"},
}
_CHOICES: Mapping[str, Mapping[Menu, Mapping[str, str]]] = {
    "de": {
        Menu.MAIN: {"konferenz": "1", "einwahl": "1", "dreierkonferenz": "2", "sprache": "9",
                    "vermittlung": "0", "hilfe": "0"},
        Menu.CONFIRM: {"ja": "1", "richtig": "1", "nein": "2", "nochmal": "2"},
        Menu.INVITATION: {"ja": "1", "teilnehmen": "1", "nein": "2", "ablehnen": "2"},
    },
    "en": {
        Menu.MAIN: {"conference": "1", "join": "1", "three way": "2", "language": "9",
                    "operator": "0", "help": "0"},
        Menu.CONFIRM: {"yes": "1", "correct": "1", "no": "2", "again": "2"},
        Menu.INVITATION: {"yes": "1", "join": "1", "no": "2", "decline": "2"},
    },
}
# A caller choosing a language may not speak the current one: every name is accepted.
_LANGUAGE_NAMES: Mapping[str, tuple[str, ...]] = {
    "de": ("deutsch", "german"), "en": ("english", "englisch"),
}


def grammar_for(menu: Menu, language: str, languages: Sequence[str] = ("de", "en")) -> Grammar | None:
    """The grammar for `menu` in `language` (None when there are no words for that language).
    `languages` is the configured order of the language menu (FlowConfig.languages)."""
    if menu is Menu.LANGUAGE:
        names = {name: str(i) for i, lang in enumerate(languages, 1)
                 for name in _LANGUAGE_NAMES.get(lang, ())}
        return Grammar.of(names) if names else None
    if menu is Menu.DIGITS:
        digits = _DIGITS.get(language)
        return Grammar.of(digits, sequence=True) if digits else None
    words = _CHOICES.get(language, {}).get(menu)
    return Grammar.of(words) if words else None


GrammarSource = Callable[[Menu, str, Sequence[str]], "Grammar | None"]   # the shape of grammar_for


def grammar_problems(model: SpeechModel, languages: Sequence[str],
                     grammars: GrammarSource = grammar_for) -> list[str]:
    """Every menu's grammar in every language, checked against the model's vocabulary: one line
    per grammar that has words the model lacks (vosk would drop them silently). [] = usable."""
    out = []
    for language in languages:
        for menu in Menu:
            grammar = grammars(menu, language, languages)
            missing = model.missing_words(grammar) if grammar is not None else []
            if missing:
                out.append(f"menu {menu.value!r} in {language!r}: the model does not know "
                           + ", ".join(missing))
    return out


# ---- the vosk adapter -------------------------------------------------------------------------

class SpeechModel:
    """One loaded vosk model; build it once (2-4 s, hundreds of MB) and share it."""

    def __init__(self, path: str | os.PathLike) -> None:
        if not os.path.isdir(path):
            raise SpeechUnavailable(f"no vosk model directory at {path}")
        vosk.SetLogLevel(-1)
        try:
            self._model = vosk.Model(str(path))
        except Exception as exc:   # vosk raises a bare Exception("Failed to create a model")
            raise SpeechUnavailable(f"vosk cannot load the model at {path}: {exc}") from exc
        self.path = str(path)

    def missing_words(self, grammar: Grammar) -> list[str]:
        """Grammar words this model does not know (vosk would drop them silently)."""
        words = {w for phrase in grammar.vocabulary for w in phrase.split()}
        return sorted(w for w in words if self._model.vosk_model_find_word(w) < 0)

    def transcribe(self, pcm: bytes, sample_rate: int, pad_ms: int = PAD_MS) -> str:
        """Free-form recognition (no grammar) of a short recording, e.g. a caller's name for the
        roster. Blocking (about a second or two): call it from a worker thread."""
        rec = vosk.KaldiRecognizer(self._model, sample_rate)
        pad = bytes(sample_rate * pad_ms // 1000 * 2)
        rec.AcceptWaveform(pad + pcm[: len(pcm) - len(pcm) % 2] + pad)
        return " ".join(json.loads(rec.FinalResult()).get("text", "").split())

    def decoder(self, sample_rate: int, vocabulary: list[str]) -> vosk.KaldiRecognizer:
        rec = vosk.KaldiRecognizer(self._model, sample_rate, json.dumps(vocabulary, ensure_ascii=False))
        rec.SetWords(True)
        return rec


class Recognition(NamedTuple):
    text: str                   # what the recogniser heard ("" for nothing)
    keyword: str | None         # the keys it stands for in this grammar, or None
    confidence: float           # the lowest word confidence, 0.0 when nothing was heard


class Recognizer:
    """Recognises finished utterances against one grammar. Safe to share between threads: every
    `recognize` uses its own Kaldi decoder; only the read-only model is shared."""

    def __init__(self, model: SpeechModel, grammar: Grammar | Sequence[str], sample_rate: int,
                 min_confidence: float = 0.0, pad_ms: int = PAD_MS) -> None:
        self.model = model
        self.grammar = grammar if isinstance(grammar, Grammar) else Grammar.words(list(grammar))
        self.sample_rate = sample_rate
        self.min_confidence = min_confidence
        self._pad = bytes(sample_rate * pad_ms // 1000 * 2)

    def recognize(self, pcm: bytes) -> Recognition:
        """16-bit mono PCM at `sample_rate` → what was said. Blocking (tens of ms per second of
        audio): call it from a worker thread."""
        rec = self.model.decoder(self.sample_rate, self.grammar.vocabulary)
        rec.AcceptWaveform(self._pad + pcm[: len(pcm) - len(pcm) % 2] + self._pad)
        result = json.loads(rec.FinalResult())
        text = " ".join(result.get("text", "").split())
        confs = [float(w.get("conf", 0.0)) for w in result.get("result", [])]
        confidence = min(confs) if confs else 0.0
        keys = self.grammar.keys_for(text) if confidence >= self.min_confidence else None
        return Recognition(text, keys, confidence if text else 0.0)
