"""Call-flow fixes found by trying confbot as a new user (issue 7), as specifications of the pure
flow: times said in the service's zone, the booking's language, a cancelled booking's PIN, a
conference the service ends or extends, inviting without a dial-out gateway, and the log lines
a carrier's admin needs (wrong PINs without digits, keypad actions, masked numbers)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.booking.domain import BookingStatus
from flow_fixtures import BOOKING, MENU_NUMBER, T0, answer, config, new_flow, of, press, prompts
from ivr import catalog
from ivr.events import (AnnounceToRoom, Closing, ConferenceClosed, ConferenceNotice, DialOut,
                        Hangup, JoinOutcome, JoinResult, LeaveRoom, Log, PinChecked, Play,
                        PromptId as P, SetLanguage)
from ivr.guard import PinGuard, PinLimits
from ivr.steps import Announce, State

BERLIN = ZoneInfo("Europe/Berlin")
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def in_room(flow=None, booking=BOOKING, **kw):
    flow = flow or new_flow(config(**kw))
    answer(flow)
    press(flow, "482913#")
    flow.handle(PinChecked(booking, False, T0))
    flow.handle(JoinResult(JoinOutcome.JOINED, 2))
    assert flow.state is State.IN_CONFERENCE
    return flow


# ---- 3: times are said in the service's zone ---------------------------------------------------

def test_the_early_join_prompt_says_the_start_in_the_service_zone():
    booking = replace(BOOKING, start=T0 + timedelta(hours=1))     # 11:00 UTC = 12:00 in Berlin
    flow = new_flow(config(timezone=BERLIN))
    answer(flow)
    press(flow, "482913#")
    out = flow.handle(PinChecked(booking, False, T0))
    start = of(out, Play)[0].param_dict["start"]
    assert start == booking.start and start.utcoffset() == timedelta(hours=1)
    cat = catalog.load(PROMPTS, ["de", "en"], "de")
    text = catalog.resolve(cat, P.CONFERENCE_NOT_STARTED, {"start": start}, "en").segments[0].text
    assert "twelve" in text and "eleven" not in text


# ---- 4: the booking's language ------------------------------------------------------------------

def test_a_right_pin_switches_to_the_bookings_language():
    flow = new_flow(config(default_language="de"))
    answer(flow)
    press(flow, "482913#")
    out = flow.handle(PinChecked(replace(BOOKING, language="en"), False, T0))
    assert out[0] == SetLanguage("en")


def test_a_language_chosen_in_the_menu_wins_over_the_bookings():
    flow = new_flow(config(default_language="en"))
    answer(flow, dialled=MENU_NUMBER)
    press(flow, "9")
    out = press(flow, "1")                       # Deutsch
    assert SetLanguage("de") in out
    press(flow, "1")                             # join a conference: the PIN
    press(flow, "482913#")
    out = flow.handle(PinChecked(replace(BOOKING, language="en"), False, T0))
    assert not of(out, SetLanguage)


def test_a_booking_in_an_unconfigured_language_keeps_the_current_one():
    flow = new_flow(config(languages=("de", "en")))
    answer(flow)
    press(flow, "482913#")
    out = flow.handle(PinChecked(replace(BOOKING, language="fr"), False, T0))
    assert not of(out, SetLanguage)


# ---- 11: a cancelled conference -----------------------------------------------------------------

def test_the_pin_of_a_cancelled_booking_says_cancelled_and_counts_no_strike():
    guard = PinGuard(PinLimits(caller_failures=1))
    flow = new_flow(pin_guard=guard)
    answer(flow)
    press(flow, "482913#")
    out = flow.handle(PinChecked(replace(BOOKING, status=BookingStatus.CANCELLED), False, T0))
    assert prompts(out) == [P.CONFERENCE_CANCELLED, P.GOODBYE]
    assert out[-1] == Hangup("conference cancelled")
    again = new_flow(pin_guard=guard)             # one strike would have locked this caller
    assert P.ENTER_PIN in prompts(answer(again, at=T0 + timedelta(seconds=5)))


def test_a_cancelled_conference_says_so_to_those_inside_and_hangs_up_without_leave_announcements():
    flow = in_room()
    out = flow.handle(ConferenceClosed(Closing.CANCELLED))
    assert of(out, LeaveRoom) and not of(out, AnnounceToRoom)
    assert prompts(out) == [P.CONFERENCE_CANCELLED, P.GOODBYE]
    assert out[-1] == Hangup("conference cancelled") and flow.state is State.CLOSING
    assert flow.handle(ConferenceClosed(Closing.CANCELLED)) == []     # once is enough


def test_the_end_of_the_booked_time_says_so_and_hangs_up():
    flow = in_room(announce=Announce.TONE)
    out = flow.handle(ConferenceClosed(Closing.ENDED))
    assert prompts(out) == [P.CONFERENCE_CLOSING, P.GOODBYE] and out[-1] == Hangup("booking ended")


def test_a_caller_still_entering_a_closed_conference_is_told_too():
    flow = new_flow()
    answer(flow)
    press(flow, "482913#")
    flow.handle(PinChecked(BOOKING, False, T0))          # JOINING: its JoinResult is due
    out = flow.handle(ConferenceClosed(Closing.ENDED))
    assert prompts(out) == [P.CONFERENCE_CLOSING, P.GOODBYE]
    assert of(out, LeaveRoom) == [LeaveRoom(BOOKING.reference)]   # the join already happened
    assert flow.handle(JoinResult(JoinOutcome.JOINED, 2)) == []      # the late answer: ignored


# ---- 10: the end of a booking -------------------------------------------------------------------

def test_callers_in_the_room_hear_that_the_end_is_near_and_of_an_extension():
    flow = in_room()
    out = flow.handle(ConferenceNotice(5))
    assert [(a.prompt, a.param_dict) for a in of(out, Play)] == [(P.CONFERENCE_ENDS_SOON,
                                                                   {"minutes": 5})]
    out = flow.handle(ConferenceNotice(15, extended=True))
    assert prompts(out) == [P.CONFERENCE_EXTENDED]


def test_a_caller_not_yet_in_the_room_hears_no_end_notice():
    flow = new_flow()
    answer(flow)
    assert flow.handle(ConferenceNotice(5)) == []


# ---- 12: inviting without a dial-out gateway ----------------------------------------------------

def test_the_invite_key_without_a_dialout_uri_says_unavailable_at_once():
    flow = in_room(dialout=False)
    out = press(flow, "*5")
    assert prompts(out) == [P.INVITE_UNAVAILABLE] and flow.state is State.IN_CONFERENCE
    assert not of(out, DialOut)


# ---- 13: what the log says ----------------------------------------------------------------------

def test_each_wrong_pin_is_logged_without_its_digits():
    flow = new_flow()
    answer(flow)
    press(flow, "918273#")
    out = flow.handle(PinChecked(None, False, T0))
    lines = [line.message for line in of(out, Log)]
    assert any("wrong PIN" in m and "1/3" in m for m in lines)
    assert not any("918273" in m for m in lines)


def test_keypad_actions_that_change_something_are_logged():
    flow = in_room()
    out = press(flow, "*6")
    assert any("mute" in line.message for line in of(out, Log))
    out = press(flow, "*7")
    assert any("listen volume +1" in line.message for line in of(out, Log))


def test_a_dialled_invite_number_is_logged_masked_after_four_digits():
    flow = in_room(dialout=True)
    out = press(flow, "*5") + press(flow, "0301234567#")
    assert of(out, DialOut)[0].number == "0301234567"
    lines = " ".join(line.message for line in of(out, Log))
    assert "0301xxxxxx" in lines and "0301234567" not in lines
