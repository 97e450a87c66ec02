"""The moderator's keypad operations on the owner (bot.conference.moderation): seats and séparée
numbers as typed, in the moderator's own conference; what does not exist is refused by name."""
import pytest

from bot.conference.facts import (ConferenceClosed, ConferenceEnded, ConferenceLocked, LockChanged, MemberMuted, MemberRemoved,
                                  NoSuchSeat, NoSuchSeparee, NotAllowed, SepareeOpened)
from bot.conference.mixer import Role
from bot.conference.moderation import (bring_back_separee, consult_seat, end_conference,
                                       move_seat, mute_participants,
                                       mute_seat, remove_seat, separee_of_seats, toggle_lock)
from bot.conference.owner import ConferenceKind, Conferences

CONF = "CB-1"


def lecture() -> Conferences:
    c = Conferences()
    c.open(CONF, ConferenceKind.BOOKED, 10)
    for call, role in (("m", Role.MODERATOR), ("p", Role.PARTICIPANT), ("q", Role.PARTICIPANT),
                       ("r", Role.PARTICIPANT)):
        c.arrive(call)
        c.join(call, CONF, role)
    return c


def hears(c):
    return {(r.src, r.dst) for r in c.mixer.routes()}


def test_seats_become_the_members_and_the_moderators_conference_is_used():
    c = lecture()
    out = separee_of_seats(c, (2, 3), by="m")
    assert out.facts[0] == SepareeOpened(CONF, "CB-1~s1", 1, "m")
    assert {s.call for s in c.in_room("CB-1~s1")} == {"p", "q"}


def test_a_seat_nobody_holds_is_named_and_nothing_changes():
    c = lecture()
    before = hears(c)
    with pytest.raises(NoSuchSeat) as e:
        separee_of_seats(c, (2, 7), by="m")
    assert e.value.seat == 7 and hears(c) == before and c.separees(CONF) == {}
    with pytest.raises(NoSuchSeat):
        consult_seat(c, 1, by="m")                       # its own seat: nobody to talk to
    with pytest.raises(NotAllowed):
        separee_of_seats(c, (3, 4), by="p")              # a participant


def test_consultation_takes_the_moderator_along():
    c = lecture()
    consult_seat(c, 4, by="m")
    assert hears(c) == {("m", "r"), ("r", "m"), ("p", "q"), ("q", "p")}


def test_bringing_back_one_or_all_as_one_net_change():
    c = lecture()
    before = hears(c)
    separee_of_seats(c, (2, 3), by="m")
    consult_seat(c, 4, by="m")
    with pytest.raises(NoSuchSeparee):
        bring_back_separee(c, 5, by="m")
    out = bring_back_separee(c, 0, by="m")              # both at once
    keys = [(d.src, d.dst) for d in out.diffs]
    assert len(keys) == len(set(keys))                  # net: no pair twice in the batch
    assert hears(c) == before and c.separees(CONF) == {}
    with pytest.raises(NoSuchSeparee):
        bring_back_separee(c, 0, by="m")                # none open: said so


def test_a_seat_is_muted_and_unmuted_by_the_same_command_and_removed_by_number():
    c = lecture()
    assert mute_seat(c, 2, by="m").facts == (MemberMuted("p", True, "m"),)
    assert not any(r[0] == "p" for r in hears(c))
    assert mute_seat(c, 2, by="m").facts == (MemberMuted("p", False, "m"),)
    with pytest.raises(NotAllowed):
        mute_seat(c, 3, by="p")                     # a participant mutes only itself
    with pytest.raises(NoSuchSeat):
        remove_seat(c, 9, by="m")
    assert remove_seat(c, 3, by="m").facts[0] == MemberRemoved("q", CONF, "m")
    assert c.seat_of("q") is None


def test_mute_all_and_the_lock_toggle_act_on_the_moderators_own_conference():
    c = lecture()
    c.open("other", ConferenceKind.BOOKED, 10)
    c.arrive("x")
    out = mute_participants(c, True, by="m")
    assert {f.call for f in out.facts} == {"p", "q", "r"} and hears(c) == {
        ("m", "p"), ("m", "q"), ("m", "r")}
    assert toggle_lock(c, by="m").facts == (LockChanged(CONF, True, "m"),)
    assert c.join("x", CONF).facts == (ConferenceLocked("x", CONF),)
    assert toggle_lock(c, by="m").facts == (LockChanged(CONF, False, "m"),)
    assert not c.locked("other")


def test_ending_takes_everyone_out_of_every_room_at_once_and_closes_the_conference():
    c = lecture()
    separee_of_seats(c, (2, 3), by="m")
    with pytest.raises(NotAllowed):
        end_conference(c, by="p")
    out = end_conference(c, by="m")
    assert out.facts[0] == ConferenceEnded(CONF, "m", ("m", "p", "q", "r"))
    assert ConferenceClosed(CONF) in out.facts and hears(c) == set()
    assert all(c.seat_of(x) is None for x in "mpqr") and CONF not in c.conferences()


def test_a_seat_moves_into_an_open_separee_and_back_by_numbers():
    c = lecture()
    separee_of_seats(c, (2, 3), by="m")
    with pytest.raises(NoSuchSeparee):
        move_seat(c, 4, 2, by="m")
    with pytest.raises(NotAllowed):
        move_seat(c, 4, 1, by="p")                       # a participant moves nobody
    move_seat(c, 4, 1, by="m")
    assert {s.call for s in c.in_room("CB-1~s1")} == {"p", "q", "r"}
    assert ("p", "r") in hears(c) and ("m", "r") not in hears(c)
    move_seat(c, 4, 0, by="m")                           # 0: the main room
    assert c.seat_of("r").room == CONF and ("m", "r") in hears(c)
