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
                                  Conferences, MemberJoined, MemberLeft, MemberMoved,
                                  MemberMuted, MemberNamed, NotAllowed, RoomFull, SepareeClosed,
                                  SepareeOpened, UnknownCall)
from bot.conference.facts import (ConferenceLocked, LockChanged, MemberRemoved,
                                  MutedByModerator)

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
    assert c.sizes() == {"conferences": 0, "rooms": 0, "members": 0, "mixer_rooms": 1,  # holding
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
SEPAREES = ("c1~s1", "c1~s2", "c2~s1")

op = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(CALLS), st.sampled_from(CONFS),
              st.sampled_from(list(Role)), st.booleans()),
    st.tuples(st.just("leave"), st.sampled_from(CALLS)),
    st.tuples(st.just("gone"), st.sampled_from(CALLS)),
    st.tuples(st.just("arrive"), st.sampled_from(CALLS)),
    st.tuples(st.just("mute"), st.sampled_from(CALLS), st.sampled_from(CALLS), st.booleans()),
    st.tuples(st.just("volume"), st.sampled_from(CALLS), st.sampled_from(list(Direction)),
              st.integers(-4, 4)),
    st.tuples(st.just("move"), st.sampled_from(CALLS), st.sampled_from(CONFS + SEPAREES),
              st.sampled_from(CALLS)),
    st.tuples(st.just("mute_all"), st.sampled_from(CONFS), st.sampled_from(CALLS),
              st.booleans()),
    st.tuples(st.just("remove"), st.sampled_from(CALLS), st.sampled_from(CALLS)),
    st.tuples(st.just("lock"), st.sampled_from(CONFS), st.sampled_from(CALLS), st.booleans()),
    st.tuples(st.just("end"), st.sampled_from(CONFS), st.sampled_from(CALLS)),
)
# séparées are weighted up: most random openings are refused (the wrong actor or members)
op = st.one_of(op, *[st.one_of(
    st.tuples(st.just("separee"), st.sampled_from(CONFS), st.sampled_from(CALLS),
              st.lists(st.sampled_from(CALLS), min_size=2, max_size=3)),
    st.tuples(st.just("back"), st.sampled_from(SEPAREES), st.sampled_from(CALLS)))] * 3)


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
            case ("move", call, room, by):
                if room in CONFS:
                    c.open(room, ConferenceKind.BOOKED, 3)
                return c.move(call, room, by)
            case ("separee", conf, by, calls):       # mostly among its members (by index)
                inside = [m.call for m in c.members(conf)] or list(CALLS)
                pick = {x: inside[i % len(inside)] for i, x in enumerate(CALLS)}
                return c.open_separee(conf, [pick[x] for x in calls], pick[by])
            case ("back", room, by):
                return c.bring_back(room, by)
            case ("mute_all", conf, by, muted):
                return c.mute_all(conf, muted, by)
            case ("remove", call, by):
                return c.remove(call, by)
            case ("lock", conf, by, locked):
                return c.lock(conf, locked, by)
            case ("end", conf, by):
                return c.end(conf, by)
    except Exception as e:   # noqa: BLE001 - a refusal; it must be one of these, and change nothing
        assert type(e).__name__ in {"NotAllowed", "ValueError", "UnknownCall", "UnknownMember",
                                    "AlreadyPresent", "KeyError"}, e
        return None
    raise AssertionError(o)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(CONFS), st.sampled_from(list(Role))),
                min_size=len(CALLS), max_size=len(CALLS)),
       st.lists(op, min_size=5, max_size=40))
def test_every_operation_is_one_net_change_safe_at_every_intermediate_bridge_state(seated, ops):
    c = Conferences()
    for conf in CONFS:
        c.open(conf, ConferenceKind.BOOKED, 3)
    for call, (conf, role) in zip(CALLS, seated):   # everyone starts with media, most seated
        c.arrive(call)
        c.join(call, conf, role)
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


def lecture(*extra: str) -> Conferences:
    """A conference with its moderator m and participants p, q, r (seats 1-4)."""
    c = owner_with("m", "p", "q", "r", *extra)
    c.join("m", CONF, Role.MODERATOR)
    for call in ("p", "q", "r"):
        c.join(call, CONF)
    return c


def hears(c: Conferences) -> set[tuple[str, str]]:
    return pairs(c.mixer.routes())


def test_a_moderator_opens_a_separee_as_one_net_change_isolated_exactly():
    c = lecture()
    before = bridge = hears(c)
    out = c.open_separee(CONF, ["p", "q"], by="m")
    sep = "CB-7K2Q9~s1"
    assert out.facts == (SepareeOpened(CONF, sep, 1, "m"), MemberMoved("p", CONF, sep, 2, "m"),
                         MemberMoved("q", CONF, sep, 3, "m"))
    after = hears(c)
    assert after == {("p", "q"), ("q", "p"), ("m", "r"), ("r", "m")}   # nothing crosses rooms
    for d in in_safe_order(out.diffs):     # every in-between bridge: no route of neither state
        bridge = bridge - {(d.src, d.dst)} if isinstance(d, Disconnect) else bridge | {(d.src, d.dst)}
        assert bridge <= before | after
    assert bridge == after
    assert (c.seat_of("p").seat, c.seat_of("p").room, c.seat_of("p").conference) == (2, sep, CONF)
    assert c.count(CONF) == 2 and c.count(sep) == 2 and c.separees(CONF) == {1: sep}
    assert [s.call for s in c.in_room(sep)] == ["p", "q"] and c.conference_of(sep) == CONF
    assert c.find(CONF, 3).call == "q"              # seats still address them


def test_a_one_to_one_consultation_takes_the_moderator_along_and_numbers_are_reused():
    c = lecture()
    c.open_separee(CONF, ["p", "q"], by="m")
    out = c.open_separee(CONF, ["m", "r"], by="m")
    assert out.facts[0] == SepareeOpened(CONF, "CB-7K2Q9~s2", 2, "m")
    assert hears(c) == {("p", "q"), ("q", "p"), ("m", "r"), ("r", "m")} and c.count(CONF) == 0
    back = c.bring_back("CB-7K2Q9~s1", by="m")
    assert SepareeClosed(CONF, "CB-7K2Q9~s1", 1) in back.facts
    assert c.separees(CONF) == {2: "CB-7K2Q9~s2"}
    assert c.open_separee(CONF, ["p", "q"], by="m").facts[0].number == 1   # the lowest free


def test_who_may_open_a_separee_and_who_may_leave_it():
    c = lecture("x")
    c.open("other", ConferenceKind.BOOKED, 5)
    c.join("x", "other", Role.MODERATOR)
    with pytest.raises(NotAllowed):
        c.open_separee(CONF, ["q", "r"], by="p")          # a participant
    with pytest.raises(NotAllowed):
        c.open_separee(CONF, ["q", "r"], by="x")          # another conference's moderator
    with pytest.raises(ValueError):
        c.open_separee(CONF, ["q"], by="m")               # one is no séparée
    with pytest.raises(UnknownCall):
        c.open_separee(CONF, ["q", "x"], by="m")          # x is not in this conference
    assert c.separees(CONF) == {} and c.count(CONF) == 4  # nothing changed
    c.open_separee(CONF, ["p", "q"], by="m")
    with pytest.raises(NotAllowed):
        c.move("p", CONF, by="p")                         # return is the moderator's
    with pytest.raises(NotAllowed):
        c.bring_back("CB-7K2Q9~s1", by="q")
    c.open(CONF, ConferenceKind.BOOKED, 10, self_return=True)
    assert c.move("p", CONF, by="p").facts == (MemberMoved("p", "CB-7K2Q9~s1", CONF, 2, "p"),)
    assert c.separees(CONF) == {1: "CB-7K2Q9~s1"}        # q is still in it


def test_bringing_back_restores_the_main_room_and_a_last_hang_up_closes_the_separee():
    c = lecture()
    before = hears(c)
    c.open_separee(CONF, ["p", "q"], by="m")
    out = c.bring_back("CB-7K2Q9~s1", by="m")
    assert hears(c) == before
    assert out.facts[-1] == SepareeClosed(CONF, "CB-7K2Q9~s1", 1)
    c.open_separee(CONF, ["p", "q"], by="m")
    c.bring_back("CB-7K2Q9~s1", by="m", calls=["q"])    # one seat back
    assert c.seat_of("q").room == CONF and c.seat_of("p").room == "CB-7K2Q9~s1"
    c.gone("p")
    assert c.separees(CONF) == {} and "CB-7K2Q9~s1" not in c.mixer.snapshot().rooms


def test_a_closing_conference_closes_its_separees_and_keeps_nothing():
    c = owner_with("p", "q")
    c.join("p", CONF, Role.MODERATOR)
    c.join("q", CONF)
    c.open_separee(CONF, ["p", "q"], by="p")
    c.gone("p")
    out = c.gone("q")
    assert out.facts[-2:] == (SepareeClosed(CONF, "CB-7K2Q9~s1", 1), ConferenceClosed(CONF))
    assert c.sizes()["rooms"] == 0 and c.sizes()["mixer_rooms"] == 1


def test_only_the_superuser_moves_a_member_into_another_conference_capacity_checked():
    c = lecture("op")
    c.open("CB-2", ConferenceKind.BOOKED, 1)
    c.join("op", "CB-2", Role.OPERATOR)
    with pytest.raises(NotAllowed):
        c.move("p", "CB-2", by="m")                       # a moderator: its own conference only
    assert c.move("p", "CB-2", by="op").facts == (RoomFull("p", "CB-2", 1, 1),)
    c.set_limit("CB-2", 5)
    out = c.move("p", "CB-2", by="op")
    assert out.facts == (MemberMoved("p", CONF, "CB-2", 2, "op"),)
    assert pairs(c.mixer.routes_of("p")) == {("p", "op"), ("op", "p")}
    assert c.seat_of("p").conference == "CB-2" and c.count(CONF) == 3


# ---- lecture mode, lock, remove ---------------------------------------------------------------

def test_mute_all_silences_every_participant_in_every_room_but_not_the_moderators():
    c = lecture()
    c.open_separee(CONF, ["q", "r"], by="m")
    c.set_muted("p", True)                                  # already muted: no second fact
    with pytest.raises(NotAllowed):
        c.mute_all(CONF, True, by="p")
    out = c.mute_all(CONF, True, by="m")
    assert out.facts == (MemberMuted("q", True, "m"), MemberMuted("r", True, "m"))
    assert hears(c) == {("m", "p")}                         # only the moderator is heard
    assert {d.src for d in out.diffs} == {"q", "r"}
    out = c.mute_all(CONF, False, by="m")
    assert {f.call for f in out.facts} == {"p", "q", "r"}
    assert hears(c) == {("m", "p"), ("p", "m"), ("q", "r"), ("r", "q")}


def test_whether_a_participant_may_unmute_after_a_moderators_mute_is_the_conferences_rule():
    c = lecture()
    c.open(CONF, ConferenceKind.BOOKED, 10, self_unmute=False)
    c.set_muted("p", True, by="m")
    with pytest.raises(MutedByModerator):
        c.toggle_muted("p")
    c.set_muted("q", True)                                  # its own mute it may undo
    assert c.toggle_muted("q").facts == (MemberMuted("q", False, "q"),)
    c.set_muted("p", False, by="m")                         # the moderator lifts it
    c.set_muted("p", True)
    assert c.toggle_muted("p").facts == (MemberMuted("p", False, "p"),)
    c.set_muted("r", True, by="m")
    c.promote("r", Role.MODERATOR, "Eva")                   # a moderator now: its own voice
    assert c.toggle_muted("r").facts == (MemberMuted("r", False, "r"),)
    c.open(CONF, ConferenceKind.BOOKED, 10, self_unmute=True)
    c.mute_all(CONF, True, by="m")
    assert c.toggle_muted("p").facts == (MemberMuted("p", False, "p"),)


def test_a_locked_conference_refuses_new_participants_but_admits_moderators():
    c = lecture("n", "o")
    with pytest.raises(NotAllowed):
        c.lock(CONF, True, by="p")
    assert c.lock(CONF, True, by="m").facts == (LockChanged(CONF, True, "m"),)
    assert c.lock(CONF, True, by="m") == Change()           # no change, no fact
    assert c.join("n", CONF) == Change((), (ConferenceLocked("n", CONF),))
    assert c.seat_of("n") is None
    assert isinstance(c.join("o", CONF, Role.MODERATOR).facts[0], MemberJoined)
    c.lock(CONF, False, by="m")
    assert isinstance(c.join("n", CONF).facts[0], MemberJoined)


def test_a_moderator_removes_a_participant_who_hears_nobody_from_the_next_frame():
    c = lecture()
    with pytest.raises(NotAllowed):
        c.remove("q", by="p")
    with pytest.raises(NotAllowed):
        c.remove("m", by="m")
    out = c.remove("q", by="m")
    assert out.facts[:2] == (MemberRemoved("q", CONF, "m"), MemberLeft("q", CONF, 3, None))
    assert not any("q" in pair for pair in hears(c)) and c.seat_of("q") is None
    with pytest.raises(UnknownCall):
        c.remove("q", by="m")
