"""The one owner of conference state (pure): who is where, with which role, seat, name and mute.

Owns `Conferences`: conferences (a booking, a standing `[[rooms]]` room, or an ad-hoc 3PTY /
operator meeting) with their limit and seats, and their members — call → conference, room,
role, seat, name; the audio state (muted, volumes, listening) lives in the mixer core it drives,
and nowhere else. Every change is one operation that checks the actor's permission, validates,
mutates and returns a `Change`: the NET route diff (computed once over the whole compound
change, so joining muted never connects the joiner's voice, not even for one frame) and the
facts for everyone concerned (`MemberJoined`, `MemberMuted(by=...)`, ...). The flows, the call
records, the talk detector and (later) the console subscribe to the facts; none keeps a copy.
Must not touch sockets, threads, clocks or files: the service applies the diffs and delivers
the facts.

Permissions (`Conferences.may`): anyone may act on themself (mute, volume, leave); a moderator
acts on the members of its own conference; the superuser (operator role) on everybody.
Seats: a member is told its seat on joining ("you are the third participant"): the lowest seat
free in that conference, kept for the call's life there and never given to another while it is
there; moderators address participants by it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from bot.conference.mixer import Diff, Direction, Mixer, Role, RoomKind, UnknownMember

HOLDING = "~ivr"          # callers in the IVR: a WAITING room, nobody hears anybody
LAST_JOINED = 0           # the seat that means "whoever joined last"


class ConferenceKind(enum.Enum):
    BOOKED = "booked"         # a booking's conference, named by its reference (closed when it
                              # empties; the next caller with its PIN opens it again)
    STANDING = "standing"     # a [[rooms]] room, open while the service runs
    ADHOC = "adhoc"           # a 3PTY or operator meeting: gone when its last member leaves


class Action(enum.Enum):
    MUTE = "mute"
    VOLUME = "volume"
    NAME = "name"
    MOVE = "move"
    LEAVE = "leave"


# ---- facts ------------------------------------------------------------------------------------

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
    source: str               # the conference it was in
    target: str               # the conference it is in now
    seat: int                 # its seat there
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


Fact = (MemberJoined | MemberLeft | MemberMoved | MemberMuted | MemberNamed | RoomFull
        | ConferenceClosed)


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


# ---- state ------------------------------------------------------------------------------------

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


@dataclass
class _Conference:
    id: str
    kind: ConferenceKind
    limit: int
    seats: dict[int, str] = field(default_factory=dict)     # seat → call


class Conferences:
    def __init__(self) -> None:
        self.mixer = Mixer()
        self.mixer.open_room(HOLDING, RoomKind.WAITING)
        self._conferences: dict[str, _Conference] = {}
        self._members: dict[str, Seat] = {}       # call → its seat (only calls in a conference)
        self._order = 0

    # ---- conferences ----------------------------------------------------------------------------

    def open(self, conference: str, kind: ConferenceKind, limit: int) -> None:
        """Open a conference, or update its limit (a booking change, a config reload)."""
        c = self._conferences.get(conference)
        if c is None:
            self._conferences[conference] = _Conference(conference, kind, limit)
        else:
            c.limit = limit

    def set_limit(self, conference: str, limit: int) -> None:
        """A new limit for an open conference (a booking change, a config reload); the members
        already inside stay."""
        c = self._conferences.get(conference)
        if c is not None:
            c.limit = limit

    def limit(self, conference: str) -> int | None:
        c = self._conferences.get(conference)
        return c.limit if c is not None else None

    def conferences(self) -> tuple[str, ...]:
        return tuple(sorted(self._conferences))

    # ---- calls ----------------------------------------------------------------------------------

    def arrive(self, call: str) -> Change:
        """A call has media: into the holding room (it hears only its own prompts)."""
        return Change(tuple(self.mixer.join(call, HOLDING)))

    def join(self, call: str, conference: str, role: Role = Role.PARTICIPANT, *,
             muted: bool = False, name: str | None = None) -> Change:
        """From the holding room into `conference`'s main room, muted from the first frame if
        asked. A full conference answers `RoomFull` and changes nothing."""
        c = self._conferences[conference]
        self._need(call)
        if call in self._members:
            raise ValueError(f"{call} is already in {self._members[call].conference}")
        if len(c.seats) >= c.limit:
            return Change((), (RoomFull(call, conference, len(c.seats), c.limit),))
        seat = _free_seat(c)
        self._order += 1
        diffs = self.mixer.move(call, conference, muted=muted, role=role)
        self.mixer.take_events()    # room state facts: nobody reads them yet (bounded)
        c.seats[seat] = call
        self._members[call] = Seat(call, conference, role, seat, name, "", self._order)
        facts: tuple[Fact, ...] = (MemberJoined(call, conference, role, seat, len(c.seats)),)
        if muted:
            facts += (MemberMuted(call, True, call),)
        return Change(tuple(diffs), facts)

    def leave(self, call: str) -> Change:
        """Back to the holding room (it still hears its own goodbye)."""
        s = self._members.pop(call, None)
        if s is None:
            return Change()
        c = self._conferences[s.conference]
        del c.seats[s.seat]
        diffs = self.mixer.move(call, HOLDING, muted=False)
        self.mixer.take_events()
        facts: tuple[Fact, ...] = (MemberLeft(call, s.conference, s.seat, s.name),)
        if not c.seats and c.kind is not ConferenceKind.STANDING:
            facts += self._close(c.id)         # bounded: nobody left, nothing kept
        return Change(tuple(diffs), facts)

    def gone(self, call: str) -> Change:
        """The call ended: out of its conference and the mixer."""
        out = self.leave(call)
        if self.knows(call):
            out += Change(tuple(self.mixer.leave(call)))
            self.mixer.take_events()
        return out

    def drop_room(self, room: str) -> None:
        """A room that is no conference any more has played its last announcement: close it in
        the mixer too (an announcement still playing kept it open)."""
        if room not in self._conferences and room != HOLDING:
            try:
                self.mixer.close_room(room)
            except Exception:  # noqa: BLE001 - unknown, or still in use
                pass
        self.mixer.take_events()

    # ---- what members do to each other ---------------------------------------------------------

    def move(self, call: str, target: str, by: str) -> Change:
        """`by` moves `call` into the open conference `target` (a séparée, a parallel room): one
        net change — it leaves the old room's routes and gets the new room's at once — keeping
        its role, name and mute. A full target answers `RoomFull` and changes nothing."""
        s = self._members.get(call)
        if s is None:
            raise UnknownCall(call)
        self._allow(by, Action.MOVE, call)
        t = self._conferences[target]
        if s.conference == target:
            return Change()
        if len(t.seats) >= t.limit:
            return Change((), (RoomFull(call, target, len(t.seats), t.limit),))
        old = self._conferences[s.conference]
        del old.seats[s.seat]
        seat = _free_seat(t)
        t.seats[seat] = call
        self._members[call] = replace(s, conference=target, seat=seat)
        diffs = self.mixer.move(call, target)
        self.mixer.take_events()
        facts: tuple[Fact, ...] = (MemberMoved(call, s.conference, target, seat, by),)
        if not old.seats and old.kind is not ConferenceKind.STANDING:
            facts += self._close(old.id)
        return Change(tuple(diffs), facts)

    def may(self, actor: str, action: Action, target: str) -> bool:
        if actor == target:
            return True
        a, t = self._members.get(actor), self._members.get(target)
        if a is None or t is None:
            return False
        if a.role is Role.OPERATOR:
            return True
        return a.role is Role.MODERATOR and a.conference == t.conference

    def set_muted(self, call: str, muted: bool, by: str | None = None) -> Change:
        by = by or call
        self._seated(call)
        self._allow(by, Action.MUTE, call)
        if self.mixer.member(call).muted == muted:
            return Change((), (MemberMuted(call, muted, by),))
        return Change(tuple(self.mixer.set_muted(call, muted)), (MemberMuted(call, muted, by),))

    def toggle_muted(self, call: str, by: str | None = None) -> Change:
        self._seated(call)
        return self.set_muted(call, not self.mixer.member(call).muted, by)

    def set_volume(self, call: str, direction: Direction, steps: int,
                   by: str | None = None) -> Change:
        self._seated(call)
        self._allow(by or call, Action.VOLUME, call)
        return Change(tuple(self.mixer.set_volume(call, steps, direction)))

    def name(self, call: str, name: str, by: str | None = None) -> Change:
        """A (new) recorded name: `by` a moderator, or the caller itself."""
        by = by or call
        self._allow(by, Action.NAME, call)
        s = self._members.get(call)
        if s is None:
            raise UnknownCall(call)
        self._members[call] = replace(s, name=name, name_text="")
        return Change((), (MemberNamed(call, name, by),))

    def transcribed(self, call: str, name: str, text: str) -> bool:
        """The recogniser's text for the recording `name`; dropped when the member has another
        name meanwhile (a late transcript never overwrites a newer name)."""
        s = self._members.get(call)
        if s is None or s.name != name:
            return False
        self._members[call] = replace(s, name_text=" ".join(text.split()))
        return True

    # ---- queries --------------------------------------------------------------------------------

    def seat_of(self, call: str) -> Seat | None:
        return self._members.get(call)

    def find(self, conference: str, seat: int, exclude: str | None = None) -> Seat | None:
        """The member in `seat` of `conference`, or with LAST_JOINED the one who joined last."""
        c = self._conferences.get(conference)
        if c is None:
            return None
        if seat != LAST_JOINED:
            call = c.seats.get(seat)
            return self._members[call] if call is not None and call != exclude else None
        members = [self._members[x] for x in c.seats.values() if x != exclude]
        return max(members, key=lambda s: s.order, default=None)

    def members(self, conference: str) -> tuple[Seat, ...]:
        c = self._conferences.get(conference)
        if c is None:
            return ()
        return tuple(sorted((self._members[x] for x in c.seats.values()), key=lambda s: s.order))

    def count(self, conference: str) -> int:
        c = self._conferences.get(conference)
        return len(c.seats) if c is not None else 0

    def muted(self, call: str) -> bool:
        return self.mixer.member(call).muted

    def sizes(self) -> dict[str, int]:
        """The sizes of its tables (for the soak benchmark and, later, metrics)."""
        snap = self.mixer.snapshot()
        return {"conferences": len(self._conferences), "members": len(self._members),
                "mixer_rooms": len(snap.rooms), "mixer_members": len(snap.members),
                "mixer_sources": len(snap.sources)}

    # ---- internals ------------------------------------------------------------------------------

    def _close(self, conference: str) -> tuple[Fact, ...]:
        del self._conferences[conference]
        try:
            self.mixer.close_room(conference)
        except Exception:  # noqa: BLE001 - never opened in the mixer, or sources still playing
            pass
        return (ConferenceClosed(conference),)

    def _allow(self, actor: str, action: Action, target: str) -> None:
        if not self.may(actor, action, target):
            raise NotAllowed(f"{actor} may not {action.value} {target}")

    def knows(self, call: str) -> bool:
        """The call has media here (in the holding room or a conference)."""
        try:
            self.mixer.member(call)
            return True
        except UnknownMember:
            return False

    def _need(self, call: str) -> None:
        if not self.knows(call):
            raise UnknownCall(call)

    def _seated(self, call: str) -> None:
        """Mute and volume are a conference member's: not of a call still in the IVR."""
        if call not in self._members:
            raise UnknownCall(call)


def _free_seat(c: _Conference) -> int:
    """The lowest seat nobody in `c` holds (never one a member still holds)."""
    return next(n for n in range(1, len(c.seats) + 2) if n not in c.seats)
