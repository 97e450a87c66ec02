"""The call flow, scripted: events in, actions out — routes, PIN entry, naming, barrier, hang-up."""
from datetime import timedelta

import pytest

from bot.conference.rooms import Role
from bot.config.settings import Tariff
from flow_fixtures import (BOOKING, DIRECT_NUMBER, MENU_NUMBER, OPERATOR, OPERATOR_NUMBER,
                           PIN_NUMBER, T0, TOLLFREE_NUMBER, answer, config, finish, new_flow, of,
                           press, prompts)
from ivr.events import (AnnounceToRoom, CallAnswered, CallEnded, CancelTimer, CheckPin, CollectDigits,
                        DigitPressed, Hangup, JoinOutcome, JoinResult, JoinRoom, LeaveRoom, Log,
                        OperatorResult, PinChecked, Play, PlayFile, PromptFinished, PromptId as P,
                        RecordCdr, RecordingDone, RecordName, SetLanguage, SpeechRecognized,
                        StartTimer, StopPlayback, Timer, TimerFired, TransferToOperator)
from ivr.guard import PinGuard, PinLimits
from ivr.steps import Announce, IllegalEvent, Naming, State


def pin_entered(flow, pin="482913", caller="4917012345"):
    answer(flow, caller=caller)
    return press(flow, pin + "#")


def admitted(flow, moderator=False, at=T0):
    pin_entered(flow)
    return flow.handle(PinChecked(BOOKING, moderator, at))


# ---- routes -----------------------------------------------------------------------------------

def test_pin_route_welcomes_and_asks_for_the_pin():
    flow = new_flow()
    out = answer(flow)
    assert out[0] == SetLanguage("de")
    assert prompts(out) == [P.WELCOME, P.ENTER_PIN]
    assert of(out, CollectDigits) == [CollectDigits(12, "#", "*", 8000)]
    assert flow.state is State.PIN_ENTRY


def test_unknown_number_plays_unknown_number_then_transfers_to_operator():
    flow = new_flow()
    out = answer(flow, dialled="4999999")
    assert prompts(out) == [P.UNKNOWN_NUMBER, P.CONNECTING_OPERATOR]
    assert out[-1] == TransferToOperator(OPERATOR)
    assert flow.handle(OperatorResult(connected=True))
    assert flow.ended


def test_unknown_number_without_operator_hangs_up():
    flow = new_flow(config(operator_uri=None))
    out = answer(flow, dialled="4999999")
    assert prompts(out) == [P.UNKNOWN_NUMBER, P.OPERATOR_UNAVAILABLE, P.GOODBYE]
    assert out[-1] == Hangup("no operator")
    assert flow.state is State.CLOSING


def test_operator_route_transfers_and_apologises_when_nobody_answers():
    flow = new_flow()
    out = answer(flow, dialled=OPERATOR_NUMBER)
    assert prompts(out) == [P.CONNECTING_OPERATOR] and out[-1] == TransferToOperator(OPERATOR)
    out = flow.handle(OperatorResult(connected=False))
    assert prompts(out) == [P.OPERATOR_UNAVAILABLE, P.GOODBYE] and out[-1] == Hangup("operator unavailable")


def test_direct_route_joins_the_configured_room_and_records_the_tariff():
    flow = new_flow()
    out = answer(flow, dialled=DIRECT_NUMBER)
    assert of(out, RecordCdr) == [RecordCdr("c1", None, DIRECT_NUMBER, "4917012345", Tariff.STANDARD,
                                            Role.PARTICIPANT)]
    assert of(out, JoinRoom) == [JoinRoom("lobby", Role.PARTICIPANT)]


def test_menu_route_speaks_the_dialins_language_and_offers_choices():
    flow = new_flow()
    out = answer(flow, dialled=MENU_NUMBER)
    assert out[0] == SetLanguage("en")
    assert prompts(out) == [P.WELCOME, P.MAIN_MENU]
    out = press(flow, "9")
    assert prompts(out) == [P.LANGUAGE_MENU]
    out = press(flow, "1")
    assert SetLanguage("de") in out and prompts(out) == [P.MAIN_MENU]
    out = press(flow, "1")
    assert prompts(out) == [P.ENTER_PIN] and flow.state is State.PIN_ENTRY


def test_menu_wrong_key_three_times_goes_to_the_operator():
    flow = new_flow()
    answer(flow, dialled=MENU_NUMBER)
    assert prompts(press(flow, "7")) == [P.INVALID_INPUT, P.MAIN_MENU]
    assert prompts(press(flow, "#")) == [P.INVALID_INPUT, P.MAIN_MENU]
    out = press(flow, "5")
    assert out[-1] == TransferToOperator(OPERATOR)


# ---- PIN --------------------------------------------------------------------------------------

def test_right_participant_pin_joins_as_participant_with_premium_tariff():
    flow = new_flow()
    out = pin_entered(flow)
    assert out[-1] == CheckPin("482913") and flow.state is State.CHECKING_PIN
    out = flow.handle(PinChecked(BOOKING, False, T0))
    assert of(out, RecordCdr) == [RecordCdr("c1", "CB-7K2Q9", PIN_NUMBER, "4917012345", Tariff.PREMIUM,
                                            Role.PARTICIPANT)]
    assert of(out, JoinRoom) == [JoinRoom("CB-7K2Q9", Role.PARTICIPANT)]
    out = flow.handle(JoinResult(JoinOutcome.JOINED, count=1))
    assert prompts(out) == [P.JOINED_AS_PARTICIPANT, P.YOU_ARE_ALONE]
    assert flow.state is State.IN_CONFERENCE


def test_moderator_pin_joins_as_moderator_and_hears_its_position():
    flow = new_flow()
    out = admitted(flow, moderator=True)
    assert of(out, JoinRoom) == [JoinRoom("CB-7K2Q9", Role.MODERATOR)]
    out = flow.handle(JoinResult(JoinOutcome.JOINED, count=4))
    assert prompts(out) == [P.JOINED_AS_MODERATOR, P.YOU_ARE_NTH]
    assert out[1].param_dict == {"n": 4}


def test_tollfree_dialin_is_recorded_in_the_cdr():
    flow = new_flow()
    flow.handle(CallAnswered("c1", TOLLFREE_NUMBER, "4917012345", T0))
    press(flow, "482913#")
    out = flow.handle(PinChecked(BOOKING, False, T0))
    assert of(out, RecordCdr)[0].tariff is Tariff.TOLLFREE


def test_wrong_pin_three_times_routes_to_operator():
    flow = new_flow()
    answer(flow)
    out = []
    for expected_left in (2, 1):
        press(flow, "111111#")
        out = flow.handle(PinChecked(None, False, T0))
        assert prompts(out) == [P.PIN_WRONG, P.ENTER_PIN]
        assert out[0].param_dict == {"tries_left": expected_left}
    press(flow, "111111#")
    out = flow.handle(PinChecked(None, False, T0))
    assert prompts(out) == [P.CONNECTING_OPERATOR] and out[-1] == TransferToOperator(OPERATOR)


def test_hash_alone_means_no_pin_and_goes_to_operator():
    flow = new_flow()
    answer(flow)
    out = press(flow, "#")
    assert out[-1] == TransferToOperator(OPERATOR)
    assert not of(out, CheckPin)


def test_star_restarts_pin_entry():
    flow = new_flow()
    answer(flow)
    out = press(flow, "99*482913#")
    assert of(out, CheckPin) == [CheckPin("482913")]


def test_overlong_pin_is_wrong_without_asking_the_ledger():
    flow = new_flow()
    answer(flow)
    out = press(flow, "1" * 13 + "#")
    assert not of(out, CheckPin) and prompts(out)[-2:] == [P.PIN_WRONG, P.ENTER_PIN]


def test_too_early_says_when_the_conference_starts():
    flow = new_flow()
    pin_entered(flow)
    out = flow.handle(PinChecked(BOOKING, False, T0 - timedelta(minutes=11)))
    assert prompts(out) == [P.CONFERENCE_NOT_STARTED, P.GOODBYE]
    assert of(out, Play)[0].param_dict == {"start": BOOKING.start}
    assert out[-1] == Hangup("not started") and not of(out, JoinRoom)


def test_early_join_margin_lets_the_caller_in():
    flow = new_flow()
    pin_entered(flow)
    out = flow.handle(PinChecked(BOOKING, False, T0 - timedelta(minutes=9)))
    assert of(out, JoinRoom)


def test_after_the_end_says_the_conference_has_ended():
    flow = new_flow()
    pin_entered(flow)
    out = flow.handle(PinChecked(BOOKING, False, BOOKING.end))
    assert prompts(out) == [P.CONFERENCE_ENDED, P.GOODBYE] and out[-1] == Hangup("ended")


def test_locked_caller_hears_pin_locked_and_is_hung_up():
    guard = PinGuard(PinLimits(caller_failures=2))
    first = new_flow(pin_guard=guard)
    answer(first)
    press(first, "111111#")
    first.handle(PinChecked(None, False, T0))
    press(first, "222222#")
    out = first.handle(PinChecked(None, False, T0 + timedelta(seconds=30)))
    assert prompts(out) == [P.PIN_LOCKED] and out[-1] == Hangup("pin locked")
    assert any("locked until" in line.message for line in of(out, Log))
    second = new_flow(pin_guard=guard)   # calling again does not help
    out = answer(second, at=T0 + timedelta(minutes=1))
    assert prompts(out) == [P.WELCOME, P.PIN_LOCKED] and out[-1] == Hangup("pin locked")


def test_pin_entry_timeout_retries_then_goes_to_operator():
    flow = new_flow()
    out = answer(flow)
    out = finish(flow, out)
    assert out == [StartTimer(Timer.INPUT, 8000)]
    out = flow.handle(TimerFired(Timer.INPUT))
    assert prompts(out) == [P.TIMEOUT_RETRY, P.ENTER_PIN]
    finish(flow, out)
    out = flow.handle(TimerFired(Timer.INPUT))
    finish(flow, out)
    out = flow.handle(TimerFired(Timer.INPUT))
    assert out[-1] == TransferToOperator(OPERATOR)


def test_a_cancelled_timer_firing_late_changes_nothing():
    flow = new_flow()
    answer(flow)
    assert flow.handle(TimerFired(Timer.INPUT)) == []
    assert flow.state is State.PIN_ENTRY


# ---- barge-in ---------------------------------------------------------------------------------

def test_digit_during_barge_in_prompt_stops_playback_and_counts():
    flow = new_flow()
    answer(flow)
    out = flow.handle(DigitPressed("4"))
    assert out[0] == StopPlayback()
    assert out[1] == StartTimer(Timer.INPUT, 8000)
    assert flow.digits == "4"
    assert press(flow, "82913#")[-1] == CheckPin("482913")


def test_digit_during_non_barge_in_prompt_is_dropped():
    flow = new_flow()
    answer(flow, dialled=OPERATOR_NUMBER)
    assert flow.handle(DigitPressed("5")) == []


def test_speech_keyword_counts_like_digits():
    flow = new_flow()
    answer(flow)
    out = flow.handle(SpeechRecognized("vier acht zwei neun eins drei", "482913#"))
    assert out[0] == StopPlayback() and out[-1] == CheckPin("482913")


# ---- naming and announcements -----------------------------------------------------------------

def test_name_recorded_confirmed_and_announced():
    flow = new_flow(config(naming=Naming.RECORD))
    out = admitted(flow)
    assert prompts(out) == [P.SAY_NAME, P.BEEP] and out[-1] == RecordName(3000)
    out = flow.handle(RecordingDone("/tmp/name-c1.wav", 1200))
    assert prompts(out) == [P.NAME_PLAYBACK, P.NAME_CONFIRM]
    assert of(out, PlayFile)[0].path == "/tmp/name-c1.wav"
    out = press(flow, "1")
    assert of(out, JoinRoom) == [JoinRoom("CB-7K2Q9", Role.PARTICIPANT, name_path="/tmp/name-c1.wav")]
    out = flow.handle(JoinResult(JoinOutcome.JOINED, 3))
    assert of(out, AnnounceToRoom) == [AnnounceToRoom("CB-7K2Q9", P.JOIN_ANNOUNCE,
                                                      (("name", "/tmp/name-c1.wav"),))]
    out = flow.handle(CallEnded("bye"))
    assert of(out, LeaveRoom) == [LeaveRoom("CB-7K2Q9")]
    assert of(out, AnnounceToRoom)[0].prompt is P.LEAVE_ANNOUNCE


def test_name_again_three_times_then_proceed_without_a_name():
    flow = new_flow(config(naming=Naming.RECORD))
    admitted(flow)
    for _ in range(2):
        flow.handle(RecordingDone("/tmp/n.wav", 900))
        assert of(press(flow, "2"), RecordName)
    flow.handle(RecordingDone("/tmp/n.wav", 900))
    out = press(flow, "2")
    assert of(out, JoinRoom) == [JoinRoom("CB-7K2Q9", Role.PARTICIPANT, name_path=None)]


@pytest.mark.parametrize("mode", [Announce.TONE, Announce.OFF])
def test_no_name_is_asked_where_the_room_does_not_announce_names(mode):
    flow = new_flow(config(naming=Naming.RECORD, room_announce=(("lobby", mode),)))
    out = answer(flow, dialled=DIRECT_NUMBER)
    assert not of(out, RecordName) and P.SAY_NAME not in prompts(out)
    assert of(out, JoinRoom) == [JoinRoom("lobby", Role.PARTICIPANT, name_path=None)]
    out = admitted(new_flow(config(naming=Naming.RECORD)))        # booked rooms: names
    assert of(out, RecordName) == [RecordName(3000)]


def test_failed_or_empty_recording_asks_again():
    flow = new_flow(config(naming=Naming.RECORD))
    admitted(flow)
    out = flow.handle(RecordingDone(None, 0))
    assert prompts(out) == [P.INVALID_INPUT, P.SAY_NAME, P.BEEP] and of(out, RecordName)
    out = flow.handle(RecordingDone("/tmp/n.wav", 100))   # too short
    assert of(out, RecordName)


@pytest.mark.parametrize("mode, expected", [(Announce.OFF, []), (Announce.TONE, [P.BEEP]),
                                            (Announce.NAME, [P.BEEP])])
def test_announcement_per_room_setting_without_a_recorded_name(mode, expected):
    flow = new_flow(config(room_announce=(("CB-7K2Q9", mode),)))
    admitted(flow)
    out = flow.handle(JoinResult(JoinOutcome.JOINED, 2))
    assert [a.prompt for a in of(out, AnnounceToRoom)] == expected


def test_full_room_is_refused_politely():
    flow = new_flow()
    admitted(flow)
    out = flow.handle(JoinResult(JoinOutcome.FULL))
    assert prompts(out) == [P.ROOM_FULL, P.GOODBYE] and out[-1] == Hangup("room full")
    assert not of(out, LeaveRoom)


# ---- rule 1 (illegal events) and rule 2 (the barrier) -----------------------------------------

@pytest.mark.parametrize("event", [PinChecked(BOOKING, False, T0), RecordingDone("/x", 1000),
                                   JoinResult(JoinOutcome.JOINED, 1), OperatorResult(True),
                                   CallAnswered("c2", PIN_NUMBER, "", T0)])
def test_illegal_event_raises_and_changes_nothing(event):
    flow = new_flow()
    answer(flow)
    press(flow, "48")
    before = (flow.state, flow.digits, dict(flow.playing), set(flow.timers), flow.wrong_pins)
    with pytest.raises(IllegalEvent):
        flow.handle(event)
    assert (flow.state, flow.digits, dict(flow.playing), set(flow.timers), flow.wrong_pins) == before


def test_every_event_is_illegal_after_the_end():
    flow = new_flow()
    answer(flow)
    flow.handle(CallEnded("bye"))
    for event in (DigitPressed("1"), CallEnded("again"), PromptFinished(1)):
        with pytest.raises(IllegalEvent):
            flow.handle(event)


class ExplodingGuard(PinGuard):
    def failed(self, caller, at):
        raise ZeroDivisionError("bug in the guard")


def test_a_bug_in_a_handler_apologises_and_hangs_up():
    flow = new_flow(pin_guard=ExplodingGuard())
    answer(flow)
    press(flow, "111111#")
    out = flow.handle(PinChecked(None, False, T0))
    assert prompts(out) == [P.ERROR_APOLOGY] and out[-1] == Hangup("error")
    assert "ZeroDivisionError" in of(out, Log)[0].message
    assert flow.ended and flow.state is State.CLOSING
    assert flow.handle(DigitPressed("1")) == []       # no more input is processed
    flow.handle(CallEnded("hung up"))
    assert flow.state is State.ENDED


def test_a_bug_while_in_a_room_leaves_the_room_first():
    flow = new_flow()
    admitted(flow)
    flow.handle(JoinResult(JoinOutcome.JOINED, 2))
    flow.dial_guard = None   # simulate a broken dependency: the invite key will crash
    out = press(flow, "*5")
    assert of(out, LeaveRoom) == [LeaveRoom("CB-7K2Q9")] and out[-1] == Hangup("error")


# ---- hang-up in every state -------------------------------------------------------------------

def drive_to(state: State):
    """A flow brought to `state` through legal events only."""
    cfg = config(naming=Naming.RECORD)
    flow = new_flow(cfg)
    if state is State.START:
        return flow
    if state in (State.MENU, State.LANGUAGE, State.THREEWAY_NUMBER, State.THREEWAY_DIALING):
        answer(flow, dialled=MENU_NUMBER)
        press(flow, {State.MENU: "", State.LANGUAGE: "9", State.THREEWAY_NUMBER: "2",
                     State.THREEWAY_DIALING: "2030123456#"}[state])
        return flow
    if state is State.TRANSFERRING:
        answer(flow, dialled=OPERATOR_NUMBER)
        return flow
    answer(flow)
    if state is State.PIN_ENTRY:
        return flow
    press(flow, "482913#")
    if state is State.CHECKING_PIN:
        return flow
    if state is State.CLOSING:
        flow.handle(PinChecked(BOOKING, False, BOOKING.end))
        return flow
    naming_someone = state in (State.NAME_WHO, State.NAME_FOR_RECORDING, State.NAME_FOR_CONFIRM)
    moderating = naming_someone or state in (State.SEATS, State.END_CONFIRM)
    flow.handle(PinChecked(BOOKING, moderating, T0))      # naming others: moderators only
    if state is State.NAME_RECORDING:
        return flow
    flow.handle(RecordingDone("/tmp/n.wav", 1000))
    if state is State.NAME_CONFIRM:
        return flow
    press(flow, "1")
    if state is State.JOINING:
        return flow
    flow.handle(JoinResult(JoinOutcome.JOINED, 2))
    if state is State.INVITE_NUMBER:
        press(flow, "*5")
    if naming_someone:
        press(flow, "*2" if state is State.NAME_WHO else "*2#")
    if state is State.SEATS:
        press(flow, "#1")
    if state is State.END_CONFIRM:
        press(flow, "#7")
    if state is State.LOGIN_PIN:
        press(flow, "*8")
    if state is State.NAME_FOR_CONFIRM:
        flow.handle(RecordingDone("/tmp/m.wav", 1000))
    return flow


LIVE = [s for s in State if s is not State.ENDED]


@pytest.mark.parametrize("state", LIVE, ids=lambda s: s.name)
def test_hangup_in_every_state_cleans_up_and_ends(state):
    flow = drive_to(state)
    assert flow.state is state
    was_joined = flow.joined
    timers = set(flow.timers)
    out = flow.handle(CallEnded("caller hung up"))
    assert flow.state is State.ENDED
    assert {a.name for a in of(out, CancelTimer)} == timers
    assert (of(out, LeaveRoom) != []) == was_joined
    assert not of(out, Hangup)
    assert flow.timers == set() and not flow.joined


def test_hash_while_recording_the_name_ends_the_recording():
    from ivr.events import EndRecording
    flow = new_flow(config(naming=Naming.RECORD))
    finish(flow, admitted(flow))                    # "say your name", the beep: played
    assert flow.state is State.NAME_RECORDING
    assert press(flow, "5") == []
    assert press(flow, "#") == [EndRecording()]
    assert flow.state is State.NAME_RECORDING       # RecordingDone moves it on
