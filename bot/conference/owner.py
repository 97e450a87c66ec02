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
from dataclasses import replace

from bot.conference.facts import (Change, ConferenceClosed, ConferenceEnded,  # noqa: F401
                                  ConferenceLocked, Fact,
                                  LockChanged, MemberJoined, MemberLeft, MemberMoved,
                                  MemberMuted, MemberNamed, MemberRemoved, MutedByModerator,
                                  NotAllowed, RoleChanged, RoomFull, Seat, SepareeClosed,
                                  SepareeOpened, UnknownCall, separee_room)
from bot.conference.mixer import Direction, Role, RoomKind, UnknownRoom
from bot.conference.state import (HOLDING, LAST_JOINED, ConferenceKind,  # noqa: F401
                                  ConferenceState, _Conference, _free_seat)


class Action(enum.Enum):
    MUTE = "mute"
    VOLUME = "volume"
    NAME = "name"
    MOVE = "move"
    LEAVE = "leave"
    SEPAREE = "separee"       # open a séparée, bring members back
    REMOVE = "remove"


class Conferences(ConferenceState):
    """Every operation on conference state (see the module doc); the tables and queries are
    `ConferenceState`'s."""

    def open(self, conference: str, kind: ConferenceKind, limit: int, *,
             self_return: bool | None = None, self_unmute: bool | None = None) -> None:
        """Open a conference, or update its limit (a booking change, a config reload) and its
        rules (`self_return`: members may leave a séparée on their own; `self_unmute`: a
        participant a moderator muted may unmute itself)."""
        c = self._conferences.get(conference)
        if c is None:
            c = self._conferences[conference] = _Conference(conference, kind, limit)
            self._rooms[conference] = conference
            self._in_room[conference] = {}
        c.limit = limit
        if self_return is not None:
            c.self_return = self_return
        if self_unmute is not None:
            c.self_unmute = self_unmute

    def set_limit(self, conference: str, limit: int) -> None:
        """A new limit for an open conference (a booking change, a config reload); the members
        already inside stay."""
        c = self._conferences.get(conference)
        if c is not None:
            c.limit = limit

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
        if c.locked and role is Role.PARTICIPANT:
            return Change((), (ConferenceLocked(call, conference),))
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
        self._muted_by.pop(call, None)
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
        if (not muted and by == call and call in self._muted_by
                and self._role(call) is Role.PARTICIPANT
                and not self._conferences[self._members[call].conference].self_unmute):
            raise MutedByModerator(f"{call} was muted by {self._muted_by[call]}")
        return self._mute((call,), muted, by)

    def mute_all(self, conference: str, muted: bool, by: str) -> Change:
        """`by` (its moderator, or the superuser) mutes (a lecture) or unmutes every participant
        of `conference` in all its rooms — moderators keep their voice — as ONE net diff."""
        c = self._conferences[conference]
        self._moderates(by, conference, "mute")
        calls = tuple(x for x in c.seats.values() if self._members[x].role is Role.PARTICIPANT)
        return self._mute(calls, muted, by)

    def lock(self, conference: str, locked: bool, by: str) -> Change:
        """`by` (its moderator, or the superuser) locks `conference`: participants may not join."""
        c = self._conferences[conference]
        self._moderates(by, conference, "lock")
        if c.locked == locked:
            return Change()
        c.locked = locked
        return Change((), (LockChanged(conference, locked, by),))

    def remove(self, call: str, by: str) -> Change:
        """`by` removes `call` from its conference (back to the holding room: its flow says
        goodbye and hangs up)."""
        s = self._members.get(call)
        if s is None:
            raise UnknownCall(call)
        if by == call:
            raise NotAllowed(f"{by} cannot remove itself (it leaves)")
        self._allow(by, Action.REMOVE, call)
        return Change((), (MemberRemoved(call, s.conference, by),)) + self.leave(call)

    def promote(self, call: str, role: Role, who: str) -> Change:
        """The service checked `call`'s personal PIN (`[[moderators]]`): from now on it is a
        moderator (or the superuser, OPERATOR) of its conference. Never a caller's own Ask."""
        self._seated(call)
        s = self._members[call]
        self._members[call] = replace(s, role=role)
        return Change(tuple(self.mixer.set_role(call, role)), (RoleChanged(call, role, who),))

    def end(self, conference: str, by: str) -> Change:
        """`by` (its moderator, or the superuser) ends `conference` for everyone at once: every
        member of every room back to the holding room (one run of disconnects), the conference
        closed; the facts tell each member's flow to say goodbye."""
        c = self._conferences[conference]
        self._moderates(by, conference, "end")
        calls = tuple(c.seats.values())
        out = Change((), (ConferenceEnded(conference, by, calls),))
        for call in calls:
            out += self.leave(call)
        return out

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

    def _mute(self, calls: tuple[str, ...], muted: bool, by: str) -> Change:
        for call in calls:
            if muted and by != call:
                self._muted_by[call] = by
            elif not muted:
                self._muted_by.pop(call, None)
        changing = tuple(x for x in calls if self.mixer.member(x).muted != muted)
        diffs = self.mixer.set_muted_all(changing, muted)
        return Change(tuple(diffs), tuple(MemberMuted(x, muted, by) for x in changing))

    def _moderates(self, by: str, conference: str, what: str) -> None:
        """`by` is the superuser, or a moderator seated in `conference`."""
        role = self._role(by)
        if not (role is Role.OPERATOR or (role is Role.MODERATOR
                                          and self._members[by].conference == conference)):
            raise NotAllowed(f"{by} may not {what} {conference}")

    def _allow(self, actor: str, action: Action, target: str) -> None:
        if not self.may(actor, action, target):
            raise NotAllowed(f"{actor} may not {action.value} {target}")
