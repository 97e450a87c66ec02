"""A moderator's room commands by keypad (pure flow): séparées (#1), 1:1 consultation (#2),
bringing back (#0), mute or unmute a seat (#6), remove a seat (#5), mute / unmute all (#8 / #9)
and lock (#4) — what is asked of the owner, what is said for each answer and refusal, and
what a moved caller is told. The owner's side is tests/test_owner.py and test_moderation.py;
tests/test_sip_separee.py runs the same keys with real phones."""
from bot.conference.endwatch import Closing
from bot.conference.moderation import (bring_back_separee, consult_seat, end_conference,
                                       move_seat, mute_participants, mute_seat, remove_seat,
                                       separee_of_seats, toggle_lock)
from flow_fixtures import BOOKING, T0, answer, config, new_flow, of, press, prompts
from bot.conference.rooms import Role
from ivr.guard import Admission, PinGuard, PinLimits
from ivr.events import (Ask, AskAnswered, CheckLogin, PlayFile, QueryRoll, RollCall, RollEntry, ConferenceClosed, Hangup, Log, LoginChecked, JoinOutcome, JoinResult, LeaveRoom, Moved,
                        MuteChanged, PinChecked, Play, PromptId as P, Refusal, Removed)
from ivr.steps import State


def in_room(moderator: bool = True):
    flow = new_flow(config())
    answer(flow)
    press(flow, "482913#")
    flow.handle(PinChecked(BOOKING, moderator, T0))
    flow.handle(JoinResult(JoinOutcome.JOINED, 4, 1))
    return flow


def test_a_moderator_opens_a_separee_with_the_seats_entered_and_hears_it_done():
    flow = in_room()
    assert prompts(press(flow, "#1")) == [P.SEPAREE_WHO] and flow.state is State.SEATS
    out = press(flow, "2*3*#")
    assert of(out, Ask) == [Ask(separee_of_seats, ((2, 3),))] and flow.state is State.IN_CONFERENCE
    assert prompts(flow.handle(AskAnswered())) == [P.DONE]
    assert prompts(flow.handle(AskAnswered())) == []          # a later mute's answer: silent


def test_consultation_and_bringing_back_take_one_number_or_none():
    flow = in_room()
    press(flow, "#2")
    assert of(press(flow, "4#"), Ask) == [Ask(consult_seat, (4,))]
    press(flow, "#0")
    assert of(press(flow, "2#"), Ask) == [Ask(bring_back_separee, (2,))]
    press(flow, "#0")
    assert of(press(flow, "#"), Ask) == [Ask(bring_back_separee, (0,))]     # all of them


def test_a_wrong_entry_or_a_refusal_is_said_never_silence():
    flow = in_room()
    press(flow, "#1")
    out = press(flow, "2#")                                     # one seat is no séparée
    assert of(out, Ask) == [] and prompts(out) == [P.INVALID_INPUT]
    press(flow, "#1")
    press(flow, "2*7*#")
    out = flow.handle(AskAnswered(Refusal.NO_SUCH_SEAT, 7))
    assert prompts(out) == [P.NO_SUCH_SEAT] and dict(of(out, Play)[0].params) == {"seat": 7}
    press(flow, "#0")
    press(flow, "3#")
    assert prompts(flow.handle(AskAnswered(Refusal.NO_SUCH_SEPAREE, 3))) == [P.NO_SUCH_SEPAREE]
    assert prompts(flow.handle(AskAnswered(Refusal.NOT_ALLOWED))) == [P.NOT_ALLOWED]


def test_a_participant_is_told_the_commands_are_the_moderators():
    flow = in_room(moderator=False)
    for keys in ("#1", "#2", "#0", "#6", "#5", "#8", "#9", "#4", "#7", "#3", "##"):
        out = press(flow, keys)
        assert prompts(out) == [P.MODERATOR_ONLY] and of(out, Ask) == []
        assert flow.state is State.IN_CONFERENCE


def test_a_moved_caller_is_told_where_it_is_and_counts_there():
    flow = in_room(moderator=False)
    out = flow.handle(Moved("CB-1~s2", 2))
    assert prompts(out) == [P.IN_SEPAREE] and dict(of(out, Play)[0].params) == {"number": 2}
    assert flow.room == "CB-1~s2"
    assert prompts(flow.handle(Moved("CB-1"))) == [P.BACK_IN_MAIN] and flow.room == "CB-1"


def test_a_moderator_mutes_and_removes_by_seat_and_hears_what_became_of_it():
    flow = in_room()
    assert prompts(press(flow, "#6")) == [P.MUTE_SEAT_WHO]
    assert of(press(flow, "3#"), Ask) == [Ask(mute_seat, (3,))]
    out = flow.handle(AskAnswered(now_on=True))
    assert prompts(out) == [P.SEAT_MUTED] and dict(of(out, Play)[0].params) == {"seat": 3}
    press(flow, "#6")
    press(flow, "3#")
    assert prompts(flow.handle(AskAnswered(now_on=False))) == [P.SEAT_UNMUTED]
    assert prompts(press(flow, "#5")) == [P.REMOVE_SEAT_WHO]
    assert of(press(flow, "2#"), Ask) == [Ask(remove_seat, (2,))]
    out = flow.handle(AskAnswered())
    assert prompts(out) == [P.SEAT_REMOVED] and dict(of(out, Play)[0].params) == {"seat": 2}
    press(flow, "#5")
    assert of(press(flow, "2*3#"), Ask) == []                   # one seat at a time


def test_mute_all_and_the_lock_are_asked_at_once_and_confirmed():
    flow = in_room()
    assert of(press(flow, "#8"), Ask) == [Ask(mute_participants, (True,))]
    assert prompts(flow.handle(AskAnswered(now_on=True))) == [P.ALL_MUTED]
    assert of(press(flow, "#9"), Ask) == [Ask(mute_participants, (False,))]
    assert prompts(flow.handle(AskAnswered())) == [P.ALL_UNMUTED]   # nobody was muted: still said
    assert of(press(flow, "#4"), Ask) == [Ask(toggle_lock, ())]
    assert prompts(flow.handle(AskAnswered(now_on=True))) == [P.CONFERENCE_LOCKED]
    press(flow, "#4")
    assert prompts(flow.handle(AskAnswered(now_on=False))) == [P.CONFERENCE_UNLOCKED]


def test_a_removed_participant_is_told_why_and_hung_up():
    flow = in_room(moderator=False)
    out = flow.handle(Removed())
    assert prompts(out)[-2:] == [P.REMOVED, P.GOODBYE] and of(out, Hangup)
    assert of(out, LeaveRoom)                    # the others hear that it left
    assert not of(flow.handle(Removed()), Hangup)           # a late second one: no second end


def test_a_participant_muted_by_a_moderator_hears_why_it_cannot_unmute():
    flow = in_room(moderator=False)
    flow.handle(MuteChanged(True, by_other=True))
    press(flow, "*6")
    assert prompts(flow.handle(AskAnswered(Refusal.MUTED_BY_MODERATOR))) == [
        P.ONLY_MODERATOR_UNMUTES]


def test_a_locked_conference_is_said_to_the_newcomer_who_is_hung_up():
    flow = new_flow(config())
    answer(flow)
    press(flow, "482913#")
    flow.handle(PinChecked(BOOKING, False, T0))
    out = flow.handle(JoinResult(JoinOutcome.LOCKED, 4))
    assert prompts(out) == [P.LOCKED_OUT, P.GOODBYE] and of(out, Hangup)


def test_ending_the_conference_asks_for_a_1_first_and_everyone_hears_who_ended_it():
    flow = in_room()
    assert prompts(press(flow, "#7")) == [P.END_CONFIRM] and flow.state is State.END_CONFIRM
    out = press(flow, "2")                                      # anything else: go on
    assert of(out, Ask) == [] and flow.state is State.IN_CONFERENCE
    press(flow, "#7")
    assert of(press(flow, "1"), Ask) == [Ask(end_conference, ())]
    assert prompts(flow.handle(AskAnswered())) == []            # no "done": it ends for it too
    participant = in_room(moderator=False)
    out = participant.handle(ConferenceClosed(Closing.BY_MODERATOR))
    assert prompts(out) == [P.ENDED_BY_MODERATOR, P.GOODBYE] and of(out, Hangup)


# ---- logging in with a personal PIN ([[moderators]]) ------------------------------------------

def test_a_participant_logs_in_with_a_personal_pin_and_then_moderates():
    flow = in_room(moderator=False)
    assert prompts(press(flow, "*8")) == [P.LOGIN_PIN] and flow.state is State.LOGIN_PIN
    out = press(flow, "51873920#")
    assert of(out, CheckLogin) == [CheckLogin("51873920")] and flow.state is State.IN_CONFERENCE
    assert not any("51873920" in a.message for a in of(out, Log))      # never in the log
    assert prompts(flow.handle(LoginChecked(Role.MODERATOR))) == [P.LOGGED_IN]
    assert of(press(flow, "#8"), Ask) == [Ask(mute_participants, (True,))]   # now it may
    assert prompts(press(flow, "*8")) == [P.LOGGED_IN]                  # already: no question


def test_the_superuser_is_told_so_and_a_pin_for_another_conference_is_no_strike():
    flow = in_room(moderator=False)
    press(flow, "*8")
    press(flow, "77112233#")
    assert prompts(flow.handle(LoginChecked(None, known=True))) == [P.NOT_YOUR_CONFERENCE]
    assert flow.pin_guard.admit("4917012345", T0) is Admission.ALLOWED
    press(flow, "*8")
    press(flow, "77112233#")
    assert prompts(flow.handle(LoginChecked(Role.OPERATOR))) == [P.LOGGED_IN_SUPERUSER]
    assert flow.role is Role.OPERATOR
    assert prompts(press(flow, "#6")) == [P.MUTE_SEAT_WHO]    # a moderator's keys work too
    press(flow, "#")
    assert prompts(press(flow, "*2")) == [P.NAME_WHO]


def test_wrong_personal_pins_count_towards_the_callers_lockout():
    guard = PinGuard(PinLimits(caller_failures=2))
    flow = new_flow(config(), pin_guard=guard)
    answer(flow)
    press(flow, "482913#")
    flow.handle(PinChecked(BOOKING, False, T0))
    flow.handle(JoinResult(JoinOutcome.JOINED, 4, 2))
    for _ in range(2):
        press(flow, "*8")
        press(flow, "11111111#")
        assert P.LOGIN_WRONG in prompts(flow.handle(LoginChecked(None)))
    press(flow, "*8")
    out = press(flow, "51873920#")                   # even the right one: locked for now
    assert of(out, CheckLogin) == [] and prompts(out) == [P.LOGIN_LOCKED]
    assert flow.state is State.IN_CONFERENCE and not of(out, Hangup)   # it stays in the room
    assert prompts(press(flow, "*8")) == [P.LOGIN_PIN]
    assert of(press(flow, "#"), CheckLogin) == [] and flow.state is State.IN_CONFERENCE  # never mind


def test_the_roll_call_reads_each_seat_with_its_name_state_and_room():
    flow = in_room()
    assert of(press(flow, "#3"), QueryRoll) == [QueryRoll()]
    out = flow.handle(RollCall((RollEntry(1, None, False, True),
                                RollEntry(2, "/names/p.wav", True, False, 1))))
    assert prompts(out) == [P.ROLL_SEAT, P.ROLL_NO_NAME, P.ROLL_TALKING,
                            P.ROLL_SEAT, P.ROLL_MUTED, P.ROLL_IN_SEPAREE, P.PARTICIPANT_COUNT]
    assert [a.path for a in of(out, PlayFile)] == ["/names/p.wav"]
    assert all(p.barge_in for p in of(out, Play) + of(out, PlayFile))   # any key stops it
    assert [dict(p.params) for p in of(out, Play)][-1] == {"count": 2}
    press(flow, "#3")
    assert prompts(flow.handle(RollCall(None))) == [P.MODERATOR_ONLY]


def test_a_seat_is_moved_by_its_number_a_star_and_the_room_number():
    flow = in_room()
    assert prompts(press(flow, "##")) == [P.MOVE_SEAT_WHO] and flow.state is State.SEATS
    assert of(press(flow, "4*1#"), Ask) == [Ask(move_seat, (4, 1))]
    assert prompts(flow.handle(AskAnswered())) == [P.DONE]
    press(flow, "##")
    assert of(press(flow, "4*0#"), Ask) == [Ask(move_seat, (4, 0))]     # back to the main room
    press(flow, "##")
    out = press(flow, "4#")                                  # no room given
    assert of(out, Ask) == [] and prompts(out) == [P.INVALID_INPUT]


def test_every_keypad_action_has_its_handler_and_its_help_line():
    from ivr.conference import KEY_HANDLERS, KEY_PROMPT
    from ivr.keypad import KeyAction
    assert set(KEY_HANDLERS) == set(KeyAction) == set(KEY_PROMPT)


def test_keys_a_to_d_in_a_number_are_no_digits():
    flow = in_room()
    press(flow, "#1")
    assert of(press(flow, "2A*3D*#"), Ask) == [Ask(separee_of_seats, ((2, 3),))]
    press(flow, "*2")
    press(flow, "B#")                               # as if '#' alone: whoever joined last
    assert flow.naming_for == 0
