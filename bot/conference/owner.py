"""The one owner of conference state (pure): who is where, with which role, seat, name and mute.

Owns `Conferences`: conferences (a booking, a standing `[[rooms]]` room, or an ad-hoc 3PTY /
operator meeting) with their limit, seats and rooms — the main room (named by the conference's
id) and its séparées ("<id>~s<n>", numbered from 1, closed when they empty) — and their members:
call → conference, room, role, seat, name; the audio state (muted, volumes, listening) lives in
the mixer core it drives, and nowhere else. Every change is one operation that checks the
actor's permission, validates, mutates and returns a `Change` (`bot.conference.facts`): the NET
route diff (computed once over the whole compound change, so joining muted never connects the
joiner's voice and opening a séparée never lets its members hear the main room between two
diffs) and the facts for everyone concerned (`MemberJoined`, `MemberMuted(by=...)`,
`SepareeOpened`, ...). The flows, the call records, the talk detector and (later) the console
subscribe to the facts; none keeps a copy. Must not touch sockets, threads, clocks or files.

Permissions (`Conferences.may`): anyone may act on themself (mute, volume, leave; leaving a
séparée only where the conference allows `self_return`); a moderator acts on the members of its
own conference (séparées, moves between its rooms); the superuser (operator role) on everybody,
and only it moves members between conferences. Seats: a member is told its seat on joining
("you are the third participant"): the lowest seat free in that conference, kept for the call's
life there (in any of its rooms) and never given to another while it is there; moderators
address participants by it. The limit counts the members in all the conference's rooms.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from bot.conference.facts import (Change, ConferenceClosed, Fact, MemberJoined, MemberLeft,  # noqa: F401
                                  MemberMoved, MemberMuted, MemberNamed, NotAllowed, RoomFull,
                                  Seat, SepareeClosed, SepareeOpened, UnknownCall,
                                  separee_room)
from bot.conference.mixer import Direction, Mixer, Role, RoomKind, UnknownMember, UnknownRoom

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
    SEPAREE = "separee"       # open a séparée, bring members back


# ---- state ------------------------------------------------------------------------------------

@dataclass
class _Conference:
    id: str
    kind: ConferenceKind
    limit: int                     # members in all its rooms (its lines)
    self_return: bool = False      # members may leave a séparée on their own
    seats: dict[int, str] = field(default_factory=dict)       # seat → call, in any of its rooms
    separees: dict[int, str] = field(default_factory=dict)    # number → room id


class Conferences:
    def __init__(self) -> None:
        self.mixer = Mixer()
        self.mixer.open_room(HOLDING, RoomKind.WAITING)
        self._conferences: dict[str, _Conference] = {}
        self._rooms: dict[str, str] = {}          # room → its conference (main rooms included)
        self._members: dict[str, Seat] = {}       # call → its seat (only calls in a conference)
        self._in_room: dict[str, dict[str, None]] = {}   # room → its members, in joining order
        self._order = 0

    # ---- conferences ----------------------------------------------------------------------------

    def open(self, conference: str, kind: ConferenceKind, limit: int, *,
             self_return: bool | None = None) -> None:
        """Open a conference, or update its limit (a booking change, a config reload) and its
        séparée rule (`self_return`: members may leave a séparée on their own)."""
        c = self._conferences.get(conference)
        if c is None:
            c = self._conferences[conference] = _Conference(conference, kind, limit)
            self._rooms[conference] = conference
            self._in_room[conference] = {}
        c.limit = limit
        if self_return is not None:
            c.self_return = self_return

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

    def conference_of(self, room: str) -> str | None:
        """The conference a room (main or séparée) belongs to."""
        return self._rooms.get(room)

    def separees(self, conference: str) -> dict[int, str]:
        """Its open séparées: number → room."""
        c = self._conferences.get(conference)
        return dict(sorted(c.separees.items())) if c is not None else {}

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
        self._place(Seat(call, conference, role, seat, name, "", self._order, conference))
        facts: tuple[Fact, ...] = (MemberJoined(call, conference, role, seat,
                                                self.count(conference)),)
        if muted:
            facts += (MemberMuted(call, True, call),)
        return Change(tuple(diffs), facts)

    def leave(self, call: str) -> Change:
        """Back to the holding room (it still hears its own goodbye)."""
        s = self._members.get(call)
        if s is None:
            return Change()
        c = self._conferences[s.conference]
        del c.seats[s.seat]
        self._unplace(s)
        diffs = self.mixer.move(call, HOLDING, muted=False)
        self.mixer.take_events()
        facts: tuple[Fact, ...] = (MemberLeft(call, s.conference, s.seat, s.name),)
        facts += self._tidy(c, s.room)
        return Change(tuple(diffs), facts)

    def gone(self, call: str) -> Change:
        """The call ended: out of its conference and the mixer."""
        out = self.leave(call)
        if self.knows(call):
            out += Change(tuple(self.mixer.leave(call)))
            self.mixer.take_events()
        return out

    def drop_room(self, room: str) -> None:
        """A room that is no conference's any more has played its last announcement: close it
        in the mixer too (an announcement still playing kept it open)."""
        if room not in self._rooms and room != HOLDING:
            try:
                self.mixer.close_room(room)
            except Exception:  # noqa: BLE001 - unknown, or still in use
                pass
        self.mixer.take_events()

    # ---- what members do to each other ---------------------------------------------------------

    def move(self, call: str, target: str, by: str) -> Change:
        """`by` moves `call` into the room `target`: within its conference (main room or a
        séparée; the seat is kept) or — the superuser only — into another open conference's
        main room (a new seat there, capacity checked). One net change: it leaves the old
        room's routes and gets the new room's at once, keeping its role, name and mute."""
        s = self._members.get(call)
        if s is None:
            raise UnknownCall(call)
        conference = self._rooms.get(target)
        if conference is None:
            raise ValueError(f"no room {target!r}")
        self._allow(by, Action.MOVE, call)
        if s.room == target:
            return Change()
        c = self._conferences[s.conference]
        if conference == s.conference:
            if by == call and s.room != s.conference and not c.self_return:
                raise NotAllowed(f"{call} may leave séparée {s.room!r} only by the moderator")
            return self._regroup(c, (call,), target, by)
        if self._role(by) is not Role.OPERATOR:
            raise NotAllowed(f"{by} may not move {call} into another conference")
        t = self._conferences[conference]
        if len(t.seats) >= t.limit:
            return Change((), (RoomFull(call, conference, len(t.seats), t.limit),))
        del c.seats[s.seat]
        self._unplace(s)
        seat = _free_seat(t)
        t.seats[seat] = call
        self._place(replace(s, conference=conference, seat=seat, room=conference))
        diffs = self.mixer.move(call, conference)
        self.mixer.take_events()
        facts: tuple[Fact, ...] = (MemberMoved(call, s.room, conference, seat, by),)
        return Change(tuple(diffs), facts + self._tidy(c, s.room))

    def open_separee(self, conference: str, calls: Iterable[str], by: str) -> Change:
        """`by` (its moderator, or the superuser) opens a séparée of `conference` with `calls`
        (two or more of its members; `by` itself may be one: a 1:1 consultation) and moves them
        in as ONE net change: from the first frame they hear only each other, and the rooms
        they left hear none of them. It gets the lowest free number."""
        c = self._conferences.get(conference)
        if c is None:
            raise ValueError(f"no conference {conference!r}")
        calls = tuple(dict.fromkeys(calls))
        if len(calls) < 2:
            raise ValueError("a séparée needs two or more members")
        for call in calls:
            s = self._members.get(call)
            if s is None or s.conference != conference:
                raise UnknownCall(f"{call} is not in {conference}")
            self._allow(by, Action.SEPAREE, call)
        number = next(n for n in range(1, len(c.separees) + 2) if n not in c.separees)
        room = separee_room(conference, number)
        try:
            self.mixer.room(conference)
        except UnknownRoom:              # everybody was in séparées when the main room closed
            self.mixer.open_room(conference)
        self.mixer.open_room(room, RoomKind.SEPAREE, parent=conference)
        c.separees[number] = room
        self._rooms[room] = conference
        self._in_room[room] = {}
        opened = Change((), (SepareeOpened(conference, room, number, by),))
        return opened + self._regroup(c, calls, room, by)

    def bring_back(self, room: str, by: str, calls: Iterable[str] | None = None) -> Change:
        """`by` brings the members of séparée `room` (or only `calls` of them) back to their
        conference's main room, as one net change; an emptied séparée closes."""
        conference = self._rooms.get(room)
        if conference is None or room == conference:
            raise ValueError(f"{room!r} is no séparée")
        inside = tuple(self._in_room[room])
        calls = inside if calls is None else tuple(x for x in dict.fromkeys(calls))
        for call in calls:
            if call not in self._in_room[room]:
                raise UnknownCall(f"{call} is not in {room}")
            self._allow(by, Action.SEPAREE, call)
        return self._regroup(self._conferences[conference], calls, conference, by)

    def bring_all_back(self, conference: str, by: str) -> Change:
        """Every séparée of `conference` emptied into its main room, as one net change."""
        c = self._conferences[conference]
        calls = tuple(x for room in c.separees.values() for x in self._in_room[room])
        for call in calls:
            self._allow(by, Action.SEPAREE, call)
        return self._regroup(c, calls, conference, by)

    def may(self, actor: str, action: Action, target: str) -> bool:
        if actor == target and action is not Action.SEPAREE:
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
        """Every member of `conference`, in whichever of its rooms, in joining order."""
        c = self._conferences.get(conference)
        if c is None:
            return ()
        return tuple(sorted((self._members[x] for x in c.seats.values()), key=lambda s: s.order))

    def in_room(self, room: str) -> tuple[Seat, ...]:
        """The members in one room (a main room or a séparée), in the order they came in."""
        return tuple(self._members[x] for x in self._in_room.get(room, ()))

    def count(self, room: str) -> int:
        """Members in `room` (a conference's id is its main room)."""
        return len(self._in_room.get(room, ()))

    def muted(self, call: str) -> bool:
        return self.mixer.member(call).muted

    def sizes(self) -> dict[str, int]:
        """The sizes of its tables (for the soak benchmark and, later, metrics)."""
        snap = self.mixer.snapshot()
        return {"conferences": len(self._conferences), "rooms": len(self._rooms),
                "members": len(self._members), "mixer_rooms": len(snap.rooms),
                "mixer_members": len(snap.members), "mixer_sources": len(snap.sources)}

    # ---- internals ------------------------------------------------------------------------------

    def _regroup(self, c: _Conference, calls: tuple[str, ...], room: str, by: str) -> Change:
        """`calls` (members of `c`) into its `room` as one net diff; rooms left empty close."""
        moving = [self._members[x] for x in calls if self._members[x].room != room]
        if not moving:
            return Change()
        diffs = self.mixer.move_all([s.call for s in moving], room)
        self.mixer.take_events()
        facts: tuple[Fact, ...] = ()
        for s in moving:
            self._unplace(s)
            self._place(replace(s, room=room))
            facts += (MemberMoved(s.call, s.room, room, s.seat, by),)
        for left in dict.fromkeys(s.room for s in moving):
            facts += self._tidy(c, left)
        return Change(tuple(diffs), facts)

    def _place(self, s: Seat) -> None:
        self._members[s.call] = s
        self._in_room[s.room][s.call] = None

    def _unplace(self, s: Seat) -> None:
        del self._members[s.call]
        del self._in_room[s.room][s.call]

    def _tidy(self, c: _Conference, room: str) -> tuple[Fact, ...]:
        """After a member left `room` of `c`: an empty séparée closes; a conference nobody is
        in any more closes (a standing one stays open)."""
        facts: tuple[Fact, ...] = ()
        if room != c.id and not self._in_room[room]:
            number = next(n for n, r in c.separees.items() if r == room)
            del c.separees[number]
            self._drop(room)
            facts += (SepareeClosed(c.id, room, number),)
        if not c.seats and c.kind is not ConferenceKind.STANDING:
            facts += self._close(c)            # bounded: nobody left, nothing kept
        return facts

    def _close(self, c: _Conference) -> tuple[Fact, ...]:
        facts = tuple(SepareeClosed(c.id, r, n) for n, r in sorted(c.separees.items()))
        for room in c.separees.values():
            self._drop(room)
        del self._conferences[c.id]
        self._drop(c.id)
        return facts + (ConferenceClosed(c.id),)

    def _drop(self, room: str) -> None:
        del self._rooms[room]
        del self._in_room[room]
        try:
            self.mixer.close_room(room)
        except Exception:  # noqa: BLE001 - never opened in the mixer, or sources still playing
            pass

    def _role(self, call: str) -> Role | None:
        s = self._members.get(call)
        return s.role if s is not None else None

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
