"""The one owner of conference state (bot.conference.owner), as a specification: seats, limits,
permissions, facts, and net route changes that never connect anyone for a moment — the last
checked as a property over random operation sequences from random roles, with the bridge
modelled as applying each diff batch reordered (disconnects, re-levels, connects) but NOT
netted — the core's diffs must be net on their own — and the numpy reference mixer as the
oracle of who hears whom. (The adapter also nets every batch: bot.conference.reconcile.net.)"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from bot.conference import refmix
from bot.conference.mixer import Connect, Direction, Disconnect, Relevel, Role
from bot.conference.owner import (LAST_JOINED, Change, ConferenceClosed, ConferenceKind,
                                  Conferences, MemberJoined, MemberLeft, MemberMuted, MemberNamed,
                                  NotAllowed, RoomFull)

CONF = "CB-7K2Q9"


def owner_with(*calls: str, limit: int = 10, kind=ConferenceKind.BOOKED) -> Conferences:
    c = Conferences()
    c.open(CONF, kind, limit)
    for call in calls:
        c.arrive(call)
    return c


def in_safe_order(diffs):
    order = {Disconnect: 0, Relevel: 1, Connect: 2}
    return sorted(diffs, key=lambda d: order[type(d)])


def pairs(routes) -> set[tuple[str, str]]:
    return {(r.src, r.dst) for r in routes}


# ---- seats, limits and facts ------------------------------------------------------------------

def test_joining_members_get_the_lowest_free_seat_kept_while_they_stay():
    c = owner_with("a", "b", "x")
    assert c.join("a", CONF).facts == (MemberJoined("a", CONF, Role.PARTICIPANT, 1, 1),)
    assert c.join("b", CONF).facts[0].seat == 2
    c.leave("a")
    assert c.join("x", CONF).facts[0].seat == 1            # a's seat is free again
    assert c.seat_of("b").seat == 2                        # b keeps its seat
    assert c.find(CONF, 2).call == "b" and c.find(CONF, LAST_JOINED).call == "x"


def test_a_full_conference_refuses_and_changes_nothing():
    c = owner_with("a", "b", limit=1)
    c.join("a", CONF)
    before = c.mixer.routes()
    out = c.join("b", CONF)
    assert out == Change((), (RoomFull("b", CONF, 1, 1),))
    assert c.mixer.routes() == before and c.seat_of("b") is None
    c.open(CONF, ConferenceKind.BOOKED, 2)                 # the booking grew: the limit follows
    assert isinstance(c.join("b", CONF).facts[0], MemberJoined)


def test_joining_muted_is_one_net_change_that_never_connects_the_joiner_as_a_talker():
    c = owner_with("a", "b")
    c.join("a", CONF)
    out = c.join("b", CONF, muted=True)
    assert all(not (isinstance(d, Connect) and d.src == "b") for d in out.diffs)
    assert Connect("a", "b", 1.0) in out.diffs             # b hears a
    assert MemberMuted("b", True, "b") in out.facts


def test_leaving_says_who_left_with_its_name_and_an_adhoc_conference_closes_when_empty():
    c = Conferences()
    c.open("3pty-1", ConferenceKind.ADHOC, 3)
    c.arrive("a")
    c.join("a", "3pty-1", name="/names/a.wav")
    out = c.leave("a")
    assert out.facts == (MemberLeft("a", "3pty-1", 1, "/names/a.wav"), ConferenceClosed("3pty-1"))
    assert "3pty-1" not in c.conferences()


def test_a_booked_conference_closes_when_it_empties_and_opens_again_for_the_next_caller():
    c = owner_with("a", "b")
    c.join("a", CONF)
    assert c.gone("a").facts[-1] == ConferenceClosed(CONF) and CONF not in c.conferences()
    assert c.sizes() == {"conferences": 0, "members": 0, "mixer_rooms": 1,     # the holding room
                         "mixer_members": 1, "mixer_sources": 0}               # b, not yet in
    c.open(CONF, ConferenceKind.BOOKED, 5)
    assert c.join("b", CONF).facts[0].seat == 1


def test_a_standing_room_stays_open_and_its_limit_follows_a_reload():
    c = owner_with("a", "b", kind=ConferenceKind.STANDING, limit=1)
    c.join("a", CONF)
    c.leave("a")
    assert CONF in c.conferences()
    c.join("a", CONF)
    assert isinstance(c.join("b", CONF).facts[0], RoomFull)
    c.set_limit(CONF, 2)
    assert isinstance(c.join("b", CONF).facts[0], MemberJoined)


# ---- permissions --------------------------------------------------------------------------------

def test_a_participant_may_mute_only_itself():
    c = owner_with("a", "b")
    c.join("a", CONF)
    c.join("b", CONF)
    with pytest.raises(NotAllowed):
        c.set_muted("b", True, by="a")
    assert not c.muted("b")
    assert c.set_muted("a", True).facts == (MemberMuted("a", True, "a"),)


def test_a_moderator_acts_within_its_conference_and_the_superuser_everywhere():
    c = owner_with("m", "p", "q", "op")
    c.open("other", ConferenceKind.BOOKED, 5)
    c.join("m", CONF, Role.MODERATOR)
    c.join("p", CONF)
    c.join("q", "other")
    c.join("op", "other", Role.OPERATOR)
    assert c.set_muted("p", True, by="m").facts == (MemberMuted("p", True, "m"),)
    with pytest.raises(NotAllowed):
        c.set_muted("q", True, by="m")                     # another conference
    assert c.set_muted("p", False, by="op").facts == (MemberMuted("p", False, "op"),)
    assert c.name("p", "/names/p.wav", by="m").facts == (MemberNamed("p", "/names/p.wav", "m"),)


def test_a_third_partys_mute_is_what_the_members_own_toggle_starts_from():
    c = owner_with("m", "p")
    c.join("m", CONF, Role.MODERATOR)
    c.join("p", CONF)
    c.set_muted("p", True, by="m")
    assert c.toggle_muted("p").facts == (MemberMuted("p", False, "p"),)   # *6 unmutes


def test_a_late_transcript_never_overwrites_a_newer_name():
    c = owner_with("p", "m")
    c.join("m", CONF, Role.MODERATOR)
    c.join("p", CONF, name="/n/1.wav")
    c.name("p", "/n/2.wav", by="m")
    assert not c.transcribed("p", "/n/1.wav", "Anna")
    assert c.transcribed("p", "/n/2.wav", "  Anna   Berg ") and c.seat_of("p").name_text == "Anna Berg"


# ---- the property: no frame connects anyone who should be heard in neither state ----------------

CALLS = ("a", "b", "c", "d")
CONFS = ("c1", "c2")

op = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(CALLS), st.sampled_from(CONFS),
              st.sampled_from(list(Role)), st.booleans()),
    st.tuples(st.just("leave"), st.sampled_from(CALLS)),
    st.tuples(st.just("gone"), st.sampled_from(CALLS)),
    st.tuples(st.just("arrive"), st.sampled_from(CALLS)),
    st.tuples(st.just("mute"), st.sampled_from(CALLS), st.sampled_from(CALLS), st.booleans()),
    st.tuples(st.just("volume"), st.sampled_from(CALLS), st.sampled_from(list(Direction)),
              st.integers(-4, 4)),
    st.tuples(st.just("move"), st.sampled_from(CALLS), st.sampled_from(CONFS),
              st.sampled_from(CALLS)),
)


def _run(c: Conferences, o) -> Change | None:
    try:
        match o:
            case ("join", call, conf, role, muted):
                c.open(conf, ConferenceKind.BOOKED, 3)     # as the service does before a join
                return c.join(call, conf, role, muted=muted)
            case ("leave", call):
                return c.leave(call)
            case ("gone", call):
                return c.gone(call)
            case ("arrive", call):
                return c.arrive(call)
            case ("mute", call, by, muted):
                return c.set_muted(call, muted, by=by)
            case ("volume", call, direction, steps):
                return c.set_volume(call, direction, steps)
            case ("move", call, conf, by):
                c.open(conf, ConferenceKind.BOOKED, 3)
                return c.move(call, conf, by)
    except Exception as e:   # noqa: BLE001 - a refusal; it must be one of these, and change nothing
        assert type(e).__name__ in {"NotAllowed", "ValueError", "UnknownCall", "UnknownMember",
                                    "AlreadyPresent", "KeyError"}, e
        return None
    raise AssertionError(o)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=30))
def test_every_operation_is_one_net_change_safe_at_every_intermediate_bridge_state(ops):
    c = Conferences()
    for conf in CONFS:
        c.open(conf, ConferenceKind.BOOKED, 3)
    bridge = {(r.src, r.dst): r.level for r in c.mixer.routes()}
    for o in ops:
        before = dict(bridge)
        out = _run(c, o)
        after = {(r.src, r.dst): r.level for r in c.mixer.routes()}
        if out is None:
            assert after == before, f"a refused {o} changed the routes"
            continue
        allowed = set(before) | set(after)
        for d in in_safe_order(out.diffs):
            key = (d.src, d.dst)
            match d:
                case Disconnect():
                    assert key in bridge, f"{o}: disconnects a route that is not there"
                    del bridge[key]
                case Relevel(level=level):
                    assert key in bridge, f"{o}: relevels a route that is not there"
                    bridge[key] = level
                case Connect(level=level):
                    assert key not in bridge, f"{o}: connects a route twice"
                    bridge[key] = level
            assert set(bridge) <= allowed, f"{o}: an in-between state holds {set(bridge) - allowed}"
        assert bridge == after, f"{o}: the diffs do not lead to the core's routes"


def test_the_reference_mixer_agrees_a_muted_joiner_is_never_heard():
    c = owner_with("a", "b")
    c.join("a", CONF)
    c.join("b", CONF, muted=True)
    frames = {"a": np.full(160, 1000, np.int16), "b": np.full(160, 3000, np.int16)}
    out = refmix.mix(c.mixer.routes(), frames, sinks=("a", "b"))
    assert int(np.abs(out["a"]).max()) == 0                 # a hears nothing of b
    assert int(out["b"].max()) == 1000                      # b hears a


# ---- what the roster did (moved here: the owner has the only copy) -------------------------------

def test_find_by_seat_or_the_last_who_joined_never_the_asker():
    c = owner_with("mod", "a", "b", "x", "d")
    c.open("CB-2", ConferenceKind.BOOKED, 5)
    for call, role in (("mod", Role.MODERATOR), ("a", Role.PARTICIPANT), ("b", Role.PARTICIPANT)):
        c.join(call, CONF, role)
    c.join("x", "CB-2")
    assert c.find(CONF, 2).call == "a" and c.find(CONF, 3).call == "b"
    assert c.find(CONF, LAST_JOINED, exclude="mod").call == "b"
    assert c.find(CONF, 1, exclude="mod") is None and c.find(CONF, 9) is None
    c.leave("b")
    c.join("d", CONF)                                     # seat 3 is free again: d takes it
    assert c.find(CONF, 3).call == "d"
    assert [s.call for s in c.members(CONF)] == ["mod", "a", "d"]


def test_a_name_given_on_joining_is_kept_and_a_leave_forgets_the_member():
    c = owner_with("a")
    c.join("a", CONF, Role.MODERATOR, name="/n/a.wav")
    s = c.seat_of("a")
    assert (s.conference, s.role, s.seat, s.name) == (CONF, Role.MODERATOR, 1, "/n/a.wav")
    c.leave("a")
    assert c.seat_of("a") is None and c.members(CONF) == ()


def test_a_moderator_moves_a_participant_as_one_net_change_and_the_fact_says_so():
    from bot.conference.owner import MemberMoved
    c = owner_with("m", "p", "q")
    c.open("CB-7K2Q9-sep", ConferenceKind.ADHOC, 2)
    c.join("m", CONF, Role.MODERATOR)
    c.join("p", CONF)
    c.join("q", CONF)
    with pytest.raises(NotAllowed):
        c.move("q", "CB-7K2Q9-sep", by="p")                # a participant may move only itself
    out = c.move("p", "CB-7K2Q9-sep", by="m")
    assert out.facts == (MemberMoved("p", CONF, "CB-7K2Q9-sep", 1, "m"),)
    assert pairs(c.mixer.routes_of("p")) == set()           # alone in the séparée
    assert ("p", "m") not in pairs(c.mixer.routes()) and c.count(CONF) == 2
    assert c.seat_of("p").conference == "CB-7K2Q9-sep" and c.muted("p") is False
