"""Who is in which conference, under what name (pure).

Owns `Entry` (one caller in one room: role, the position it was told on joining — "you are the
third participant" —, its recorded name and, with speech recognition on, that name as text) and
`Roster`, updated by `bot.service.voice` on joins, moves, leaves, names and transcripts. A moderator
names a participant by that position (or the last one who joined); operator views and the
console read `of_room`. Knows nothing of SIP, audio files or recognisers: paths and texts are
values handed in.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from bot.conference.rooms import Role

LAST_JOINED = 0          # the position that means "whoever joined this room last"


@dataclass(frozen=True, slots=True)
class Entry:
    call: str
    room: str
    role: Role
    position: int                  # the n it heard on joining ("you are the n-th")
    order: int                     # joins across the service, increasing
    name_path: str | None = None   # the recorded name (a WAV)
    name_text: str = ""            # the recorded name as recognised ("" without speech input)


class Roster:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._order = itertools.count(1)

    def joined(self, call: str, room: str, role: Role, position: int,
               name_path: str | None = None) -> Entry:
        """`call` is in `room` now (a move replaces its old entry; a name it had stays)."""
        old = self._entries.get(call)
        if name_path is None and old is not None:
            name_path, text = old.name_path, old.name_text
        else:
            text = ""
        e = self._entries[call] = Entry(call, room, role, position, next(self._order),
                                        name_path, text)
        return e

    def left(self, call: str) -> Entry | None:
        return self._entries.pop(call, None)

    def named(self, call: str, name_path: str) -> Entry | None:
        """A (new) recorded name for `call`; its old transcript no longer applies."""
        e = self._entries.get(call)
        if e is None:
            return None
        e = self._entries[call] = replace(e, name_path=name_path, name_text="")
        return e

    def transcribed(self, call: str, name_path: str, text: str) -> Entry | None:
        """The recogniser's text for the recording `name_path`; dropped when `call` has been
        given another name meanwhile (a late transcript never overwrites a newer name)."""
        e = self._entries.get(call)
        if e is None or e.name_path != name_path:
            return None
        e = self._entries[call] = replace(e, name_text=" ".join(text.split()))
        return e

    def find(self, room: str, position: int, exclude: str | None = None) -> Entry | None:
        """The member of `room` told `position` on joining (the latest such, if positions
        repeat after leaves), or with LAST_JOINED the one who joined last; never `exclude`."""
        members = [e for e in self._entries.values() if e.room == room and e.call != exclude]
        if position != LAST_JOINED:
            members = [e for e in members if e.position == position]
        return max(members, key=lambda e: e.order, default=None)

    def get(self, call: str) -> Entry | None:
        return self._entries.get(call)

    def of_room(self, room: str) -> list[Entry]:
        return sorted((e for e in self._entries.values() if e.room == room), key=lambda e: e.order)
