"""End to end with real phones: a moderator mutes a seat, mutes everyone, locks the conference
and removes a seat by keypad (C2), in a conference where a participant may not undo a
moderator's mute (`[conference] self_unmute = false`).

Four baresip phones, each playing its own tone, dial in through the IVR with the booking's PINs
(RFC 4733 digits): the moderator m (seat 1), then a, b, c (seats 2-4).
  * #6 2 # mutes a: nobody hears a's tone any more, everybody else is still heard; a's own *6
    is refused (it stays muted); the roll call (#3) has a muted and the others talking;
  * #8 mutes every participant (lecture mode): they all hear m, m hears none of them; #9 lifts it;
  * #4 locks: a fifth phone with the participant PIN is refused and hung up ("conference
    locked" in its call record), the four stay;
  * #5 4 # removes c: its call ends ("removed by a moderator"), the others stay and hear each
    other;
  * b presses *8 and a wrong personal PIN (still a participant), then the superuser's PIN
    ([[moderators]], superuser = true): now it may, and its #7 then 1 ends the conference —
    every call ends ("ended by a moderator").
Phases are cut out of the recordings by sample index and checked by FFT power per tone."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(180),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.config.settings import CapacitySettings, ModeratorSettings  # noqa: E402
from bot.conference.rooms import Role  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import dial_in, quiet, until_asking  # noqa: E402

TONES = {"m": 500.0, "a": 700.0, "b": 950.0, "c": 1300.0}
HEARD, SILENT = 0.03, 0.006
NUMBER = "7000"
SUPERUSER_PIN = "77112233"
PHASES = ("seat_muted", "lecture", "after_remove")


def _run(tmp: Path) -> dict:
    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    booking = store.reserve(
        BookingRequest(now - timedelta(minutes=5), now + timedelta(minutes=55), 5, "Lecture",
                       "alice@example.com"), now - timedelta(minutes=6), CapacitySettings(), 6).booking
    # baresip hangs up when its tone file ends: longer than the whole scenario
    phones = {n: sf.Baresip.create(tmp / n, sf.write_tone(tmp / f"{n}.wav", f, seconds=240.0))
              for n, f in TONES.items()}
    late = sf.Baresip.create(tmp / "late", sf.write_tone(tmp / "late.wav", 1900.0))
    settings = sf.ivr_settings(pin_numbers={NUMBER: "premium"})
    settings = replace(settings, conference=replace(settings.conference, self_unmute=False),
                       moderators=(ModeratorSettings("Olga", SUPERUSER_PIN, superuser=True),))
    ctx = sf.ivr_context(settings, tmp, store=store)
    port, room = settings.sip.port, booking.reference
    phases = sf.Phases(phones)
    mark = phases.mark
    out: dict = {}

    async def settle(voice) -> None:
        await voice.wait_for(lambda: quiet(voice), 30)
        await asyncio.sleep(0.4)

    async def moderator(voice, calls, keys: str, operand: str | None = None) -> None:
        await asyncio.to_thread(phones["m"].send_digits, keys)
        if operand is not None:
            await until_asking(voice, calls["m"], State.SEATS)
            await asyncio.to_thread(phones["m"].send_digits, operand)

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        conf = voice.members.conf
        await voice.start()
        try:
            for p in (*phones.values(), late):
                p.start()
            calls = {}
            for n in TONES:
                pin = booking.moderator_pin if n == "m" else booking.participant_pin
                calls[n] = await dial_in(voice, phones[n], NUMBER, port, pin, room)
            out["seats"] = {n: conf.seat_of(c).seat for n, c in calls.items()}
            await settle(voice)
            # #6 2 #: a is muted by the moderator; its own *6 cannot undo that here
            await moderator(voice, calls, "#6", "2#")
            await voice.wait_for(lambda: conf.muted(calls["a"]), 15)
            await settle(voice)
            await asyncio.to_thread(phones["a"].send_digits, "*6")
            await asyncio.sleep(1.0)
            await settle(voice)
            out["a_after_own_unmute"] = conf.muted(calls["a"])
            mark("seat_muted")
            await asyncio.sleep(2.5)
            mark("seat_muted_end")
            # #3: the roll call, as the moderator hears it (its presence watches the talk)
            out["roll"] = voice.roll_call(calls["m"])
            out["roll_by_participant"] = voice.roll_call(calls["b"])
            await asyncio.to_thread(phones["m"].send_digits, "#3")
            await asyncio.sleep(0.5)
            await settle(voice)
            out["m_state_after_roll"] = voice.drivers[calls["m"]].flow.state
            # #8: lecture mode; #9 lifts it for everyone, a included
            await moderator(voice, calls, "#8")
            await voice.wait_for(lambda: all(conf.muted(calls[n]) for n in "abc"), 15)
            out["moderator_muted_in_lecture"] = conf.muted(calls["m"])
            await settle(voice)
            mark("lecture")
            await asyncio.sleep(2.5)
            mark("lecture_end")
            await moderator(voice, calls, "#9")
            await voice.wait_for(lambda: not any(conf.muted(calls[n]) for n in "abc"), 15)
            await settle(voice)
            # #4: locked; a newcomer with the participant PIN is refused
            await moderator(voice, calls, "#4")
            await voice.wait_for(lambda: conf.locked(room), 15)
            await settle(voice)
            before = set(voice.calls())
            late.dial(f"sip:{NUMBER}@127.0.0.1:{port}")
            await voice.wait_for(lambda: set(voice.drivers) - before, 15)
            newcomer = (set(voice.drivers) - before).pop()
            await until_asking(voice, newcomer, State.PIN_ENTRY)
            await asyncio.to_thread(late.send_digits, booking.participant_pin + "#")
            await voice.wait_for(lambda: newcomer not in voice.calls(), 30)
            out["newcomer"] = newcomer
            out["room_after_lock"] = sorted(n for n, c in calls.items()
                                            if c in voice.rooms().get(room, ()))
            # #5 4 #: c is removed and hung up
            await moderator(voice, calls, "#5", "4#")
            await voice.wait_for(lambda: calls["c"] not in voice.calls(), 30)
            out["room_after_remove"] = sorted(n for n, c in calls.items()
                                              if c in voice.rooms().get(room, ()))
            await settle(voice)
            mark("after_remove")
            await asyncio.sleep(2.0)
            mark("after_remove_end")
            # b logs in with the superuser's personal PIN (a wrong one first) ...
            for pin in ("99999999", SUPERUSER_PIN):
                await settle(voice)
                await asyncio.to_thread(phones["b"].send_digits, "*8")
                await until_asking(voice, calls["b"], State.LOGIN_PIN)
                await asyncio.to_thread(phones["b"].send_digits, pin + "#")
                await voice.wait_for(lambda: voice.drivers[calls["b"]].flow.state
                                     is State.IN_CONFERENCE, 15)
                await asyncio.sleep(0.5)
                out.setdefault("b_roles", []).append(conf.seat_of(calls["b"]).role)
            # ... and, as the superuser, ends the conference for everyone: #7, then 1
            await settle(voice)
            await asyncio.to_thread(phones["b"].send_digits, "#7")
            await until_asking(voice, calls["b"], State.END_CONFIRM)
            await asyncio.to_thread(phones["b"].send_digits, "1")
            await voice.wait_for(lambda: not voice.calls(), 30)
            out["calls"] = calls
        finally:
            for p in (*phones.values(), late):
                p.stop()
            await voice.stop()

    asyncio.run(scenario())
    out["records"] = {r.call_id: r for r in store.call_records()}
    cut, out["rate"] = phases.cut(PHASES)
    out.update(cut)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("moderation"))


def power(run, who: str, phase: str, of: str) -> float:
    return sf.tone_power(run[who][phase], run["rate"], TONES[of])


def test_a_muted_seat_is_heard_by_nobody_and_cannot_unmute_itself(run):
    assert run["seats"] == {"m": 1, "a": 2, "b": 3, "c": 4}
    assert run["a_after_own_unmute"] is True
    for who in "mbc":
        assert power(run, who, "seat_muted", "a") < SILENT, who
        for other in set("mbc") - {who}:
            assert power(run, who, "seat_muted", other) >= HEARD, (who, other)
    for other in "mbc":                       # a still hears everyone
        assert power(run, "a", "seat_muted", other) >= HEARD, other


def test_the_roll_call_says_who_is_muted_and_who_talks(run):
    entries = run["roll"].entries
    assert [(e.seat, e.muted, e.separee) for e in entries] == [
        (1, False, 0), (2, True, 0), (3, False, 0), (4, False, 0)]
    assert all(e.talking for e in entries if e.seat in (1, 3, 4))   # each phone plays a tone
    assert run["roll_by_participant"].entries is None
    assert run["m_state_after_roll"] is State.IN_CONFERENCE


def test_in_lecture_mode_only_the_moderator_is_heard(run):
    assert run["moderator_muted_in_lecture"] is False
    for who in "abc":
        assert power(run, who, "lecture", "m") >= HEARD, who
        for other in set("abc") - {who}:
            assert power(run, who, "lecture", other) < SILENT, (who, other)
    for who in "abc":
        assert power(run, "m", "lecture", who) < SILENT, who


def test_a_locked_conference_refuses_a_newcomer_and_keeps_its_members(run):
    assert run["room_after_lock"] == ["a", "b", "c", "m"]
    record = run["records"][run["newcomer"]]
    assert record.joined is None and record.end_reason == "conference locked", record


def test_a_removed_seat_is_hung_up_and_the_others_go_on(run):
    assert run["room_after_remove"] == ["a", "b", "m"]
    assert run["records"][run["calls"]["c"]].end_reason == "removed by a moderator"
    for who in "mab":
        for other in set("mab") - {who}:
            assert power(run, who, "after_remove", other) >= HEARD, (who, other)


def test_the_end_key_ends_every_call(run):
    assert run["b_roles"] == [Role.PARTICIPANT, Role.OPERATOR]   # a wrong PIN, then the right
    for n in "mab":
        assert run["records"][run["calls"][n]].end_reason == "ended by a moderator", n
