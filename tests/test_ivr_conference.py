"""End to end through the IVR: a booking made in the real SQLite store, real baresip phones
over 127.0.0.1 sending their PINs as RFC 4733 telephone-events, the VoiceService running one
CallFlow per call — and what each phone recorded, checked by FFT.

One scenario, three phones: A (440 Hz) dials the premium number with the participant PIN,
B (770 Hz) the toll-free number with the moderator PIN; A mutes with *6 and unmutes; B invites
C (1230 Hz) with *5 + number + #, the bot dials C (dialout_uri → C's port), C presses 1."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(90),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.store.calls import call_log  # noqa: E402
from bot.conference.mixer import Role  # noqa: E402
from bot.config.settings import CapacitySettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr.steps import State  # noqa: E402

TONES = {"a": 440.0, "b": 770.0, "c": 1230.0}
HEARD, SILENT = 0.03, 0.006
PREMIUM, TOLLFREE, INVITED = "7000", "7100", "5551234"


def quiet(voice: VoiceService) -> bool:
    """No driver has audio playing or queued."""
    return all(d._current is None and not d._queue for d in voice.drivers.values())


async def until_asking(voice: VoiceService, call: str, state: State, timeout: float = 30) -> None:
    """The call's flow waits in `state` and only barge-in prompts (or none) are playing."""
    def ready() -> bool:
        d = voice.drivers.get(call)
        return d is not None and d.flow.state is state and all(d.flow.playing.values())
    await voice.wait_for(ready, timeout)


async def dial_in(voice, phone, number: str, port: int, pin: str, room: str) -> str:
    before = set(voice.calls())
    phone.dial(f"sip:{number}@127.0.0.1:{port}")
    await voice.wait_for(lambda: set(voice.drivers) - before, 15)
    call = (set(voice.drivers) - before).pop()
    await until_asking(voice, call, State.PIN_ENTRY)
    await asyncio.to_thread(phone.send_digits, pin + "#")
    await voice.wait_for(lambda: call in voice.rooms().get(room, ()), 5)
    return call


def _run(tmp: Path) -> dict:
    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    booking = store.reserve(
        BookingRequest(now - timedelta(minutes=5), now + timedelta(minutes=55), 3, "Weekly",
                       "alice@example.com"), now - timedelta(minutes=6), CapacitySettings(), 6).booking
    phones = {n: sf.Baresip.create(tmp / n, sf.write_tone(tmp / f"{n}.wav", f),
                                   **({"answer": "auto", "user": INVITED} if n == "c" else {}))
              for n, f in TONES.items()}
    settings = sf.ivr_settings(pin_numbers={PREMIUM: "premium", TOLLFREE: "tollfree"},
                               dialout_uri=f"sip:{{number}}@{phones['c'].uri_host}")
    ctx = sf.ivr_context(settings, tmp, store=store)
    port, room = settings.sip.port, booking.reference
    marks: dict[str, float] = {}

    async def scenario() -> dict:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            for p in phones.values():
                p.start()
            a = await dial_in(voice, phones["a"], PREMIUM, port, booking.participant_pin, room)
            b = await dial_in(voice, phones["b"], TOLLFREE, port, booking.moderator_pin, room)
            roles = {c: voice.mixer.member(c).role for c in (a, b)}
            await voice.wait_for(lambda: quiet(voice), 30)
            await asyncio.sleep(0.3)
            marks["p1"] = time.monotonic()
            await asyncio.sleep(2.0)
            marks["mute"] = time.monotonic()
            await asyncio.to_thread(phones["a"].send_digits, "*6")
            await voice.wait_for(lambda: voice.mixer.member(a).muted, 15)
            await voice.wait_for(lambda: quiet(voice), 30)
            await asyncio.sleep(1.5)
            marks["unmute"] = time.monotonic()
            await asyncio.to_thread(phones["a"].send_digits, "*6")
            await voice.wait_for(lambda: not voice.mixer.member(a).muted, 15)
            # the invitation: *5, the number, #; C answers by itself and presses 1
            await asyncio.to_thread(phones["b"].send_digits, "*5")
            await until_asking(voice, b, State.INVITE_NUMBER)
            known = set(voice.calls())
            await asyncio.to_thread(phones["b"].send_digits, INVITED + "#")
            try:
                await voice.wait_for(lambda: set(voice.drivers) - known, 30)
            except TimeoutError:
                raise AssertionError(f"no invitee call: {voice.drivers[b].history[-12:]}") from None
            c = (set(voice.drivers) - known).pop()
            await voice.wait_for(lambda: voice.drivers[c].flow.state.value == "choosing", 15)
            await asyncio.to_thread(phones["c"].send_digits, "1")
            await voice.wait_for(lambda: c in voice.rooms().get(room, ()), 5)
            members = voice.rooms()[room]
            await voice.wait_for(lambda: quiet(voice), 30)
            await asyncio.sleep(0.3)
            marks["p3"] = time.monotonic()
            await asyncio.sleep(2.0)
            marks["end"] = time.monotonic()
            for call in (a, b, c):
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
            await asyncio.wrap_future(ctx.store_executor.submit(lambda: None))
            return {"calls": {"a": a, "b": b, "c": c}, "members": members, "roles": roles}
        finally:
            for p in phones.values():
                p.stop()
            await voice.stop()

    out = asyncio.run(scenario())
    out["booking"] = booking
    out["cdr"] = {r.call_id: r for r in call_log(store).call_records()}
    heard = {}
    for name, phone in phones.items():
        rec = phone.recording()
        assert rec is not None, f"{name} recorded nothing: {phone.log()}"
        samples, rate = sf.read_wav(rec)
        end = marks["end"]

        def win(a: float, b: float) -> dict:
            x = sf.window(samples, rate, end - a, end - b)
            return {f: sf.tone_power(x, rate, f) for f in TONES.values()}
        heard[name] = {"p3": win(marks["p3"], end - 0.3)}
        if name != "c":
            heard[name]["p1"] = win(marks["p1"], marks["mute"] - 0.1)
            heard[name]["p2"] = win(marks["mute"] + 0.6, marks["unmute"] - 0.1)
    out["heard"] = heard
    return out


@pytest.fixture(scope="module")
def conf(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("ivrconf"))


def test_right_pins_put_both_callers_into_the_bookings_room_with_their_roles(conf):
    calls = conf["calls"]
    assert set(conf["members"]) == {calls["a"], calls["b"], calls["c"]}
    assert conf["roles"] == {calls["a"]: Role.PARTICIPANT, calls["b"]: Role.MODERATOR}


def test_pin_callers_hear_each_other_and_not_themselves(conf):
    a, b = conf["heard"]["a"]["p1"], conf["heard"]["b"]["p1"]
    assert b[TONES["a"]] > HEARD, b
    assert a[TONES["b"]] > HEARD, a
    assert a[TONES["a"]] < SILENT and b[TONES["b"]] < SILENT


def test_star6_mutes_the_caller_for_the_others_and_it_still_hears_them(conf):
    b_muted, a_muted = conf["heard"]["b"]["p2"], conf["heard"]["a"]["p2"]
    assert b_muted[TONES["a"]] < SILENT, b_muted
    assert a_muted[TONES["b"]] > HEARD, a_muted


def test_invited_callee_joins_on_1_and_all_three_hear_each_other(conf):
    for me in "abc":
        heard = conf["heard"][me]["p3"]
        for other in "abc":
            if other == me:
                assert heard[TONES[other]] < SILENT, (me, heard)
            else:
                assert heard[TONES[other]] > HEARD, (me, other, heard)


def test_call_records_keep_tariff_booking_role_and_times(conf):
    calls, cdr, ref = conf["calls"], conf["cdr"], conf["booking"].reference
    a, b, c = cdr[calls["a"]], cdr[calls["b"]], cdr[calls["c"]]
    assert (a.dialled, a.tariff, a.booking, a.role) == (PREMIUM, "premium", ref, "participant")
    assert (b.dialled, b.tariff, b.booking, b.role) == (TOLLFREE, "tollfree", ref, "moderator")
    assert (c.direction, c.dialled, c.room) == ("out", INVITED, ref)
    for r in (a, b):
        assert r.direction == "in" and r.room == ref
        assert r.answered < r.joined < r.left <= r.ended
