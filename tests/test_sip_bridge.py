"""The bridge adapter against the reference mixer: real baresip callers, a sequence of mixer
operations (volume step, move to another room, whisper across rooms), and after each one what
every caller recorded matches what `bot.conference.refmix` computes from the core's routes — tone by tone,
within G.711's error. Proves relevels are applied as stop-then-start (a re-`startTransmit2` would
keep the old level) and that the adapter never lags the core."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(60),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.conference import refmix  # noqa: E402
from bot.conference.mixer import Direction  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402

TONES = {"a": 480.0, "b": 820.0, "c": 1370.0}
AMP = 0.3
PHASE = 1.6
RATE = 8000


def _expected(routes, by_phone) -> dict[str, dict[float, float]]:
    """Per phone: RMS of each tone it should hear, from the reference mixer."""
    frames = {by_phone[n]: refmix.tone(f, RATE, amplitude=int(AMP * 32767))
              for n, f in TONES.items()}
    heard = refmix.mix(routes, frames, sinks=by_phone.values())
    return {n: {f: refmix.tone_amplitude(heard[by_phone[n]], f) / 2 ** 0.5 / 32768
                for f in TONES.values()} for n in TONES}


def test_recordings_match_the_reference_mixer_through_relevel_move_and_whisper(tmp_path: Path):
    settings = sf.voice_settings({"lobby": 10, "side": 10}, {"1000": "lobby"})
    phones = {n: sf.Baresip.create(tmp_path / n, sf.write_tone(tmp_path / f"{n}.wav", f, amplitude=AMP))
              for n, f in TONES.items()}

    async def run():
        voice = VoiceService(settings)
        await voice.start()
        try:
            for i, p in enumerate(phones.values(), 1):
                p.start()
                p.dial(f"sip:1000@127.0.0.1:{settings.sip.port}")
                await voice.wait_for(lambda i=i: len(voice.rooms().get("lobby", ())) == i, 5)
            by_phone = dict(zip(phones, sorted(voice.rooms()["lobby"],
                                               key=lambda c: int(c.rsplit("-", 1)[1]))))
            a, b, c = by_phone["a"], by_phone["b"], by_phone["c"]
            steps = [
                lambda: voice.apply(voice.mixer.set_volume(b, -4, Direction.TALK)),   # relevel
                lambda: voice.apply(voice.mixer.move(c, "side")),
                lambda: voice.apply(voice.mixer.whisper(c, a)),
            ]
            expected = []
            for step in steps:
                step()
                expected.append(_expected(voice.mixer.routes(), by_phone))
                await asyncio.sleep(PHASE)
            for call in by_phone.values():
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
            return expected
        finally:
            for p in phones.values():
                p.stop()
            await voice.stop()

    expected = asyncio.run(run())
    recordings = {n: sf.read_wav(p.recording()) for n, p in phones.items()}
    k = len(expected)
    for i, want in enumerate(expected):
        start, stop = (k - i) * PHASE - 0.35, (k - i - 1) * PHASE + 0.35
        for name, (samples, rate) in recordings.items():
            part = sf.window(samples, rate, start, stop)
            for f, level in want[name].items():
                got = sf.tone_power(part, rate, f)
                assert abs(got - level) < 0.012 + 0.06 * level, (
                    f"phase {i}: {name} hears {f} Hz at {got:.4f}, reference mixer says {level:.4f}")


def test_an_announcement_player_is_heard_in_its_room_until_removed(tmp_path: Path):
    settings = sf.voice_settings({"lobby": 10, "side": 10}, {"1000": "lobby", "2000": "side"})
    announcement = sf.write_tone(tmp_path / "ann.wav", 1000.0, seconds=5)
    phones = {"lobby": sf.Baresip.create(tmp_path / "l", sf.write_tone(tmp_path / "l.wav", 440.0)),
              "side": sf.Baresip.create(tmp_path / "s", sf.write_tone(tmp_path / "s.wav", 700.0))}

    async def run():
        voice = VoiceService(settings)
        await voice.start()
        try:
            for i, (room, p) in enumerate(phones.items(), 1):
                p.start()
                p.dial(f"sip:{1000 if room == 'lobby' else 2000}@127.0.0.1:{settings.sip.port}")
                await voice.wait_for(lambda i=i: sum(map(len, voice.rooms().values())) == i, 5)
            voice.add_source("ann", str(announcement), room="lobby")
            await asyncio.sleep(PHASE)
            voice.remove_source("ann")
            await asyncio.sleep(PHASE)
            for call in list(voice.calls()):
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
        finally:
            for p in phones.values():
                p.stop()
            await voice.stop()

    asyncio.run(run())
    lobby, rate = sf.read_wav(phones["lobby"].recording())
    side, _ = sf.read_wav(phones["side"].recording())
    playing = sf.window(lobby, rate, 2 * PHASE - 0.35, PHASE + 0.35)
    removed = sf.window(lobby, rate, PHASE - 0.35, 0.35)
    assert sf.tone_power(playing, rate, 1000.0) > 0.15
    assert sf.tone_power(removed, rate, 1000.0) < 0.006
    assert sf.tone_power(sf.window(side, rate, 2 * PHASE - 0.35, 0.35), rate, 1000.0) < 0.006
