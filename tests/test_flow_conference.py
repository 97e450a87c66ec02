"""Inside a conference: keypad commands, inviting by dial-out, the invitee's side, and 3PTY."""
from datetime import timedelta

import pytest

from bot.conference.owner import Conferences
from bot.conference.rooms import Direction, Role
from flow_fixtures import (BOOKING, MENU_NUMBER, T0, answer, config, finish, new_flow, of, press,
                           prompts)
from ivr.events import (AnnounceToRoom, AssignName, BridgeInvitee, CallAnswered, CallEnded,
                        CancelTimer, DialOut, DialOutcome, DialOutResult, DialPurpose,
                        DigitPressed, EndRecording, Hangup, JoinOutcome, JoinResult, JoinRoom,
                        LeaveRoom, Moved, MuteChanged, NameAssigned, NotifyInviter, PinChecked,
                        Play, PromptFinished, PromptId as P, QueryRoomCount, RecordingDone,
                        RecordName, RoomCount, Ask, StartTimer, Timer, TimerFired)
from ivr.guard import DialOutGuard, DialOutLimits
from ivr.invitee import InviteeFlow, InviteeState
from ivr.keypad import compile_keypad
from ivr.steps import IllegalEvent, Naming, State


def toggle(flow) -> Ask:
    """What *6 asks of the owner: toggle this caller's mute (the owner keeps the only state)."""
    return Ask(Conferences.toggle_muted, (flow.call_id,))


def in_room(moderator: bool = False, **kw):
    flow = new_flow(config(**{k: v for k, v in kw.items() if k != "dial_guard"}),
                    dial_guard=kw.get("dial_guard"))
    answer(flow)
    press(flow, "482913#")
    flow.handle(PinChecked(BOOKING, moderator, T0))
    flow.handle(JoinResult(JoinOutcome.JOINED, 2))
    return flow


def test_star_six_asks_the_owner_to_toggle_and_says_what_it_answers():
    flow = in_room()
    out = press(flow, "*6")
    assert of(out, Ask) == [toggle(flow)] and prompts(out) == []
    assert prompts(flow.handle(MuteChanged(True))) == [P.MUTED]
    press(flow, "*6")
    assert prompts(flow.handle(MuteChanged(False))) == [P.UNMUTED]


def test_a_third_partys_mute_and_move_reach_the_callers_flow():
    """The flow keeps no mute state: after a moderator's mute its *6 still only asks the owner
    (which then unmutes); after a move its count and announcements are for the new room."""
    flow = in_room()
    assert prompts(flow.handle(MuteChanged(True, by_other=True))) == [P.MUTED_BY_MODERATOR]
    assert of(press(flow, "*6"), Ask) == [toggle(flow)]
    flow.handle(Moved("CB-7K2Q9-sep1"))
    assert of(press(flow, "*#"), QueryRoomCount) == [QueryRoomCount("CB-7K2Q9-sep1")]
    flow.handle(RoomCount(2))
    out = press(flow, "*0")
    assert of(out, LeaveRoom) == [LeaveRoom("CB-7K2Q9-sep1")]
    assert {a.room for a in of(out, AnnounceToRoom)} == {"CB-7K2Q9-sep1"}


def test_unfinished_sequence_times_out_and_is_forgotten():
    flow = in_room()
    assert StartTimer(Timer.KEYPAD, 3000) in press(flow, "*")
    assert flow.handle(TimerFired(Timer.KEYPAD)) == []
    assert of(press(flow, "6"), Ask) == []


def test_count_asks_the_room_and_says_the_number():
    flow = in_room()
    assert of(press(flow, "*#"), QueryRoomCount) == [QueryRoomCount("CB-7K2Q9")]
    out = flow.handle(RoomCount(5))
    assert prompts(out) == [P.PARTICIPANT_COUNT] and out[0].param_dict == {"count": 5}
    with pytest.raises(IllegalEvent):
        flow.handle(RoomCount(5))     # nobody asked


def test_volume_steps_are_clamped():
    flow = in_room()
    levels = [of(press(flow, "*7"), Ask) for _ in range(6)]
    assert [l[0].args[2] for l in levels if l] == [1, 2, 3, 4]
    assert levels[0][0] == Ask(Conferences.set_volume, (flow.call_id, Direction.LISTEN, 1))
    assert of(press(flow, "*4"), Ask) == [
        Ask(Conferences.set_volume, (flow.call_id, Direction.LISTEN, 3))]


def test_help_reads_out_the_configured_keypad_in_action_order():
    out = press(in_room(), "*1")
    assert prompts(out) == [P.HELP_KEYS, P.KEY_TOGGLE_MUTE, P.KEY_HELP, P.KEY_COUNT,
                            P.KEY_VOLUME_UP, P.KEY_VOLUME_DOWN, P.KEY_LEAVE, P.KEY_INVITE,
                            P.KEY_LOGIN]
    plays = of(out, Play)
    assert [dict(p.params).get("keys") for p in plays] == [None, "*6", "*1", "*#", "*7", "*4",
                                                           "*0", "*5", "*8"]
    assert all(p.barge_in for p in plays)           # any key stops the whole list
    # a moderator hears its own commands too
    heard = prompts(press(in_room(moderator=True), "*1"))
    assert heard[-12:] == [
        P.KEY_NAME_MEMBER, P.KEY_SEPAREE, P.KEY_CONSULT, P.KEY_BRING_BACK, P.KEY_MUTE_SEAT,
        P.KEY_REMOVE_SEAT, P.KEY_MUTE_ALL, P.KEY_UNMUTE_ALL, P.KEY_LOCK, P.KEY_END_CONFERENCE,
        P.KEY_ROLL_CALL, P.KEY_MOVE_SEAT]
    assert P.KEY_LOGIN not in heard                     # a moderator needs no login


def test_help_follows_a_changed_keypad():
    flow = in_room(keypad=compile_keypad({"#1": "help", "#2": "mute", "#3": "unmute"}))
    out = press(flow, "#1")
    assert [(p.prompt, dict(p.params).get("keys")) for p in of(out, Play)] == [
        (P.HELP_KEYS, None), (P.KEY_MUTE, "#2"), (P.KEY_UNMUTE, "#3"), (P.KEY_HELP, "#1")]


def test_leave_key_leaves_says_goodbye_and_hangs_up():
    flow = in_room()
    out = press(flow, "*0")
    assert of(out, LeaveRoom) == [LeaveRoom("CB-7K2Q9")]
    assert prompts(out) == [P.GOODBYE] and out[-1] == Hangup("left")
    assert flow.state is State.CLOSING and not flow.joined


def test_configured_keypad_is_what_runs():
    from ivr.keypad import compile_keypad
    flow = in_room(keypad=compile_keypad({"1": "toggle_mute", "0": "leave"}))
    assert of(press(flow, "1"), Ask) == [toggle(flow)]
    assert of(press(flow, "*6"), Ask) == []


def test_invite_dials_out_and_reports_acceptance():
    flow = in_room()
    out = press(flow, "*5")
    assert prompts(out) == [P.INVITE_ENTER_NUMBER] and flow.state is State.INVITE_NUMBER
    out = press(flow, "030123456#", at=T0 + timedelta(minutes=5))
    assert of(out, DialOut) == [DialOut("030123456", DialPurpose.INVITE, "CB-7K2Q9", "4917012345",
                                        "Quarterly review")]
    assert prompts(out) == [P.INVITE_RINGING] and flow.state is State.IN_CONFERENCE
    assert flow.handle(DialOutResult("c9", DialOutcome.ANSWERED))[0].message.endswith("answered")
    assert prompts(flow.handle(DialOutResult("c9", DialOutcome.ACCEPTED))) == [P.INVITE_JOINED]


@pytest.mark.parametrize("outcome, prompt", [(DialOutcome.DECLINED, P.INVITE_DECLINED),
                                             (DialOutcome.BUSY, P.INVITE_BUSY),
                                             (DialOutcome.NO_ANSWER, P.INVITE_NO_ANSWER)])
def test_invite_outcomes_are_told_to_the_inviter(outcome, prompt):
    flow = in_room()
    press(flow, "*5030123456#")
    assert prompts(flow.handle(DialOutResult("c9", outcome))) == [prompt]
    with pytest.raises(IllegalEvent):
        flow.handle(DialOutResult("c9", outcome))   # nothing pending any more


def test_premium_number_invite_is_refused():
    flow = in_room()
    out = press(flow, "*50900123456#")
    assert not of(out, DialOut) and P.INVITE_NOT_ALLOWED in prompts(out)
    assert flow.state is State.IN_CONFERENCE


def test_invite_limit_per_booking_is_enforced_across_calls():
    guard = DialOutGuard(DialOutLimits(per_booking=1))
    first = in_room(dial_guard=guard)
    assert of(press(first, "*5030123456#"), DialOut)
    second = in_room(dial_guard=guard)
    out = press(second, "*5")
    assert prompts(out) == [P.INVITE_NOT_ALLOWED] and second.state is State.IN_CONFERENCE


def test_only_one_invite_at_a_time():
    flow = in_room()
    press(flow, "*5030123456#")
    assert prompts(press(flow, "*5")) == [P.INVITE_NOT_ALLOWED]


def test_hash_alone_cancels_the_invite():
    flow = in_room()
    press(flow, "*5")
    out = press(flow, "#")
    assert not of(out, DialOut) and flow.state is State.IN_CONFERENCE


# ---- the invitee's side ---------------------------------------------------------------------

def invitee():
    flow = InviteeFlow("CB-7K2Q9", "Alice", "Quarterly review", choice_timeout_ms=15000)
    out = flow.handle(CallAnswered("c9", "030123456", "bot", T0))
    return flow, out


def test_invitee_hears_who_invites_to_what_and_joins_with_one():
    flow, out = invitee()
    assert prompts(out) == [P.INVITEE_GREETING, P.INVITEE_CHOICE]
    assert out[0].param_dict == {"inviter": "Alice", "title": "Quarterly review"}
    assert flow.handle(PromptFinished(out[1].token)) == [StartTimer(Timer.CHOICE, 15000)]
    out = flow.handle(DigitPressed("1"))
    assert CancelTimer(Timer.CHOICE) in out and of(out, JoinRoom) == [JoinRoom("CB-7K2Q9", Role.PARTICIPANT)]
    assert flow.handle(JoinResult(JoinOutcome.JOINED, 3)) == [NotifyInviter(DialOutcome.ACCEPTED)]
    assert of(flow.handle(CallEnded("bye")), LeaveRoom) == [LeaveRoom("CB-7K2Q9")]


def test_invitee_declines_with_two_or_by_silence():
    flow, _ = invitee()
    out = flow.handle(DigitPressed("2"))
    assert NotifyInviter(DialOutcome.DECLINED) in out and out[-1] == Hangup("declined")
    flow, out = invitee()
    flow.handle(PromptFinished(out[1].token))
    out = flow.handle(TimerFired(Timer.CHOICE))
    assert NotifyInviter(DialOutcome.DECLINED) in out and out[-1] == Hangup("no answer")
    assert flow.state is InviteeState.CLOSING


def test_invitee_illegal_event_raises():
    flow, _ = invitee()
    with pytest.raises(IllegalEvent):
        flow.handle(JoinResult(JoinOutcome.JOINED, 1))
    assert flow.state is InviteeState.CHOOSING


# ---- 3PTY -----------------------------------------------------------------------------------

def test_threeway_dials_the_second_party_and_bridges_it_then_adds_a_third():
    flow = new_flow()
    answer(flow, dialled=MENU_NUMBER)
    out = press(flow, "2")
    assert prompts(out) == [P.THREEWAY_ENTER_NUMBER] and flow.role is Role.MODERATOR
    out = press(flow, "030111#")
    assert of(out, DialOut) == [DialOut("030111", DialPurpose.THREEWAY, "3pty-c1", "4917012345", "")]
    assert flow.state is State.THREEWAY_DIALING
    out = flow.handle(DialOutResult("c2", DialOutcome.ANSWERED))
    assert of(out, JoinRoom) == [JoinRoom("3pty-c1", Role.MODERATOR)]
    assert of(out, BridgeInvitee) == [BridgeInvitee("c2", "3pty-c1")]
    assert prompts(flow.handle(JoinResult(JoinOutcome.JOINED, 2))) == []
    press(flow, "*5030222#")
    out = flow.handle(DialOutResult("c3", DialOutcome.ANSWERED))
    assert of(out, BridgeInvitee) == [BridgeInvitee("c3", "3pty-c1")]
    assert prompts(press(flow, "*5")) == [P.INVITE_NOT_ALLOWED]     # three is the limit


def test_threeway_busy_asks_for_another_number():
    flow = new_flow()
    answer(flow, dialled=MENU_NUMBER)
    press(flow, "2030111#")
    out = flow.handle(DialOutResult("c2", DialOutcome.BUSY))
    assert prompts(out) == [P.INVITE_BUSY, P.THREEWAY_ENTER_NUMBER]
    assert flow.state is State.THREEWAY_NUMBER


# ---- a moderator names a participant -------------------------------------------------------------

def as_moderator():
    return in_room(moderator=True, naming=Naming.OFF)


def test_moderator_names_the_participant_by_the_position_it_heard():
    flow = as_moderator()
    out = press(flow, "*2")
    assert prompts(out) == [P.NAME_WHO] and flow.state is State.NAME_WHO
    out = press(flow, "3#")
    assert prompts(out) == [P.SAY_NAME_FOR, P.BEEP] and of(out, RecordName) == [RecordName(3000)]
    finish(flow, out)                                       # heard the prompts and the beep
    assert press(flow, "#") == [EndRecording()]           # '#' ends the recording
    out = flow.handle(RecordingDone("/tmp/for-3.wav", 900))
    assert prompts(out) == [P.NAME_PLAYBACK, P.NAME_CONFIRM]
    out = press(flow, "1")
    assert of(out, AssignName) == [AssignName("CB-7K2Q9", 3, "/tmp/for-3.wav")]
    assert flow.state is State.IN_CONFERENCE
    assert prompts(flow.handle(NameAssigned(True))) == [P.NAME_SAVED]
    with pytest.raises(IllegalEvent):
        flow.handle(NameAssigned(True))                     # nothing pending any more


def test_hash_alone_names_the_last_who_joined_and_an_unknown_position_is_said():
    flow = as_moderator()
    press(flow, "*2#")
    flow.handle(RecordingDone("/tmp/last.wav", 900))
    out = press(flow, "1")
    assert of(out, AssignName) == [AssignName("CB-7K2Q9", 0, "/tmp/last.wav")]
    assert prompts(flow.handle(NameAssigned(False))) == [P.NO_SUCH_PARTICIPANT]


def test_two_records_again_and_an_empty_recording_goes_back_to_the_room():
    flow = as_moderator()
    press(flow, "*2#")
    flow.handle(RecordingDone("/tmp/a.wav", 900))
    assert of(press(flow, "2"), RecordName) and flow.state is State.NAME_FOR_RECORDING
    out = flow.handle(RecordingDone(None, 0))
    assert prompts(out) == [P.INVALID_INPUT] and flow.state is State.IN_CONFERENCE


def test_participants_may_not_name_others():
    flow = in_room()
    out = press(flow, "*2")
    assert prompts(out) == [P.MODERATOR_ONLY] and flow.state is State.IN_CONFERENCE
    assert not of(out, RecordName)


def test_no_answer_to_whom_goes_back_to_the_room_quietly():
    flow = as_moderator()
    out = press(flow, "*2")
    while flow.state is State.NAME_WHO:
        finish(flow, out)                       # the question was heard: the timer runs
        out = flow.handle(TimerFired(Timer.INPUT))
    assert flow.state is State.IN_CONFERENCE and not of(out, Hangup) and not flow.timers


def test_a_renamed_caller_is_announced_by_its_new_name_when_it_leaves():
    from ivr.events import AnnounceToRoom, NameChanged
    flow = in_room()
    assert flow.handle(NameChanged("/tmp/new.wav")) == []
    out = flow.handle(CallEnded("bye"))
    assert of(out, AnnounceToRoom) == [AnnounceToRoom("CB-7K2Q9", P.LEAVE_ANNOUNCE,
                                                      (("name", "/tmp/new.wav"),))]
