"""In-conference keypad menus (pure): a plain dict from config compiled into a typed table, and
the matcher that turns single key presses into commands.

Owns `KeyAction`, `Keypad`, `compile_keypad`, `KeyMatcher` and `DEFAULT_KEYPAD`. Must not know
what a command does (the call flow executes them) and must not read config files: bot.config.load
passes the raw table and the key path for error messages (STYLE lesson 5, after Asterisk's
conf_config_parser.c: keys validated by regex, action names compiled to an enum, an unknown name
fails the load and names the key; nothing is silently skipped).
"""
from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass


class KeyAction(enum.Enum):
    TOGGLE_MUTE = "toggle_mute"
    MUTE = "mute"
    UNMUTE = "unmute"
    HELP = "help"
    COUNT = "count"
    VOLUME_UP = "volume_up"        # what I hear, louder
    VOLUME_DOWN = "volume_down"
    TALK_LOUDER = "talk_louder"    # how loud the others hear me
    TALK_SOFTER = "talk_softer"
    LEAVE = "leave"
    INVITE = "invite"
    NAME_MEMBER = "name_member"    # moderators: record a name for a participant
    SEPAREE = "separee"            # moderators: a séparée with the seats entered
    CONSULT = "consult"            # moderators: a 1:1 séparée with one seat
    BRING_BACK = "bring_back"      # moderators: a séparée (or all) back to the main room
    MUTE_SEAT = "mute_seat"        # moderators: mute or unmute the seat entered
    REMOVE_SEAT = "remove_seat"    # moderators: remove the seat entered from the conference
    MUTE_ALL = "mute_all"          # moderators: every participant muted (a lecture)
    UNMUTE_ALL = "unmute_all"
    LOCK = "lock"                  # moderators: lock or unlock the conference for newcomers
    END_CONFERENCE = "end_conference"   # moderators: end it for everyone (after a 1 to confirm)
    LOGIN = "login"                # anyone: log in as a moderator with a personal PIN
    ROLL_CALL = "roll_call"        # moderators: who is here (seat, name, muted, talking, room)
    MOVE_SEAT = "move_seat"        # moderators: a seat into a séparée, or back (room 0)


# what only moderators (and the superuser) may do; the help reads them to those only
MODERATOR_ACTIONS = frozenset({KeyAction.NAME_MEMBER, KeyAction.SEPAREE, KeyAction.CONSULT,
                               KeyAction.BRING_BACK, KeyAction.MUTE_SEAT, KeyAction.REMOVE_SEAT,
                               KeyAction.MUTE_ALL, KeyAction.UNMUTE_ALL, KeyAction.LOCK,
                               KeyAction.END_CONFERENCE, KeyAction.ROLL_CALL,
                               KeyAction.MOVE_SEAT})

# Like common bridges (Webex/Zoom-style *6 mute, *# count, *0 leave-the-call desks); the
# moderator's room commands start with #:
DEFAULT_KEYPAD: dict[str, str] = {
    "*6": "toggle_mute", "*1": "help", "*#": "count", "*4": "volume_down",
    "*7": "volume_up", "*0": "leave", "*5": "invite", "*2": "name_member", "*8": "login",
    "#1": "separee", "#2": "consult", "#0": "bring_back", "#4": "lock", "#5": "remove_seat",
    "#6": "mute_seat", "#8": "mute_all", "#9": "unmute_all", "#7": "end_conference",
    "#3": "roll_call", "##": "move_seat",
}

KEY_PATTERN = re.compile(r"^[0-9*#]{1,4}$")


class KeypadError(ValueError):
    """A bad keypad table; `path` is the config key path, e.g. ("keypad", "*6")."""

    def __init__(self, path: tuple, reason: str):
        super().__init__(f"{'.'.join(map(str, path))}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Keypad:
    bindings: tuple[tuple[str, KeyAction], ...]

    def action(self, keys: str) -> KeyAction | None:
        return dict(self.bindings).get(keys)

    def is_prefix(self, keys: str) -> bool:
        """True when `keys` starts some longer binding (so the matcher must wait)."""
        return any(k != keys and k.startswith(keys) for k, _ in self.bindings)

    def key_for(self, action: KeyAction) -> str | None:
        return next((k for k, a in self.bindings if a is action), None)


def compile_keypad(table: Mapping[str, object], path: tuple = ("keypad",)) -> Keypad:
    """Validate and compile {"*6": "toggle_mute", ...}. Raises `KeypadError` naming the first
    bad key: a malformed key, an unknown action, or a key that is a prefix of another key (it
    could never be told apart, e.g. "*" next to "*6")."""
    bindings: list[tuple[str, KeyAction]] = []
    for key, name in table.items():
        where = path + (key,)
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise KeypadError(where, f"'{key}' is not a key sequence (1-4 of 0-9 * #)")
        try:
            action = KeyAction(name)
        except ValueError:
            known = ", ".join(a.value for a in KeyAction)
            raise KeypadError(where, f"unknown action '{name}' (known: {known})") from None
        bindings.append((key, action))
    keys = [k for k, _ in bindings]
    for key in keys:
        longer = [k for k in keys if k != key and k.startswith(key)]
        if longer:
            raise KeypadError(path + (key,), f"'{key}' is a prefix of '{longer[0]}'")
    return Keypad(tuple(sorted(bindings)))


class Match(enum.Enum):
    COMMAND = "command"      # a complete binding: see `KeyMatcher.feed` result
    PENDING = "pending"      # a prefix: wait for more keys (start the keypad timer)
    NONE = "none"            # no binding starts like this; the buffer was cleared


@dataclass(slots=True)
class KeyMatcher:
    """Feeds single keys against a `Keypad`. After a dead end the last key may still start a
    new sequence ("**6" → toggle_mute), so a stray "*" never swallows the next command."""
    keypad: Keypad
    buffer: str = ""

    def feed(self, key: str) -> tuple[Match, KeyAction | None]:
        for candidate in (self.buffer + key, key):
            action = self.keypad.action(candidate)
            if action is not None:
                self.buffer = ""
                return Match.COMMAND, action
            if self.keypad.is_prefix(candidate):
                self.buffer = candidate
                return Match.PENDING, None
        self.buffer = ""
        return Match.NONE, None

    def reset(self) -> None:
        self.buffer = ""
