"""The mixer core: rooms, routes and minimal diffs (pure; milliseconds)."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.conference.mixer import (AlreadyPresent, Connect, Direction, Disconnect, IllegalTransition,
                       InvalidOperation, Mixer, MixerError, Relevel, Role, Room, RoomKind,
                       RoomNotEmpty, RoomState, RoomStateChanged, Route, UnknownMember,
                       UnknownRoom, UnknownSource, apply, gain)


def pairs(m: Mixer) -> set[tuple[str, str]]:
    return {(r.src, r.dst) for r in m.routes()}


def n_minus_one(ids) -> set[tuple[str, str]]:
    return {(a, b) for a, b in itertools.permutations(ids, 2)}


def room_with(*ids: str, room: str = "main") -> Mixer:
    m = Mixer()
    for i in ids:
        m.join(i, room)
    return m


# ---- N-1, isolation, roles of routes -----------------------------------------------------

def test_everyone_hears_everyone_else_but_themselves():
    m = room_with("a", "b", "c", "d")
    assert pairs(m) == n_minus_one("abcd")
    assert all(r.level == 1.0 for r in m.routes())


def test_rooms_are_isolated_exactly():
    m = room_with("a", "b", "c")
    for i in ("x", "y"):
        m.join(i, "other")
    assert pairs(m) == n_minus_one("abc") | n_minus_one("xy")


def test_join_connects_the_newcomer_both_ways_and_nothing_else():
    m = room_with("a", "b")
    diffs = m.join("c", "main")
    assert set(diffs) == {Connect("a", "c", 1.0), Connect("b", "c", 1.0),
                          Connect("c", "a", 1.0), Connect("c", "b", 1.0)}


def test_leave_disconnects_exactly_the_leavers_routes():
    m = room_with("a", "b", "c")
    assert set(m.leave("b")) == {Disconnect("a", "b"), Disconnect("b", "a"),
                                 Disconnect("c", "b"), Disconnect("b", "c")}
    assert pairs(m) == n_minus_one("ac")


def test_muted_member_is_heard_by_nobody_but_still_hears():
    m = room_with("a", "b", "c")
    assert set(m.set_muted("a", True)) == {Disconnect("a", "b"), Disconnect("a", "c")}
    assert pairs(m) == n_minus_one("bc") | {("b", "a"), ("c", "a")}
    assert set(m.set_muted("a", False)) == {Connect("a", "b", 1.0), Connect("a", "c", 1.0)}


def test_deaf_member_gets_no_incoming_routes_but_is_still_heard():
    m = room_with("a", "b", "c")
    m.set_deaf("a", True)
    assert pairs(m) == n_minus_one("bc") | {("a", "b"), ("a", "c")}


def test_listener_hears_the_room_and_is_heard_by_nobody():
    m = room_with("a", "b")
    diffs = m.add_listener("sup", "main", Role.MODERATOR)
    assert set(diffs) == {Connect("a", "sup", 1.0), Connect("b", "sup", 1.0)}
    assert not any(r.src == "sup" for r in m.routes())
    assert m.room("main").state is RoomState.MULTI  # listeners do not count as participants


def test_seminar_of_a_thousand_listeners_costs_three_thousand_routes_not_a_million():
    m = Mixer()
    for s in ("s1", "s2", "s3"):
        m.join(s, "seminar")
    for i in range(1000):
        m.add_listener(f"l{i}", "seminar")
    assert len(m.routes()) == 3 * 1000 + 3 * 2   # speakers to every listener, and to each other


def test_seminar_of_muted_participants_costs_the_same():
    m = Mixer()
    for s in ("s1", "s2", "s3"):
        m.join(s, "seminar")
    for i in range(1000):
        assert m.join(f"p{i}", "seminar", muted=True) == [
            Connect(s, f"p{i}", 1.0) for s in ("s1", "s2", "s3")]
    assert len(m.routes()) == 3 * 1002


def test_waiting_room_members_hear_its_music_but_not_each_other():
    m = Mixer()
    m.open_room("main")
    m.open_room("queue", RoomKind.WAITING, parent="main")
    m.join("a", "queue")
    m.join("b", "queue")
    m.add_source("moh", room="queue")
    assert pairs(m) == {("moh", "a"), ("moh", "b")}


def test_whisper_reaches_only_its_target_across_rooms():
    m = room_with("mod", "c1", "c2")
    m.add_listener("op", "main", Role.OPERATOR)
    m.join("elsewhere", "other")
    diffs = m.whisper("op", "mod")
    assert diffs == [Connect("op", "mod", 1.0)]
    assert {d for s, d in pairs(m) if s == "op"} == {"mod"}
    m.move("op", "other")  # the coach leaves the room; coaching continues
    assert ("op", "mod") in pairs(m) and ("op", "elsewhere") not in pairs(m)
    assert m.end_whisper("op", "mod") == [Disconnect("op", "mod")]


def test_whisper_from_a_room_peer_adds_no_second_route_and_survives_mute():
    m = room_with("a", "b", "c")
    assert m.whisper("a", "b") == []            # b already hears a in the room
    assert m.set_muted("a", True) == [Disconnect("a", "c")]
    assert {d for s, d in pairs(m) if s == "a"} == {"b"}


def test_deaf_member_keeps_its_own_hold_music_but_loses_room_announcements():
    m = room_with("a", "b")
    m.add_source("ann", room="main")
    m.add_source("hold-a", member="a")
    diffs = m.set_deaf("a", True)
    assert set(diffs) == {Disconnect("b", "a"), Disconnect("ann", "a")}
    assert {s for s, d in pairs(m) if d == "a"} == {"hold-a"}


def test_member_source_follows_its_member_and_goes_when_the_member_leaves():
    m = room_with("a", "b")
    m.add_source("prompt-a", member="a")
    m.move("a", "sep")
    assert ("prompt-a", "a") in pairs(m)
    assert Disconnect("prompt-a", "a") in m.leave("a")
    with pytest.raises(UnknownSource):
        m.remove_source("prompt-a")


def test_room_source_reaches_participants_and_listeners():
    m = room_with("a", "b")
    m.add_listener("l", "main")
    assert set(m.add_source("ann", room="main")) == {
        Connect("ann", "a", 1.0), Connect("ann", "b", 1.0), Connect("ann", "l", 1.0)}
    assert set(m.remove_source("ann")) == {
        Disconnect("ann", "a"), Disconnect("ann", "b"), Disconnect("ann", "l")}


def test_volume_steps_relevel_only_the_members_routes():
    m = room_with("a", "b", "c")
    diffs = m.set_volume("a", 2)
    assert set(diffs) == {Relevel("a", "b", gain(2)), Relevel("a", "c", gain(2))}
    diffs = m.set_volume("b", -1, Direction.LISTEN)
    assert set(diffs) == {Relevel("a", "b", gain(2) * gain(-1)), Relevel("c", "b", gain(-1))}
    assert gain(2) == pytest.approx(10 ** (6 / 20)) and gain(0) == 1.0


def test_move_changes_rooms_and_room_states():
    m = room_with("a", "b")
    m.take_events()
    m.move("b", "sep")
    assert pairs(m) == set()
    assert m.take_events() == [RoomStateChanged("main", RoomState.MULTI, RoomState.SINGLE),
                               RoomStateChanged("sep", RoomState.EMPTY, RoomState.SINGLE)]


def test_separee_carries_its_parent_and_closes_only_when_vacant():
    m = room_with("mod", "c1", "c2")
    m.open_room("sep1", RoomKind.SEPAREE, parent="main")
    m.move("c1", "sep1")
    m.move("mod", "sep1")
    assert m.room("sep1").parent == "main" and m.room("sep1").state is RoomState.MULTI
    assert pairs(m) == n_minus_one(["c1", "mod"])
    with pytest.raises(RoomNotEmpty):
        m.close_room("sep1")
    with pytest.raises(RoomNotEmpty):
        m.close_room("main")  # it has a séparée open
    m.move("c1", "main")
    m.move("mod", "main")
    m.take_events()
    m.close_room("sep1")
    assert m.take_events() == [RoomStateChanged("sep1", RoomState.EMPTY, RoomState.CLOSED)]
    with pytest.raises(UnknownRoom):
        m.room("sep1")


def test_room_state_walks_empty_single_multi_and_back():
    m = Mixer()
    m.join("a", "r")
    m.join("b", "r")
    m.join("c", "r")
    m.leave("a")
    m.leave("b")
    m.leave("c")
    assert [(e.old, e.new) for e in m.take_events()] == [
        (RoomState.EMPTY, RoomState.SINGLE), (RoomState.SINGLE, RoomState.MULTI),
        (RoomState.MULTI, RoomState.SINGLE), (RoomState.SINGLE, RoomState.EMPTY)]
    assert m.take_events() == []


def test_room_change_state_rejects_an_illegal_jump_and_keeps_its_state():
    room = Room("r")
    with pytest.raises(IllegalTransition):
        room.change_state(RoomState.MULTI)
    assert room.state is RoomState.EMPTY
    assert room.change_state(RoomState.SINGLE) == RoomStateChanged("r", RoomState.EMPTY,
                                                                   RoomState.SINGLE)
    with pytest.raises(IllegalTransition):
        room.change_state(RoomState.CLOSED)
    assert room.state is RoomState.SINGLE


# ---- illegal operations raise and change nothing -----------------------------------------

ILLEGAL = [
    ("join twice", lambda m: m.join("a", "other"), AlreadyPresent),
    ("listener with a member's id", lambda m: m.add_listener("b", "main"), AlreadyPresent),
    ("source with a member's id", lambda m: m.add_source("a", room="main"), AlreadyPresent),
    ("member with a source's id", lambda m: m.join("ann", "main"), AlreadyPresent),
    ("leave unknown", lambda m: m.leave("zz"), UnknownMember),
    ("mute unknown", lambda m: m.set_muted("zz", True), UnknownMember),
    ("move unknown", lambda m: m.move("zz", "main"), UnknownMember),
    ("whisper to unknown", lambda m: m.whisper("a", "zz"), UnknownMember),
    ("whisper to self", lambda m: m.whisper("a", "a"), InvalidOperation),
    ("volume out of range", lambda m: m.set_volume("a", 5), InvalidOperation),
    ("source into unknown room", lambda m: m.add_source("s", room="nope"), UnknownRoom),
    ("source for unknown member", lambda m: m.add_source("s", member="zz"), UnknownMember),
    ("source with two targets", lambda m: m.add_source("s", room="main", member="a"),
     InvalidOperation),
    ("remove unknown source", lambda m: m.remove_source("zz"), UnknownSource),
    ("open an open room", lambda m: m.open_room("main"), AlreadyPresent),
    ("séparée without parent", lambda m: m.open_room("s", RoomKind.SEPAREE), InvalidOperation),
    ("close occupied room", lambda m: m.close_room("main"), RoomNotEmpty),
    ("close unknown room", lambda m: m.close_room("nope"), UnknownRoom),
]


@pytest.mark.parametrize("name,op,error", ILLEGAL, ids=[i[0] for i in ILLEGAL])
def test_illegal_operation_raises_and_leaves_state_unchanged(name, op, error):
    m = room_with("a", "b")
    m.add_source("ann", room="main")
    m.set_muted("b", True)
    before = (m.snapshot(), m.routes())
    m.take_events()
    with pytest.raises(error) as exc:
        op(m)
    assert isinstance(exc.value, MixerError) and str(exc.value)
    assert (m.snapshot(), m.routes()) == before
    assert m.take_events() == []


def test_no_op_operations_yield_no_diff():
    m = room_with("a", "b")
    m.whisper("a", "b")
    assert m.set_muted("a", False) == []
    assert m.set_deaf("a", False) == []
    assert m.set_volume("a", 0) == []
    assert m.move("a", "main") == []
    assert m.whisper("a", "b") == []
    assert m.end_whisper("b", "a") == []
    assert m.set_role("a", Role.MODERATOR) == []
    assert m.set_listening("a", False) == []


# ---- the property: diffs are minimal and replay to routes() ------------------------------

IDS = ["m0", "m1", "m2", "m3"]
ROOMS = ["r0", "r1"]
SOURCES = ["s0", "s1"]
member = st.sampled_from(IDS)
room = st.sampled_from(ROOMS)
flag = st.booleans()
OPS = st.one_of(
    st.tuples(st.just("join"), member, room, st.sampled_from(list(Role))),
    st.tuples(st.just("join_muted"), member, room),
    st.tuples(st.just("add_listener"), member, room),
    st.tuples(st.just("leave"), member),
    st.tuples(st.just("move"), member, room),
    st.tuples(st.just("set_muted"), member, flag),
    st.tuples(st.just("set_deaf"), member, flag),
    st.tuples(st.just("set_listening"), member, flag),
    st.tuples(st.just("set_volume"), member, st.integers(-5, 5), st.sampled_from(list(Direction))),
    st.tuples(st.just("whisper"), member, member),
    st.tuples(st.just("end_whisper"), member, member),
    st.tuples(st.just("source_room"), st.sampled_from(SOURCES), room),
    st.tuples(st.just("source_member"), st.sampled_from(SOURCES), member),
    st.tuples(st.just("remove_source"), st.sampled_from(SOURCES)),
    st.tuples(st.just("open_waiting"), room),
    st.tuples(st.just("close_room"), room),
)


def run(m: Mixer, op: tuple):
    name, *args = op
    match name:
        case "source_room":
            return m.add_source(args[0], room=args[1])
        case "source_member":
            return m.add_source(args[0], member=args[1])
        case "join_muted":
            return m.join(args[0], args[1], muted=True)
        case "open_waiting":
            return m.open_room(args[0], RoomKind.WAITING)
        case _:
            return getattr(m, name)(*args)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, min_size=10, max_size=60))
def test_diffs_applied_in_order_reproduce_routes_and_are_minimal(ops):
    m = Mixer()
    tracked: frozenset[Route] = frozenset()
    for op in ops:
        before = (m.snapshot(), m.routes())
        try:
            diffs = run(m, op)
        except MixerError:
            assert (m.snapshot(), m.routes()) == before, f"{op} failed but changed state"
            continue
        assert len({(d.src, d.dst) for d in diffs}) == len(diffs), f"{op}: pair diffed twice"
        tracked = apply(tracked, diffs)  # strict: raises on a redundant diff
        assert tracked == m.routes(), f"after {op}"
        assert run_again_is_noop(m, op)


def run_again_is_noop(m: Mixer, op: tuple) -> bool:
    """Setting the same value again (a no-op) yields no diff and changes nothing."""
    if op[0] not in {"move", "set_muted", "set_deaf", "set_listening", "set_volume", "whisper",
                     "end_whisper"}:
        return True
    before = (m.snapshot(), m.routes())
    return run(m, op) == [] and (m.snapshot(), m.routes()) == before


@settings(max_examples=100, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_room_states_always_match_participant_counts(ops):
    m = Mixer()
    for op in ops:
        try:
            run(m, op)
        except MixerError:
            pass
    counts = {1: RoomState.SINGLE, 0: RoomState.EMPTY}
    for info in m.snapshot().rooms:
        assert info.state is counts.get(len(info.participants), RoomState.MULTI)
        assert not set(info.participants) & set(info.listeners)


def test_apply_rejects_redundant_diffs():
    r = frozenset({Route("a", "b", 1.0)})
    with pytest.raises(ValueError):
        apply(r, [Connect("a", "b", 1.0)])
    with pytest.raises(ValueError):
        apply(r, [Disconnect("b", "a")])
    with pytest.raises(ValueError):
        apply(r, [Relevel("a", "b", 1.0)])
    assert apply(r, [Relevel("a", "b", 0.5)]) == {Route("a", "b", 0.5)}
