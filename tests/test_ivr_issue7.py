"""End to end with real baresip phones (RFC 4733 PINs, RTP audio) for defects of issue 7:

- a caller who simply hangs up (BYE) is announced to the others (the leave tone), and a joiner
  does not hear its own join announcement (the bridge routes it to the others only);
- a booked conference the service ends: callers hear "ends in N minutes" before the end and
  are hung up at the end with the cause "booking ended" in their call records;
- a conference cancelled while callers are inside (here from another process's view: straight
  in the store, as `confbot booking cancel` does): they hear it and are hung up, and a late
  caller with that PIN hears "cancelled" with no lockout strike;
- the booking's language is used after the PIN; recorded names are removed once the
  conference is over.
"""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(120),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.service.bookingwatch import BookingWatch  # noqa: E402
from bot.store.calls import call_log  # noqa: E402
from bot.config.settings import (Announce, CapacitySettings, ConferenceSettings,  # noqa: E402
                          RoomSettings, ServiceSettings)
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import quiet, until_asking  # noqa: E402
from test_ivr_names import _enter_with_name  # noqa: E402

A_HZ, B_HZ, BEEP_HZ = 440.0, 770.0, 1000.0
PREMIUM = "7000"


def _room_sources(voice, room: str) -> list[str]:
    return [s.id for s in voice.mixer.snapshot().sources if s.room == room]


async def _dial_direct(voice, phone, port: int, room: str) -> str:
    before = set(voice.calls())
    phone.dial(f"sip:1000@127.0.0.1:{port}")
    await voice.wait_for(lambda: set(voice.drivers) - before, 15)
    call = (set(voice.drivers) - before).pop()
    await voice.wait_for(lambda: call in voice.rooms().get(room, ()), 15)
    return call


# ---- a hang-up is announced; a joiner does not hear its own announcement ------------------------

def _leave_scenario(tmp: Path) -> dict:
    settings = sf.ivr_settings(direct={"1000": "tones"}, rooms={"tones": 10})
    settings = replace(settings, rooms=(RoomSettings("tones", 10, Announce.TONE),))
    a = sf.Baresip.create(tmp / "a", sf.write_tone(tmp / "a.wav", A_HZ))
    b = sf.Baresip.create(tmp / "b", sf.write_tone(tmp / "b.wav", B_HZ))
    store = SqliteStore(tmp / "confbot.sqlite3")
    ctx = sf.ivr_context(settings, tmp, store=store)
    out: dict = {}

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            a.start()
            b.start()
            ca = await _dial_direct(voice, a, settings.sip.port, "tones")
            await voice.wait_for(lambda: quiet(voice) and not _room_sources(voice, "tones"), 20)
            cb = await _dial_direct(voice, b, settings.sip.port, "tones")
            # B's join tone: routed to A, not to B (checked on the real bridge while it plays)
            await voice.wait_for(lambda: bool(_room_sources(voice, "tones")), 10)
            source = _room_sources(voice, "tones")[0]
            out["join_routes"] = {dst for src, dst in await voice.bridge_routes() if src == source}
            out["calls"] = (ca, cb)
            await voice.wait_for(lambda: quiet(voice) and not _room_sources(voice, "tones"), 20)
            await asyncio.sleep(1.0)
            out["before_bye"] = a.recorded_samples()
            b.hangup()                                   # a plain BYE from the phone
            await voice.wait_for(lambda: cb not in voice.calls(), 10)
            await voice.wait_for(lambda: bool(_room_sources(voice, "tones")), 10)
            await voice.wait_for(lambda: not _room_sources(voice, "tones"), 10)
            await asyncio.sleep(0.5)
            out["after_tone"] = a.recorded_samples()
            voice.hangup(ca, cause="test over")
            await voice.wait_for(lambda: not voice.calls(), 10)
            await asyncio.sleep(0.3)       # the records are written on their own thread
        finally:
            a.stop()
            b.stop()
            await voice.stop()

    asyncio.run(scenario())
    out["a"] = sf.read_wav(a.recording())
    out["records"] = {r.call_id: r for r in call_log(store).call_records()}
    return out


@pytest.fixture(scope="module")
def leave(tmp_path_factory):
    return _leave_scenario(tmp_path_factory.mktemp("leave"))


def test_the_join_tone_goes_to_the_others_not_to_the_joiner(leave):
    ca, cb = leave["calls"]
    assert ca in leave["join_routes"] and cb not in leave["join_routes"], leave["join_routes"]


def test_a_caller_who_hangs_up_is_announced_to_the_others(leave):
    samples, rate = leave["a"]
    quiet_part = samples[leave["before_bye"] - rate: leave["before_bye"]]
    after = samples[leave["before_bye"]: leave["after_tone"]]
    assert sf.tone_power(quiet_part, rate, BEEP_HZ) < 0.01
    assert sf.tone_power(after, rate, BEEP_HZ) > 0.03, "no leave tone after B's BYE"


def test_call_records_say_who_ended_the_call(leave):
    ca, cb = leave["calls"]
    assert leave["records"][cb].end_reason.startswith("remote hangup")
    assert leave["records"][ca].end_reason == "test over"


# ---- a booked conference: its end, its cancellation, its language, its names --------------------

class Clock:
    """Real time plus an offset the test moves forward (the booking watch reads it)."""
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def _booked_scenario(tmp: Path) -> dict:
    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    ends = store.reserve(BookingRequest(now - timedelta(minutes=1), now + timedelta(minutes=10), 4,
                                        "Ends", "a@example.com", language="en"),
                         now - timedelta(minutes=2), CapacitySettings(), 6).booking
    cancelled = store.reserve(BookingRequest(now, now + timedelta(hours=1), 4, "Cancelled",
                                             "a@example.com", language="en"),
                              now - timedelta(minutes=1), CapacitySettings(), 6).booking
    settings = sf.ivr_settings(pin_numbers={PREMIUM: "premium"}, naming=True, name_max_ms=1200,
                               languages=("de", "en"))
    settings = replace(settings, conference=ConferenceSettings(warn_minutes=5, extend_minutes=15,
                                                               extend_max_minutes=15))
    clock = Clock()
    ctx = sf.ivr_context(settings, tmp, store=store, clock=clock)
    a = sf.Baresip.create(tmp / "a", sf.write_tone(tmp / "a.wav", A_HZ))
    b = sf.Baresip.create(tmp / "b", sf.write_tone(tmp / "b.wav", B_HZ))
    out: dict = {}

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        watch = BookingWatch(voice, store, interval=0.3)
        task = asyncio.create_task(watch.run())
        try:
            a.start()
            b.start()
            port = settings.sip.port
            # 1. the end of a booking: both in, warned 5 minutes before, hung up at the end
            ca = await _enter_with_name(voice, a, port, ends.participant_pin, ends.reference)
            cb = await _enter_with_name(voice, b, port, ends.moderator_pin, ends.reference)
            out["lang"] = voice.drivers[ca].lang
            out["names_in_room"] = sorted(p.name for p in ctx.names_dir.glob("*.wav"))
            await voice.wait_for(lambda: quiet(voice) and not _room_sources(voice, ends.reference),
                                 30)
            # 5 minutes before the end the lines are free: extended once by 15 minutes
            clock.offset = timedelta(minutes=5, seconds=5)
            await voice.wait_for(lambda: not quiet(voice), 10)       # "extended by ..." plays
            await voice.wait_for(lambda: quiet(voice), 15)
            out["extended_end"] = store.get(ends.reference).end
            await asyncio.sleep(1.5)        # its last packets have reached the phone
            # 5 minutes before the new end the limit is reached: a warning
            out["before_warning"] = a.recorded_samples()
            clock.offset = timedelta(minutes=20, seconds=5)
            await voice.wait_for(lambda: not quiet(voice), 10)       # the notice plays
            await voice.wait_for(lambda: quiet(voice), 15)
            out["after_warning"] = a.recorded_samples()
            assert ca in voice.calls() and cb in voice.calls()
            clock.offset = timedelta(minutes=25, seconds=1)
            await voice.wait_for(lambda: ca not in voice.calls() and cb not in voice.calls(), 20)
            out["ended_calls"] = (ca, cb)
            await asyncio.sleep(1.0)           # baresip finishes the call's recording
            out["a_first"] = sf.read_wav(a.recording())
            out["names_after"] = sorted(p.name for p in ctx.names_dir.glob("*.wav"))
            # 2. a cancellation while inside, then a late caller with the cancelled PIN
            clock.offset = timedelta()
            cc = await _enter_with_name(voice, a, port, cancelled.participant_pin, cancelled.reference)
            store.cancel(cancelled.reference)
            await voice.wait_for(lambda: cc not in voice.calls(), 20)
            before = set(voice.calls())
            b.dial(f"sip:{PREMIUM}@127.0.0.1:{port}")
            await voice.wait_for(lambda: set(voice.drivers) - before, 15)
            late = (set(voice.drivers) - before).pop()
            await until_asking(voice, late, State.PIN_ENTRY)
            await asyncio.to_thread(b.send_digits, cancelled.participant_pin + "#")
            await voice.wait_for(lambda: late not in voice.calls(), 20)
            out["cancel_calls"] = (cc, late)
            out["late_admission"] = voice.pin_guard.admit(b.user, clock())
            await asyncio.sleep(0.5)
        finally:
            task.cancel()
            a.stop()
            b.stop()
            await voice.stop()

    asyncio.run(scenario())
    out["records"] = {r.call_id: r for r in call_log(store).call_records()}
    out["booking"] = ends
    return out


@pytest.fixture(scope="module")
def booked(tmp_path_factory):
    return _booked_scenario(tmp_path_factory.mktemp("booked"))


def test_the_bookings_language_is_used_after_the_pin(booked):
    assert booked["lang"] == "en"          # the service's default is de


def test_callers_hear_that_the_conference_ends_soon_and_are_hung_up_at_the_end(booked):
    ca, cb = booked["ended_calls"]
    assert booked["records"][ca].end_reason == "booking ended"
    assert booked["records"][cb].end_reason == "booking ended"


def test_a_conference_is_extended_while_the_lines_are_free_up_to_the_limit(booked):
    assert booked["extended_end"] == booked["booking"].end + timedelta(minutes=15)


def test_the_end_warning_is_heard(booked):
    samples, rate = booked["a_first"]
    speech = sf.band_removed_rms(samples, rate, [A_HZ, B_HZ])      # 100 ms frames
    quiet_part = speech[booked["before_warning"] // 800 - 10: booked["before_warning"] // 800]
    notice = speech[booked["before_warning"] // 800: booked["after_warning"] // 800]
    # a loaded machine may click now and then (a lost packet of the other's tone); the notice is
    # a second or more of speech
    assert float(np.median(quiet_part)) < 0.01, quiet_part
    assert int((notice > 0.03).sum()) >= 10, notice


def test_a_conference_cancelled_while_callers_are_inside_ends_their_calls(booked):
    cc, late = booked["cancel_calls"]
    assert booked["records"][cc].end_reason == "conference cancelled"


def test_a_late_caller_with_a_cancelled_pin_hears_cancelled_without_a_lockout_strike(booked):
    cc, late = booked["cancel_calls"]
    assert booked["records"][late].end_reason == "conference cancelled"
    assert booked["late_admission"].value == "allowed"


def test_recorded_names_are_removed_when_the_conference_is_over(booked):
    assert len(booked["names_in_room"]) >= 2
    assert booked["names_after"] == []
