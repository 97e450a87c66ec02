"""End to end: real baresip callers over 127.0.0.1 dial direct-access numbers, are answered by
the VoiceService (pjsua2 + the mixer core) and hear exactly what the room rules promise — checked
by FFT on what each caller recorded."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(60),
]
pjsua2 = pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.service.voice import VoiceService  # noqa: E402

TONES = {"a": 440.0, "b": 770.0, "c": 1230.0, "side": 1850.0}
ALL = list(TONES.values())
PHASE = 2.0          # seconds of audio before and after the mute
HEARD, SILENT = 0.03, 0.006   # tone RMS (full scale 1.0); a sent tone is 0.3/sqrt(2) = 0.21


def _run_scenario(tmp: Path) -> dict:
    settings = sf.voice_settings({"lobby": 10, "side": 10}, {"1000": "lobby", "2000": "side"})
    uri = {"lobby": f"sip:1000@127.0.0.1:{settings.sip.port}",
           "side": f"sip:2000@127.0.0.1:{settings.sip.port}"}
    phones = {name: sf.Baresip.create(tmp / name, sf.write_tone(tmp / f"{name}.wav", f))
              for name, f in TONES.items()}

    async def scenario() -> dict:
        voice = VoiceService(settings)
        voice.watch_talk()      # every room: talkers are reported only where someone watches
        await voice.start()
        try:
            for i, (name, phone) in enumerate(phones.items(), 1):
                phone.start()
                phone.dial(uri["side" if name == "side" else "lobby"])
                # one at a time, so call ids ("call-<run>-1", ...) follow the phones' order
                await voice.wait_for(
                    lambda i=i: sum(len(m) for m in voice.rooms().values()) == i, 5)
            await voice.wait_for(lambda: sum(len(m) for m in voice.rooms().values()) == 4, 5)
            by_phone = dict(zip(phones, sorted(voice.calls(), key=lambda c: int(c.rsplit("-", 1)[1]))))
            rooms = voice.rooms()
            await asyncio.sleep(0.5 + PHASE)
            voice.set_muted(by_phone["a"], True)
            await asyncio.sleep(PHASE)
            talking = voice.talk.talking()
            for call in by_phone.values():
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
            return {"rooms": rooms, "by_phone": by_phone, "talking": talking}
        finally:
            for phone in phones.values():
                phone.stop()
            await voice.stop()

    result = asyncio.run(scenario())
    heard = {}
    for name, phone in phones.items():
        rec = phone.recording()
        assert rec is not None, f"{name} recorded nothing: {phone.log()}"
        samples, rate = sf.read_wav(rec)
        before = sf.window(samples, rate, PHASE + 1.6, PHASE + 0.4)
        after = sf.window(samples, rate, PHASE - 0.4, 0.3)
        heard[name] = {"before": {f: sf.tone_power(before, rate, f) for f in ALL},
                       "after": {f: sf.tone_power(after, rate, f) for f in ALL}}
    result["heard"] = heard
    return result


@pytest.fixture(scope="module")
def lobby(tmp_path_factory):
    return _run_scenario(tmp_path_factory.mktemp("lobby"))


def test_direct_access_numbers_put_callers_into_their_rooms(lobby):
    by_phone, rooms = lobby["by_phone"], lobby["rooms"]
    assert rooms["lobby"] == tuple(sorted(by_phone[n] for n in "abc"))
    assert rooms["side"] == (by_phone["side"],)


@pytest.mark.parametrize("me", ["a", "b", "c"])
def test_each_lobby_caller_hears_the_other_two_and_not_itself(lobby, me):
    heard = lobby["heard"][me]["before"]
    for other in "abc":
        if other == me:
            assert heard[TONES[other]] < SILENT, f"{me} hears itself: {heard}"
        else:
            assert heard[TONES[other]] > HEARD, f"{me} does not hear {other}: {heard}"
    assert heard[TONES["side"]] < SILENT, f"{me} hears the other room: {heard}"


def test_caller_in_a_second_room_hears_none_of_the_lobby(lobby):
    for phase in ("before", "after"):
        heard = lobby["heard"]["side"][phase]
        assert all(heard[f] < SILENT for f in ALL), heard


def test_muting_a_caller_removes_its_tone_and_keeps_the_others(lobby):
    for me in "bc":
        before, after = lobby["heard"][me]["before"], lobby["heard"][me]["after"]
        assert before[TONES["a"]] > HEARD
        assert after[TONES["a"]] < SILENT, f"{me} still hears muted a: {after}"
        other = "c" if me == "b" else "b"
        assert after[TONES[other]] > HEARD, f"{me} lost unmuted {other}: {after}"
    # the muted caller still hears the room
    after_a = lobby["heard"]["a"]["after"]
    assert after_a[TONES["b"]] > HEARD and after_a[TONES["c"]] > HEARD


def test_talk_detection_reports_every_caller_sending_a_tone_as_talking(lobby):
    # getTxLevel is the caller's voice into the bridge: the caller alone in "side" hears nothing
    # but talks, and the muted caller still talks (it is only not routed)
    assert lobby["talking"] == frozenset(lobby["by_phone"].values())
