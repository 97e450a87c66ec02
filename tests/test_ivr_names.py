"""End to end: callers record their names (I3) — said into the phone after the beep (here: each
phone's tone), trimmed, played back, kept with 1 — and a caller joining later is announced by
name to the one already in the room: energy outside the callers' tone bands in the other's
recording while the announcement plays, and none once it has ended. Then the moderator (the
first caller) gives the participant who joined last a new name with *2 # (its own tone), which
the owner of conference state keeps."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(90),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.config.settings import CapacitySettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr.speech.render import read_wav  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import quiet, until_asking  # noqa: E402

FIRST, LATER = 770.0, 440.0


def _no_announcement(voice) -> bool:
    return not any(s.room for s in voice.mixer.snapshot().sources)


async def _enter_with_name(voice, phone, port: int, pin: str, room: str) -> str:
    known = set(voice.calls())
    phone.dial(f"sip:7000@127.0.0.1:{port}")
    await voice.wait_for(lambda: set(voice.drivers) - known, 15)
    call = (set(voice.drivers) - known).pop()
    await until_asking(voice, call, State.PIN_ENTRY)
    await asyncio.to_thread(phone.send_digits, pin + "#")
    await until_asking(voice, call, State.NAME_CONFIRM, timeout=20)
    await asyncio.to_thread(phone.send_digits, "1")
    await voice.wait_for(lambda: call in voice.rooms().get(room, ()), 10)
    return call


def _run(tmp: Path) -> dict:
    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    booking = store.reserve(BookingRequest(now, now + timedelta(hours=1), 4, "Names", "a@example.com"),
                            now - timedelta(minutes=1), CapacitySettings(), 6).booking
    first = sf.Baresip.create(tmp / "first", sf.write_tone(tmp / "first.wav", FIRST))
    later = sf.Baresip.create(tmp / "later", sf.write_tone(tmp / "later.wav", LATER))
    settings = sf.ivr_settings(pin_numbers={"7000": "premium"}, naming=True, name_max_ms=1200)
    ctx = sf.ivr_context(settings, tmp, store=store)
    out: dict = {}

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            first.start()
            later.start()
            room = booking.reference
            a = await _enter_with_name(voice, first, settings.sip.port, booking.moderator_pin, room)
            await voice.wait_for(lambda: quiet(voice) and _no_announcement(voice), 30)
            b = await _enter_with_name(voice, later, settings.sip.port, booking.participant_pin, room)
            out["joined"] = time.monotonic()
            out["name_path"] = voice.drivers[b].flow.name_path
            await voice.wait_for(lambda: not _no_announcement(voice), 15)
            await voice.wait_for(lambda: quiet(voice) and _no_announcement(voice), 30)
            out["announced"] = time.monotonic()
            await asyncio.sleep(1.5)
            out["end"] = time.monotonic()
            out["first_at_end"] = first.recorded_samples()
            # the moderator names the participant who joined last: *2, # alone, the name, 1
            await asyncio.to_thread(first.send_digits, "*2")
            await until_asking(voice, a, State.NAME_WHO)
            await asyncio.to_thread(first.send_digits, "#")
            await until_asking(voice, a, State.NAME_FOR_CONFIRM, timeout=15)
            await asyncio.to_thread(first.send_digits, "1")
            await voice.wait_for(lambda: voice.members.seat_of(b).name != out["name_path"], 10)
            out["assigned"] = voice.members.seat_of(b).name
            await voice.wait_for(lambda: voice.drivers[b].flow.name_path == out["assigned"], 5)
            out["flow_name"] = voice.drivers[b].flow.name_path
            out["roster"] = [(e.call, e.role.value, e.seat)
                             for e in voice.members.conf.members(room)]
            out["calls"] = (a, b)
            # read now: the recordings are removed once the conference is over
            out["name_audio"] = read_wav(out["name_path"])
            out["assigned_audio"] = read_wav(out["assigned"])
            for call in (a, b):
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
            await asyncio.sleep(0.2)
            out["names_left"] = sorted(p.name for p in ctx.names_dir.glob("*.wav"))
        finally:
            first.stop()
            later.stop()
            await voice.stop()

    asyncio.run(scenario())
    rec = first.recording()
    assert rec is not None, first.log()
    out["first"] = sf.read_wav(rec)
    return out


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("ivrnames"))


def test_the_recorded_name_is_kept_trimmed_and_holds_the_callers_voice(names):
    path = names["name_path"]
    assert path is not None
    x, rate = names["name_audio"]
    assert 0.3 < len(x) / rate <= 1.3
    assert sf.tone_power(x, rate, LATER) > 0.05     # what the caller "said": its tone


def test_a_joining_callers_name_is_announced_to_the_others(names):
    samples, rate = names["first"]
    samples = samples[:names["first_at_end"]]           # up to `end` (the naming came after)
    end = names["end"]
    speech = sf.band_removed_rms(samples, rate, [LATER, FIRST])
    per_s = 10                                          # 100 ms frames
    n = len(speech)
    during = speech[n - int((end - names["joined"]) * per_s): n - int((end - names["announced"]) * per_s)]
    after = speech[n - int(1.3 * per_s): n - 2]
    # the announcement is speech: several loud frames; afterwards the line is quiet (a single
    # frame may click when a loaded machine drops a packet of the other's tone)
    assert during.size and int((during > 0.03).sum()) >= 3, during
    assert float(np.percentile(after, 80)) < 0.01, after


def test_the_moderator_names_the_last_who_joined_and_the_owner_keeps_it(names):
    a, b = names["calls"]
    assert names["roster"] == [(a, "moderator", 1), (b, "participant", 2)]
    path = names["assigned"]
    assert path is not None and path != names["name_path"]
    assert names["flow_name"] == path                   # its leave announcement says the new name
    x, rate = names["assigned_audio"]
    assert sf.tone_power(x, rate, FIRST) > 0.05         # the moderator's "voice": its tone
    assert sf.tone_power(x, rate, LATER) < 0.01


def test_the_recordings_are_removed_once_the_conference_is_over(names):
    assert names["names_left"] == []
