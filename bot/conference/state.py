"""The state of the owner of conference state (pure): its tables, what anyone may read of them,
and the bookkeeping every operation shares (placing a member in a room, closing an emptied
séparée or conference). The operations that change it, and who may make them, are
`bot.conference.owner.Conferences` (a subclass): nothing else writes these tables.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bot.conference.facts import ConferenceClosed, Fact, Seat, SepareeClosed, UnknownCall
from bot.conference.mixer import Mixer, Role, RoomKind, UnknownMember

HOLDING = "~ivr"          # callers in the IVR: a WAITING room, nobody hears anybody
LAST_JOINED = 0           # the seat that means "whoever joined last"


class ConferenceKind(enum.Enum):
    BOOKED = "booked"         # a booking's conference, named by its reference (closed when it
                              # empties; the next caller with its PIN opens it again)
    STANDING = "standing"     # a [[rooms]] room, open while the service runs
    ADHOC = "adhoc"           # a 3PTY or operator meeting: gone when its last member leaves


# ---- state ------------------------------------------------------------------------------------

@dataclass
class _Conference:
    id: str
    kind: ConferenceKind
    limit: int                     # members in all its rooms (its lines)
    self_return: bool = False      # members may leave a séparée on their own
    self_unmute: bool = True       # a participant a moderator muted may unmute itself
    locked: bool = False           # participants may not join (moderators still may)
    seats: dict[int, str] = field(default_factory=dict)       # seat → call, in any of its rooms
    separees: dict[int, str] = field(default_factory=dict)    # number → room id


class ConferenceState:

    def __init__(self) -> None:
        self.mixer = Mixer()
        self.mixer.open_room(HOLDING, RoomKind.WAITING)
        self._conferences: dict[str, _Conference] = {}
        self._rooms: dict[str, str] = {}          # room → its conference (main rooms included)
        self._members: dict[str, Seat] = {}       # call → its seat (only calls in a conference)
        self._in_room: dict[str, dict[str, None]] = {}   # room → its members, in joining order
        self._muted_by: dict[str, str] = {}       # call → the moderator who muted it
        self._order = 0

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

    def locked(self, conference: str) -> bool:
        c = self._conferences.get(conference)
        return c is not None and c.locked

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
