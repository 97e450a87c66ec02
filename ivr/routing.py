"""Which journey a call starts on (pure): the dialled request-URI user part → a `Destination`.

Owns `Entry` (the call flow's start points), `Destination` and `route_call` (I1). Must not know
prompts or states beyond naming the entry; the call flow turns an `Entry` into its first actions.
Reads only the `DialIn` table it is given (from `bot.config.settings`); never re-reads config.

3PTY (I7) proposal: config names it as a dial-in route, `route = "threeway"`; until
`bot.config.settings.Route` has that member, the MENU route offers it as a choice. Lookup is by the
route's value so the new member works here the moment it exists.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from bot.config.settings import DialIn, Tariff


class Entry(enum.Enum):
    PIN = "pin"
    DIRECT = "direct"
    MENU = "menu"
    OPERATOR = "operator"
    THREEWAY = "threeway"
    UNKNOWN = "unknown"      # no dial-in matches: UNKNOWN_NUMBER, then the operator (or hang up)


# Route value (from config) → entry. Keyed by value on purpose: see the module docstring.
ENTRY_BY_ROUTE: dict[str, Entry] = {
    "pin": Entry.PIN, "direct": Entry.DIRECT, "menu": Entry.MENU,
    "operator": Entry.OPERATOR, "threeway": Entry.THREEWAY,
}


@dataclass(frozen=True, slots=True)
class Destination:
    entry: Entry
    dialled: str                 # the normalized user part
    tariff: Tariff | None = None
    room: str | None = None      # for DIRECT
    language: str | None = None


def user_part(uri: str) -> str:
    """"sip:+49900555@host;user=phone" → "49900555"; "tel:+49-900-555" → "49900555";
    a bare user part passes through. Visual separators and a leading "+" are dropped."""
    s = uri.strip().strip("<>")
    for scheme in ("sips:", "sip:", "tel:"):
        if s.lower().startswith(scheme):
            s = s[len(scheme):]
            break
    s = s.split("@", 1)[0].split(";", 1)[0]
    s = "".join(ch for ch in s if ch not in " -.()")
    return s.removeprefix("+")


def route_call(dialled: str, dialins: Sequence[DialIn]) -> Destination:
    user = user_part(dialled)
    for d in dialins:
        if user_part(d.user) == user:
            return Destination(ENTRY_BY_ROUTE[d.route.value], user, d.tariff, d.room, d.language)
    return Destination(Entry.UNKNOWN, user)
