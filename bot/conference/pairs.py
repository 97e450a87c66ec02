"""The mixer core's tables, queries and pair rule (pure; split out of `bot.conference.mixer`
for size — one core).

Owns `MixerTables`: rooms, members, sources and whispers as the mixer operations leave them;
the pair rule (`_level`: whether and how loud `s` is heard by `d`), the incident routes of a set
of ids and `_apply` (routes before and after a mutation → the net diff); the queries (`routes`,
the independent oracle, `snapshot`, `take_events`) and the lookups that raise the mixer's
errors. Must not mutate state outside `_apply`'s closures: the operations are `Mixer`'s.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from bot.conference.rooms import (GAIN_BY_STEP, MAX_STEP, MIN_STEP, AlreadyPresent,
                                  InvalidOperation, Member, MemberInfo, Room, RoomInfo, RoomKind,
                                  RoomStateChanged, Snapshot, Source, UnknownMember, UnknownRoom,
                                  UnknownSource)
from bot.conference.routes import Diff, Pairs, Route, net_diff


class MixerTables:
    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._members: dict[str, Member] = {}
        self._sources: dict[str, Source] = {}
        self._member_sources: dict[str, dict[str, None]] = {}   # member → sources bound to it
        self._whispers_from: dict[str, dict[str, None]] = {}    # a → {b}: a whispers to b
        self._whispers_to: dict[str, dict[str, None]] = {}      # b → {a}
        self._events: list[RoomStateChanged] = []

    # ---- queries ------------------------------------------------------------------------

    def routes(self) -> frozenset[Route]:
        """Every route implied by the state, derived room by room from scratch."""
        out: Pairs = {}
        for room in self._rooms.values():
            for d in room.members():
                candidates = [*room.participants, *room.sources, *self._whispers_to.get(d, ()),
                              *self._member_sources.get(d, ())]
                for s in candidates:
                    level = self._level(s, d)
                    if level is not None:
                        out[(s, d)] = level
        return frozenset(Route(s, d, lv) for (s, d), lv in out.items())

    def routes_of(self, member_id: str) -> frozenset[Route]:
        """The routes from or to one member (O(its routes), not O(all routes))."""
        return frozenset(Route(s, d, lv) for (s, d), lv in self._incident((member_id,)).items())

    def has_source(self, source_id: str) -> bool:
        return source_id in self._sources

    def member(self, member_id: str) -> MemberInfo:
        return self._member(member_id).info()

    def room(self, name: str) -> RoomInfo:
        return self._room(name).info()

    def snapshot(self) -> Snapshot:
        whispers = tuple(sorted((a, b) for a, bs in self._whispers_from.items() for b in bs))
        return Snapshot(
            tuple(self._rooms[n].info() for n in sorted(self._rooms)),
            tuple(self._members[i].info() for i in sorted(self._members)),
            tuple(self._sources[i].info() for i in sorted(self._sources)),
            whispers)

    def take_events(self) -> list[RoomStateChanged]:
        """The room state changes since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # ---- the pair rule and the diff machinery -------------------------------------------

    def _level(self, s: str, d: str) -> float | None:
        dst = self._members.get(d)
        if dst is None or s == d:
            return None
        listen = GAIN_BY_STEP[dst.listen_steps]
        src = self._members.get(s)
        if src is None:
            source = self._sources.get(s)
            if source is None:
                return None
            if source.member == d or (source.room == dst.room and not dst.deaf
                                      and d not in source.exclude):
                return GAIN_BY_STEP[source.steps] * listen
            return None
        if dst.deaf:
            return None
        heard_in_room = (src.room == dst.room and not src.listening and not src.muted
                         and self._rooms[dst.room].kind is not RoomKind.WAITING)
        if heard_in_room or d in self._whispers_from.get(s, ()):
            return GAIN_BY_STEP[src.talk_steps] * listen
        return None

    def _incident(self, ids: Iterable[str]) -> Pairs:
        """All current routes with an endpoint in `ids` (candidates filtered by the pair rule)."""
        out: Pairs = {}

        def consider(s: str, d: str) -> None:
            level = self._level(s, d)
            if level is not None:
                out[(s, d)] = level

        for x in ids:
            if (m := self._members.get(x)) is not None:
                room = self._rooms[m.room]
                for s in (*room.talkers, *room.sources, *self._whispers_to.get(x, ()),
                          *self._member_sources.get(x, ())):
                    consider(s, x)
                if x in room.talkers:
                    for d in room.members():
                        consider(x, d)
                for d in self._whispers_from.get(x, ()):
                    consider(x, d)
            elif (src := self._sources.get(x)) is not None:
                targets = [src.member] if src.member is not None else self._rooms[src.room].members()
                for d in targets:
                    consider(x, d)
        return out

    def _apply(self, touched: tuple[str, ...], mutate: Callable[[], None]) -> list[Diff]:
        before = self._incident(touched)
        mutate()
        return net_diff(before, self._incident(touched))   # disconnects first (routes.py)

    # ---- validation -----------------------------------------------------------------------

    def _check_new_id(self, node_id: str) -> None:
        if node_id in self._members:
            raise AlreadyPresent(f"{node_id!r} is already in room {self._members[node_id].room!r}")
        if node_id in self._sources:
            raise AlreadyPresent(f"{node_id!r} is already a source")

    @staticmethod
    def _check_steps(steps: int) -> None:
        if not isinstance(steps, int) or not MIN_STEP <= steps <= MAX_STEP:
            raise InvalidOperation(f"volume steps must be {MIN_STEP}..{MAX_STEP}, not {steps!r}")

    def _member(self, member_id: str) -> Member:
        try:
            return self._members[member_id]
        except KeyError:
            raise UnknownMember(f"no member {member_id!r}") from None

    def _source(self, source_id: str) -> Source:
        try:
            return self._sources[source_id]
        except KeyError:
            raise UnknownSource(f"no source {source_id!r}") from None

    def _room(self, name: str) -> Room:
        try:
            return self._rooms[name]
        except KeyError:
            raise UnknownRoom(f"no open room {name!r}") from None
