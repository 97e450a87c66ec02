"""A moderator's room commands by keypad (pure flow): séparées (#1), 1:1 consultation (#2) and
bringing back (#0) — what is asked of the owner, what is said for each answer and refusal, and
what a moved caller is told. The owner's side is tests/test_owner.py and test_moderation.py;
tests/test_sip_separee.py runs the same keys with real phones."""
from bot.conference.moderation import bring_back_separee, consult_seat, separee_of_seats
from flow_fixtures import BOOKING, T0, answer, config, new_flow, of, press, prompts
from ivr.events import (Ask, AskAnswered, JoinOutcome, JoinResult, Moved, PinChecked, Play,
                        PromptId as P, Refusal)
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
    for keys in ("#1", "#2", "#0"):
        out = press(flow, keys)
        assert prompts(out) == [P.MODERATOR_ONLY] and of(out, Ask) == []
        assert flow.state is State.IN_CONFERENCE


def test_a_moved_caller_is_told_where_it_is_and_counts_there():
    flow = in_room(moderator=False)
    out = flow.handle(Moved("CB-1~s2", 2))
    assert prompts(out) == [P.IN_SEPAREE] and dict(of(out, Play)[0].params) == {"number": 2}
    assert flow.room == "CB-1~s2"
    assert prompts(flow.handle(Moved("CB-1"))) == [P.BACK_IN_MAIN] and flow.room == "CB-1"
