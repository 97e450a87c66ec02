"""The room model (pure): rooms as small state machines, the records of who is in them, and the
mixer's error types.

Owns: `RoomKind`, `RoomState`, the one transition table, `Room.change_state` (the only place a
room's state changes; it returns the `RoomStateChanged` fact); the member and source records
with their read-only snapshots (`MemberInfo`, `SourceInfo`, `RoomInfo`, `Snapshot`); `Role`,
the volume-step scale. It must not derive routes or touch anything outside this process: the
mixer core (`bot.conference.mixer`) owns these records, keeps them consistent and derives routes; this
module only answers "what is in this room, which state is it in, and was that change legal?".

Theory of operation (after Asterisk's conf_state.h, STYLE lesson 3):

    EMPTY ──first participant──▶ SINGLE ──second──▶ MULTI
      ▲  ◀──last one left──────    ◀──down to one──
      └──close (nothing left inside)──▶ CLOSED   (terminal: the name may be opened again later
                                                  as a new room)

The state follows the number of *participants* only. Listeners (listen-in) and non-caller
sources (announcement players) do not make a room SINGLE or MULTI: a caller alone with a silent
supervisor is still alone, and the driver may play music-on-hold to a SINGLE room. Every
membership change moves the count by one, so each step is a single edge of the table; anything
else is a bug and raises `IllegalTransition` without changing the room.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class MixerError(Exception):
    """An illegal operation on the mixer core. The core's state is unchanged when it is raised."""


class UnknownMember(MixerError):
    pass


class UnknownSource(MixerError):
    pass


class UnknownRoom(MixerError):
    pass


class AlreadyPresent(MixerError):
    """The id is already in use (by a member, a listener or a source), or the room already exists."""


class RoomNotEmpty(MixerError):
    pass


class InvalidOperation(MixerError):
    """Well-formed but meaningless: whispering to oneself, a volume step out of range, ..."""


class IllegalTransition(MixerError):
    pass


class Role(enum.Enum):
    PARTICIPANT = "participant"
    MODERATOR = "moderator"
    OPERATOR = "operator"      # the superuser


MODERATING = frozenset({Role.MODERATOR, Role.OPERATOR})   # the roles a moderator's keys work for


class Direction(enum.Enum):
    TALK = "talk"      # how loud the member is heard by others
    LISTEN = "listen"  # how loud the member hears everything


STEP_DB = 3.0
MIN_STEP, MAX_STEP = -4, 4
GAIN_BY_STEP = {s: 10 ** (s * STEP_DB / 20) for s in range(MIN_STEP, MAX_STEP + 1)}


def gain(steps: int) -> float:
    """Linear gain of a volume step: 3 dB per step, -4..+4 (0.40 .. 2.51); 0 is exactly 1.0."""
    return GAIN_BY_STEP[steps]


class RoomKind(enum.Enum):
    CONFERENCE = "conference"  # everyone hears everyone else (N-1)
    SEPAREE = "separee"        # a breakout room; has a parent room; same audio rules as a conference
    WAITING = "waiting"        # a waiting queue: members hear the room's sources (music, prompts),
                               # never each other


class RoomState(enum.Enum):
    EMPTY = "empty"
    SINGLE = "single"
    MULTI = "multi"
    CLOSED = "closed"


TRANSITIONS: dict[RoomState, frozenset[RoomState]] = {
    RoomState.EMPTY: frozenset({RoomState.SINGLE, RoomState.CLOSED}),
    RoomState.SINGLE: frozenset({RoomState.EMPTY, RoomState.MULTI}),
    RoomState.MULTI: frozenset({RoomState.SINGLE}),
    RoomState.CLOSED: frozenset(),
}
# Staying in the same state (a third, fourth, ... participant) is not a transition: change_state
# records nothing when old == new.


def occupancy_state(participants: int) -> RoomState:
    """The state a live room should be in for a participant count."""
    if participants == 0:
        return RoomState.EMPTY
    return RoomState.SINGLE if participants == 1 else RoomState.MULTI


@dataclass(frozen=True, slots=True)
class RoomStateChanged:
    """Fact: `room` went from `old` to `new`. The mixer queues these for the driver."""
    room: str
    old: RoomState
    new: RoomState


@dataclass(frozen=True, slots=True)
class RoomInfo:
    name: str
    kind: RoomKind
    parent: str | None
    state: RoomState
    participants: tuple[str, ...]   # in join order
    listeners: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(slots=True, eq=False)
class Room:
    """A live room. Mutable, owned by one `Mixer`; others see `RoomInfo` snapshots.

    The member dicts are insertion-ordered sets (values unused). `talkers` is the subset of
    participants who are heard (not muted); the mixer keeps it in step so that deriving a
    newcomer's incoming routes costs O(talkers), not O(room) — a 1,000-listener seminar with
    3 speakers stays cheap.
    """
    name: str
    kind: RoomKind = RoomKind.CONFERENCE
    parent: str | None = None
    state: RoomState = RoomState.EMPTY
    participants: dict[str, None] = field(default_factory=dict)
    talkers: dict[str, None] = field(default_factory=dict)
    listeners: dict[str, None] = field(default_factory=dict)
    sources: dict[str, None] = field(default_factory=dict)

    def change_state(self, new: RoomState) -> RoomStateChanged | None:
        """The one place a room changes state. Returns the fact, or None when nothing changed."""
        old = self.state
        if new is old:
            return None
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(f"room {self.name!r}: {old.name} → {new.name} is not allowed")
        self.state = new
        return RoomStateChanged(self.name, old, new)

    def settle(self) -> RoomStateChanged | None:
        """Move to the state the participant count implies (one edge at most)."""
        return self.change_state(occupancy_state(len(self.participants)))

    def is_vacant(self) -> bool:
        return not (self.participants or self.listeners or self.sources)

    def members(self) -> list[str]:
        """Everyone who hears this room: participants, then listeners."""
        return [*self.participants, *self.listeners]

    def info(self) -> RoomInfo:
        return RoomInfo(self.name, self.kind, self.parent, self.state, tuple(self.participants),
                        tuple(self.listeners), tuple(self.sources))


@dataclass(frozen=True, slots=True)
class MemberInfo:
    id: str
    room: str
    role: Role
    listening: bool      # a pure listener: hears the room, heard by nobody (except by whisper)
    muted: bool
    deaf: bool
    talk_steps: int
    listen_steps: int


@dataclass(frozen=True, slots=True)
class SourceInfo:
    id: str
    room: str | None     # plays into a room ...
    member: str | None   # ... or to one member only
    steps: int
    exclude: frozenset[str] = frozenset()   # room members it does not play to


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole state, sorted; equal snapshots mean equal state (used by the operator view)."""
    rooms: tuple[RoomInfo, ...]
    members: tuple[MemberInfo, ...]
    sources: tuple[SourceInfo, ...]
    whispers: tuple[tuple[str, str], ...]


@dataclass(slots=True, eq=False)
class Member:
    """Mutable record owned by one Mixer; everyone else sees `MemberInfo`."""
    id: str
    room: str
    role: Role
    listening: bool
    muted: bool = False
    deaf: bool = False
    talk_steps: int = 0
    listen_steps: int = 0

    def info(self) -> MemberInfo:
        return MemberInfo(self.id, self.room, self.role, self.listening, self.muted, self.deaf,
                          self.talk_steps, self.listen_steps)


@dataclass(slots=True, eq=False)
class Source:
    id: str
    room: str | None
    member: str | None
    steps: int
    exclude: frozenset[str] = frozenset()

    def info(self) -> SourceInfo:
        return SourceInfo(self.id, self.room, self.member, self.steps, self.exclude)
