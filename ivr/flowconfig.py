"""What a call flow is configured with, and the main menu's keys (pure).

Owns `FlowConfig` (dial-ins, operator, languages, keypad, PIN tries, timeouts, naming and
announcements per room, 3PTY size, the zone times are said in; `FlowConfig.from_settings` reads
them from `bot.config.settings.Settings`), `MenuChoice` and `MAIN_MENU_KEYS`. `ivr.flow` imports
(and re-exports) them, so `from ivr.flow import FlowConfig` keeps working.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timezone, tzinfo

from bot.config.settings import Settings
from ivr.keypad import DEFAULT_KEYPAD, Keypad, compile_keypad
from ivr.steps import Announce, Naming


@dataclass(frozen=True, slots=True)
class FlowConfig:
    dialins: tuple = ()                      # bot.config.settings.DialIn entries
    operator_uri: str | None = None          # None: "operator" means apologise and hang up
    languages: tuple[str, ...] = ("de", "en")
    default_language: str = "de"
    keypad: Keypad = field(default_factory=lambda: compile_keypad(DEFAULT_KEYPAD))
    pin_tries: int = 3
    pin_max_digits: int = 12
    input_timeout_ms: int = 8000
    input_retries: int = 3                   # timeouts / invalid answers before giving up
    keypad_timeout_ms: int = 3000
    early_join_minutes: int = 10
    naming: Naming = Naming.RECORD
    name_max_ms: int = 3000
    name_min_ms: int = 300
    name_tries: int = 3
    announce: Announce = Announce.NAME       # default for rooms not listed below
    room_announce: tuple[tuple[str, Announce], ...] = ()
    number_max_digits: int = 15
    threeway_parties: int = 3
    timezone: tzinfo = timezone.utc          # the zone every time a caller hears is said in
    dialout: bool = True                     # False: no [ivr] dialout_uri, inviting is off

    def announce_for(self, room: str) -> Announce:
        return dict(self.room_announce).get(room, self.announce)

    @classmethod
    def from_settings(cls, settings: Settings, operator_uri: str | None = None,
                      keypad: Keypad | None = None, **overrides) -> "FlowConfig":
        rooms = tuple((r.name, Announce(r.announce.value)) for r in settings.rooms)
        keypad = keypad if keypad is not None else settings.keypad
        extra = {"keypad": keypad} if keypad is not None else {}
        ivr = settings.ivr
        return cls(dialins=settings.dialin, operator_uri=operator_uri or ivr.operator_uri,
                   languages=settings.service.languages,
                   default_language=settings.service.default_language,
                   early_join_minutes=settings.pins.early_join_minutes,
                   pin_tries=ivr.pin_tries, input_timeout_ms=ivr.input_timeout_ms,
                   naming=Naming.RECORD if ivr.naming else Naming.OFF, name_max_ms=ivr.name_max_ms,
                   room_announce=rooms, timezone=settings.service.timezone,
                   dialout=ivr.dialout_uri is not None, **{**extra, **overrides})


class MenuChoice(enum.Enum):
    PIN = "pin"
    THREEWAY = "threeway"
    LANGUAGE = "language"
    OPERATOR = "operator"


MAIN_MENU_KEYS: dict[str, MenuChoice] = {
    "1": MenuChoice.PIN, "2": MenuChoice.THREEWAY, "9": MenuChoice.LANGUAGE, "0": MenuChoice.OPERATOR,
}
