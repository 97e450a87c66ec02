"""What the owner of conference state (`bot.conference.owner`) answers (pure): a member's `Seat`
as everyone reads it, the facts of a change, the `Change` itself (net route diff + facts) and its
refusals. Must not import the owner."""
from __future__ import annotations

from dataclasses import dataclass

from bot.conference.mixer import Diff, Role


@dataclass(frozen=True, slots=True)
class Seat:
    """A member of a conference, as everyone may read it."""
    call: str
    conference: str
    role: Role
    seat: int
    name: str | None = None        # the recorded name (a WAV path)
    name_text: str = ""            # the name as recognised (speech input), "" without
    order: int = 0                 # joins across the service, increasing
    room: str = ""                 # the room it is in: the conference's main room (its id) or
                                   # one of its séparées


def separee_room(conference: str, number: int) -> str:
    return f"{conference}~s{number}"


@dataclass(frozen=True, slots=True)
class MemberJoined:
    call: str
    conference: str
    role: Role
    seat: int
    count: int                # members of the conference's main room now, this one included


@dataclass(frozen=True, slots=True)
class MemberLeft:
    call: str
    conference: str
    seat: int
    name: str | None


@dataclass(frozen=True, slots=True)
class MemberMoved:
    call: str
    source: str               # the room it was in (a conference's main room is its id)
    target: str               # the room it is in now
    seat: int                 # its seat in the target's conference (kept within a conference)
    by: str


@dataclass(frozen=True, slots=True)
class MemberMuted:
    call: str
    muted: bool
    by: str                   # the call that did it (the member itself for its own *6)


@dataclass(frozen=True, slots=True)
class MemberNamed:
    call: str
    name: str
    by: str


@dataclass(frozen=True, slots=True)
class RoomFull:
    call: str
    conference: str
    count: int
    limit: int


@dataclass(frozen=True, slots=True)
class ConferenceClosed:
    conference: str


@dataclass(frozen=True, slots=True)
class SepareeOpened:
    conference: str
    room: str                 # its room id ("<conference>~s<number>")
    number: int               # told to those moved ("you are in séparée 2")
    by: str


@dataclass(frozen=True, slots=True)
class SepareeClosed:
    conference: str
    room: str
    number: int


@dataclass(frozen=True, slots=True)
class ConferenceLocked:
    """`call` may not join: a moderator locked the conference."""
    call: str
    conference: str


@dataclass(frozen=True, slots=True)
class LockChanged:
    conference: str
    locked: bool
    by: str


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    """A moderator removed `call` (it is back in the holding room; its flow says goodbye)."""
    call: str
    conference: str
    by: str


@dataclass(frozen=True, slots=True)
class ConferenceEnded:
    """`by` ended the conference for everyone: `calls` (all its rooms) are out, back in the
    holding room; each flow says goodbye and hangs up."""
    conference: str
    by: str
    calls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """`call` moderates from now on (a personal PIN, checked by the service), or is the
    superuser; `who` is the person's name from config."""
    call: str
    role: Role
    who: str


Fact = (MemberJoined | MemberLeft | MemberMoved | MemberMuted | MemberNamed | RoomFull
        | ConferenceClosed | SepareeOpened | SepareeClosed | ConferenceLocked | LockChanged
        | MemberRemoved | ConferenceEnded | RoleChanged)


@dataclass(frozen=True, slots=True)
class Change:
    diffs: tuple[Diff, ...] = ()
    facts: tuple[Fact, ...] = ()

    def __add__(self, other: "Change") -> "Change":
        return Change(self.diffs + other.diffs, self.facts + other.facts)


class NotAllowed(Exception):
    """The actor may not do this to that member. Nothing changed."""


class UnknownCall(Exception):
    """No such call is known to the owner. Nothing changed."""


class NoSuchSeat(UnknownCall):
    """Nobody holds that seat in the actor's conference. Nothing changed."""

    def __init__(self, seat: int) -> None:
        super().__init__(f"seat {seat} is not in this conference")
        self.seat = seat


class NoSuchSeparee(ValueError):
    """The conference has no séparée with that number (0: none at all). Nothing changed."""

    def __init__(self, number: int) -> None:
        super().__init__(f"no séparée {number}" if number else "no séparée is open")
        self.number = number


class MutedByModerator(NotAllowed):
    """A participant a moderator muted may not unmute itself here (`self_unmute` off)."""
