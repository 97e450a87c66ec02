"""End to end with real phones: a moderator opens a séparée by keypad and brings it back (C3).

Five baresip phones, each playing its own tone, dial in through the IVR with the booking's PINs
(RFC 4733 digits): the moderator first (seat 1), then a, b, c, d (seats 2-5). The moderator
presses #1 2*3*# — a and b go into séparée 1: each hears the other and nobody else, and the
main room (the moderator, c, d) hears neither of them, at the noise floor of an FFT on each
recording. A participant's #1 opens nothing. ## 4*1# moves c into the séparée too. Then #0 #
brings everyone back and all hear all.
Phases are cut out of the recordings by sample index (sipfixtures.Baresip.recorded_samples)."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(150),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.config.settings import CapacitySettings  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import dial_in, quiet, until_asking  # noqa: E402

TONES = {"m": 500.0, "a": 700.0, "b": 950.0, "c": 1300.0, "d": 1650.0}
HEARD, SILENT = 0.03, 0.006
NUMBER = "7000"


def _run(tmp: Path) -> dict:
    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    booking = store.reserve(
        BookingRequest(now - timedelta(minutes=5), now + timedelta(minutes=55), 5, "Séparée",
                       "alice@example.com"), now - timedelta(minutes=6), CapacitySettings(), 6).booking
    phones = {n: sf.Baresip.create(tmp / n, sf.write_tone(tmp / f"{n}.wav", f))
              for n, f in TONES.items()}
    settings = sf.ivr_settings(pin_numbers={NUMBER: "premium"})
    ctx = sf.ivr_context(settings, tmp, store=store)
    port, room = settings.sip.port, booking.reference
    sep = f"{room}~s1"
    phases = sf.Phases(phones)
    mark = phases.mark
    out: dict = {}

    async def settle(voice) -> None:
        await voice.wait_for(lambda: quiet(voice), 30)
        await asyncio.sleep(0.4)

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            for p in phones.values():
                p.start()
            calls = {}
            for n in TONES:
                pin = booking.moderator_pin if n == "m" else booking.participant_pin
                calls[n] = await dial_in(voice, phones[n], NUMBER, port, pin, room)
            out["seats"] = {n: voice.members.seat_of(c).seat for n, c in calls.items()}
            await settle(voice)
            # a participant's #1 is refused by the flow (spoken), nothing opens
            await asyncio.to_thread(phones["c"].send_digits, "#1")
            await voice.wait_for(lambda: quiet(voice), 15)
            out["participant_opened"] = voice.members.conf.separees(room)
            # the moderator: #1, seats 2 and 3, each ended by *, then #
            await asyncio.to_thread(phones["m"].send_digits, "#1")
            await until_asking(voice, calls["m"], State.SEATS)
            await asyncio.to_thread(phones["m"].send_digits, "2*3*#")
            await voice.wait_for(lambda: len(voice.rooms().get(sep, ())) == 2, 15)
            out["rooms"] = {r: sorted(n for n, c in calls.items() if c in members)
                            for r, members in voice.rooms().items()}
            out["flow_rooms"] = {n: voice.drivers[c].flow.room for n, c in calls.items()}
            await settle(voice)           # "you are now in private room one", "done"
            mark("separee")
            await asyncio.sleep(2.5)
            mark("separee_end")
            # ## 4*1#: c (seat 4) joins the séparée by its number
            await settle(voice)
            await asyncio.to_thread(phones["m"].send_digits, "##")
            await until_asking(voice, calls["m"], State.SEATS)
            await asyncio.to_thread(phones["m"].send_digits, "4*1#")
            await voice.wait_for(lambda: len(voice.rooms().get(sep, ())) == 3, 15)
            out["moved"] = sorted(n for n, c in calls.items() if c in voice.rooms().get(sep, ()))
            out["moved_flow_room"] = voice.drivers[calls["c"]].flow.room
            # back: #0 and # alone (every séparée)
            await asyncio.to_thread(phones["m"].send_digits, "#0")
            await until_asking(voice, calls["m"], State.SEATS)
            await asyncio.to_thread(phones["m"].send_digits, "#")
            await voice.wait_for(lambda: sep not in voice.rooms()
                                 and len(voice.rooms().get(room, ())) == 5, 15)
            out["separees_after"] = voice.members.conf.separees(room)
            await settle(voice)
            mark("back")
            await asyncio.sleep(2.0)
            mark("back_end")
            for c in calls.values():
                voice.hangup(c, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
        finally:
            for p in phones.values():
                p.stop()
            await voice.stop()

    asyncio.run(scenario())
    cut, out["rate"] = phases.cut(("separee", "back"))
    out.update(cut)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("separee"))


def power(run, who: str, phase: str, of: str) -> float:
    return sf.tone_power(run[who][phase], run["rate"], TONES[of])


def test_the_keys_open_seats_two_and_three_into_separee_one(run):
    assert run["seats"] == {"m": 1, "a": 2, "b": 3, "c": 4, "d": 5}
    assert run["participant_opened"] == {}
    room = next(r for r in run["rooms"] if "~" not in r)
    assert run["rooms"] == {room: ["c", "d", "m"], f"{room}~s1": ["a", "b"]}
    assert run["flow_rooms"]["a"] == f"{room}~s1" and run["flow_rooms"]["m"] == room


def test_a_seat_is_moved_into_the_separee_by_its_number(run):
    assert run["moved"] == ["a", "b", "c"] and run["moved_flow_room"].endswith("~s1")


def test_the_separee_members_hear_only_each_other(run):
    for who, other in (("a", "b"), ("b", "a")):
        assert power(run, who, "separee", other) >= HEARD, (who, other)
        for outside in ("m", "c", "d"):
            assert power(run, who, "separee", outside) < SILENT, (who, outside)


def test_the_main_room_hears_none_of_the_separee(run):
    for who in ("m", "c", "d"):
        for inside in ("a", "b"):
            assert power(run, who, "separee", inside) < SILENT, (who, inside)
        for other in {"m", "c", "d"} - {who}:
            assert power(run, who, "separee", other) >= HEARD, (who, other)


def test_brought_back_everybody_hears_everybody(run):
    assert run["separees_after"] == {}
    for who in TONES:
        for other in set(TONES) - {who}:
            assert power(run, who, "back", other) >= HEARD / 2, (who, other)
