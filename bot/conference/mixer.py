"""The mixer core (pure): who hears whom, at which level — as routes and minimal diffs.

Owns: members (callers in rooms, listeners), non-caller sources (announcement, prompt and
music-on-hold players), whispers, volume steps, and the derivation of every route
`src → dst @ level` from that state. pjmedia's C conference bridge does the arithmetic; the
adapter (bot.service.voice / bot.sip.stack) applies our `Connect` / `Disconnect` / `Relevel` diffs to it and
must not decide routes itself. This module must not touch sockets, threads, clocks, samples or
pjsua2; room states live in `bot.conference.rooms`.

The pair rule (`bot.conference.pairs.MixerTables._level`) — a route `s → d` exists exactly when:
  * d is a member (participant or listener) and s is not d; and
  * s is a participant in d's room, not muted, and the room is not a WAITING room (N-1: nobody
    hears themselves; listeners are never heard by the room); or
  * s whispers to d (coaching: s → d only, independent of s's mute and listener status); or
  * s is a source playing into d's room (unless it excludes d: a join announcement is for
    the others), or a source bound to d itself;
  * and d is not deaf — except for sources bound to d (its own prompt or hold music still
    plays: "deaf + muted + own music source" is how a caller is put on hold).
Level = talk gain of s × listen gain of d (volume steps of 3 dB; 0 steps = 1.0 exactly).

Because a route depends only on the state of its two endpoints (and the fixed kind of a room),
an operation that changes the state of a set of ids can only change routes touching those ids.
Each operation therefore computes the routes incident to the ids it touches before and after
mutating, and returns the difference: minimal by construction, and O(affected routes), not
O(all routes). `routes()` derives the full set independently, room by room, as the oracle that
the property tests compare the applied diffs with. The route and diff types, the strict `apply`
and the safe ordering of a diff (`net_diff`) are `bot.conference.routes` (re-exported here).

Every operation validates first and mutates after: an illegal one raises a `MixerError` and
leaves state untouched. Room state changes (EMPTY → SINGLE → MULTI, CLOSED) are queued as
`RoomStateChanged` facts; the driver collects them with `take_events()`.
"""
from __future__ import annotations

from collections.abc import Iterable

from bot.conference.rooms import (MAX_STEP, MIN_STEP, STEP_DB, AlreadyPresent, Direction,
                       IllegalTransition, InvalidOperation, Member, MemberInfo, MixerError, Role,
                       Room, RoomInfo, RoomKind, RoomNotEmpty, RoomState, RoomStateChanged,
                       Snapshot, Source, SourceInfo, UnknownMember, UnknownRoom, UnknownSource,
                       gain)
from bot.conference.pairs import MixerTables
from bot.conference.routes import Connect, Diff, Disconnect, Relevel, Route, apply

__all__ = [
    "Mixer", "Role", "Direction", "Connect", "Disconnect", "Relevel", "Route", "Diff", "apply",
    "MemberInfo", "SourceInfo", "Snapshot", "RoomInfo", "RoomKind", "RoomState", "RoomStateChanged",
    "MixerError", "UnknownMember", "UnknownSource", "UnknownRoom", "AlreadyPresent",
    "RoomNotEmpty", "InvalidOperation", "IllegalTransition", "STEP_DB", "MIN_STEP", "MAX_STEP",
    "gain", "Room",
]


class Mixer(MixerTables):
    """The operations (see the module doc); the tables, queries and the pair rule are
    `bot.conference.pairs.MixerTables`'."""

    # ---- rooms --------------------------------------------------------------------------

    def open_room(self, name: str, kind: RoomKind = RoomKind.CONFERENCE,
                  parent: str | None = None) -> list[Diff]:
        """Open an empty room. A séparée names its parent room; a waiting room may name the
        room it queues for. (join/move/add_listener open unknown rooms as conferences.)"""
        if name in self._rooms:
            raise AlreadyPresent(f"room {name!r} is already open")
        if parent is not None and parent not in self._rooms:
            raise UnknownRoom(f"parent room {parent!r} is not open")
        if kind is RoomKind.SEPAREE and parent is None:
            raise InvalidOperation(f"séparée {name!r} needs a parent room")
        if kind is RoomKind.CONFERENCE and parent is not None:
            raise InvalidOperation(f"conference room {name!r} cannot have a parent")
        self._rooms[name] = Room(name, kind, parent)
        return []

    def close_room(self, name: str) -> list[Diff]:
        """Close an empty room (no participants, listeners, sources or open séparées)."""
        room = self._room(name)
        if not room.is_vacant():
            raise RoomNotEmpty(f"room {name!r} still has members or sources")
        children = sorted(r.name for r in self._rooms.values() if r.parent == name)
        if children:
            raise RoomNotEmpty(f"room {name!r} still has séparées {children}")
        self._record(room.change_state(RoomState.CLOSED))
        del self._rooms[name]
        return []

    # ---- members ------------------------------------------------------------------------

    def join(self, member_id: str, room: str, role: Role = Role.PARTICIPANT, *,
             muted: bool = False) -> list[Diff]:
        """A caller joins a room as a participant (the room is opened if needed); `muted` joins
        it already muted (seminar audience, a room that starts muted)."""
        self._check_new_id(member_id)
        member = Member(member_id, room, role, listening=False, muted=muted)
        return self._apply((member_id,), lambda: self._enter(member))

    def add_listener(self, member_id: str, room: str, role: Role = Role.PARTICIPANT) -> list[Diff]:
        """A member who hears the room and is heard by nobody (listen-in, seminar audience)."""
        self._check_new_id(member_id)
        member = Member(member_id, room, role, listening=True)
        return self._apply((member_id,), lambda: self._enter(member))

    def leave(self, member_id: str) -> list[Diff]:
        """The member leaves; its whispers and the sources bound to it go with it."""
        m = self._member(member_id)

        def mutate() -> None:
            self._exit(m)
            del self._members[member_id]
            for a in list(self._whispers_to.get(member_id, ())):
                self._drop_whisper(a, member_id)
            for b in list(self._whispers_from.get(member_id, ())):
                self._drop_whisper(member_id, b)
            for sid in self._member_sources.pop(member_id, {}):
                del self._sources[sid]
        return self._apply((member_id,), mutate)

    def move(self, member_id: str, room: str, *, muted: bool | None = None,
             role: Role | None = None) -> list[Diff]:
        """Move a member (participant or listener, flags kept) into another room; with `muted`
        / `role` set at the same time, as ONE net change: a member moved in muted is never
        heard there, not even between two diffs."""
        m = self._member(member_id)
        if m.room == room and (muted is None or m.muted == muted) and (role is None or m.role is role):
            return []

        def mutate() -> None:
            moving = m.room != room
            if moving:
                self._exit(m)
                m.room = room
            if muted is not None:
                m.muted = muted
            if role is not None:
                m.role = role
            if moving:
                self._enter(m)
            else:
                self._sync_talker(m)
        return self._apply((member_id,), mutate)

    def move_all(self, member_ids: Iterable[str], room: str) -> list[Diff]:
        """Move several members into `room` as ONE net change (a séparée opened or emptied):
        no route between two of them or to a room they left survives even between diffs."""
        ms = [self._member(i) for i in dict.fromkeys(member_ids)]

        def mutate() -> None:
            for m in ms:
                if m.room != room:
                    self._exit(m)
                    m.room = room
                    self._enter(m)
        return self._apply(tuple(m.id for m in ms), mutate)

    def set_listening(self, member_id: str, listening: bool) -> list[Diff]:
        """Turn a participant into a pure listener (or back) without leaving the room."""
        m = self._member(member_id)
        if m.listening == listening:
            return []

        def mutate() -> None:
            self._exit(m)
            m.listening = listening
            self._enter(m)
        return self._apply((member_id,), mutate)

    def set_muted(self, member_id: str, muted: bool) -> list[Diff]:
        return self.set_muted_all((member_id,), muted)

    def set_muted_all(self, member_ids: Iterable[str], muted: bool) -> list[Diff]:
        """Mute or unmute several members as ONE net change (a lecture's mute-all)."""
        ms = [m for m in (self._member(i) for i in dict.fromkeys(member_ids)) if m.muted != muted]

        def mutate() -> None:
            for m in ms:
                m.muted = muted
                self._sync_talker(m)
        return self._apply(tuple(m.id for m in ms), mutate) if ms else []

    def set_deaf(self, member_id: str, deaf: bool) -> list[Diff]:
        m = self._member(member_id)
        if m.deaf == deaf:
            return []
        return self._apply((member_id,), lambda: setattr(m, "deaf", deaf))

    def set_volume(self, member_id: str, steps: int,
                   direction: Direction = Direction.TALK) -> list[Diff]:
        """Set the talk (heard by others) or listen (hears all) volume, in 3 dB steps -4..+4."""
        m = self._member(member_id)
        self._check_steps(steps)
        attr = "talk_steps" if direction is Direction.TALK else "listen_steps"
        if getattr(m, attr) == steps:
            return []
        return self._apply((member_id,), lambda: setattr(m, attr, steps))

    def set_role(self, member_id: str, role: Role) -> list[Diff]:
        """Roles decide permissions elsewhere; they never change routes."""
        self._member(member_id).role = role
        return []

    # ---- whispers -----------------------------------------------------------------------

    def whisper(self, a: str, b: str) -> list[Diff]:
        """From now on b hears a, wherever both are (coaching: a → b only)."""
        self._member(a)
        self._member(b)
        if a == b:
            raise InvalidOperation(f"{a!r} cannot whisper to itself")
        if b in self._whispers_from.get(a, ()):
            return []

        def mutate() -> None:
            self._whispers_from.setdefault(a, {})[b] = None
            self._whispers_to.setdefault(b, {})[a] = None
        return self._apply((a,), mutate)

    def end_whisper(self, a: str, b: str) -> list[Diff]:
        self._member(a)
        self._member(b)
        if b not in self._whispers_from.get(a, ()):
            return []
        return self._apply((a,), lambda: self._drop_whisper(a, b))

    # ---- non-caller sources -------------------------------------------------------------

    def add_source(self, source_id: str, *, room: str | None = None, member: str | None = None,
                   steps: int = 0, exclude: Iterable[str] = ()) -> list[Diff]:
        """A player port: into an open room (announcements; not to the members in `exclude`)
        or to one member (its prompt or music-on-hold). Exactly one of room / member."""
        self._check_new_id(source_id)
        if (room is None) == (member is None):
            raise InvalidOperation("a source plays into exactly one of: a room, a member")
        if room is not None:
            self._room(room)
        else:
            self._member(member)
        self._check_steps(steps)

        def mutate() -> None:
            self._sources[source_id] = Source(source_id, room, member, steps, frozenset(exclude))
            if room is not None:
                self._rooms[room].sources[source_id] = None
            else:
                self._member_sources.setdefault(member, {})[source_id] = None
        return self._apply((source_id,), mutate)

    def remove_source(self, source_id: str) -> list[Diff]:
        s = self._source(source_id)

        def mutate() -> None:
            del self._sources[source_id]
            if s.room is not None:
                del self._rooms[s.room].sources[source_id]
            else:
                bound = self._member_sources[s.member]
                del bound[source_id]
                if not bound:
                    del self._member_sources[s.member]
        return self._apply((source_id,), mutate)

    # ---- state helpers (called only from mutate closures, after validation) --------------

    def _enter(self, m: Member) -> None:
        if m.room not in self._rooms:
            self._rooms[m.room] = Room(m.room)
        self._members[m.id] = m
        room = self._rooms[m.room]
        if m.listening:
            room.listeners[m.id] = None
        else:
            room.participants[m.id] = None
            self._sync_talker(m)
            self._record(room.settle())

    def _exit(self, m: Member) -> None:
        room = self._rooms[m.room]
        room.listeners.pop(m.id, None)
        room.talkers.pop(m.id, None)
        if m.id in room.participants:
            del room.participants[m.id]
            self._record(room.settle())

    def _sync_talker(self, m: Member) -> None:
        room = self._rooms[m.room]
        if m.listening or m.muted:
            room.talkers.pop(m.id, None)
        else:
            room.talkers[m.id] = None

    def _drop_whisper(self, a: str, b: str) -> None:
        for index, key, other in ((self._whispers_from, a, b), (self._whispers_to, b, a)):
            del index[key][other]
            if not index[key]:
                del index[key]

    def _record(self, event: RoomStateChanged | None) -> None:
        if event is not None:
            self._events.append(event)
