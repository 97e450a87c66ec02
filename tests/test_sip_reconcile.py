"""The bridge cannot drift, with the real pjsua2 bridge and real baresip callers: a route broken
behind the core's back is found by the periodic reconcile and repaired (heard again, by FFT),
and a level change that fails because a call's port is missing is reported, counted and
repaired by the reconcile that the failure triggers (the caller is heard at the new level)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(90),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.conference.mixer import Direction  # noqa: E402
from bot.sip.events import RunOnOwner  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402

TONES = {"a": 480.0, "b": 820.0, "c": 1370.0}
AMP = 0.3
PERIOD = 2.0      # the reconcile interval of this test (the service's default is 30 s)


def test_routes_broken_behind_the_cores_back_are_repaired_and_heard_again(tmp_path: Path):
    settings = sf.voice_settings({"lobby": 10}, {"1000": "lobby"})
    phones = {n: sf.Baresip.create(tmp_path / n, sf.write_tone(tmp_path / f"{n}.wav", f,
                                                               amplitude=AMP))
              for n, f in TONES.items()}
    marks: dict[str, dict[str, int]] = {}
    seen: dict[str, object] = {}

    def mark(name: str) -> None:
        marks[name] = {n: p.recorded_samples() for n, p in phones.items()}

    async def run():
        voice = VoiceService(settings, reconcile_interval=PERIOD)
        await voice.start()
        stack = voice._stack
        try:
            for i, p in enumerate(phones.values(), 1):
                p.start()
                p.dial(f"sip:1000@127.0.0.1:{settings.sip.port}")
                await voice.wait_for(lambda i=i: len(voice.rooms().get("lobby", ())) == i, 5)
            by_phone = dict(zip(phones, sorted(voice.rooms()["lobby"],
                                               key=lambda c: int(c.rsplit("-", 1)[1]))))
            a, b, c = by_phone["a"], by_phone["b"], by_phone["c"]
            await asyncio.sleep(1.0)

            # 1. right after a periodic reconcile, a → b is stopped behind the core's back
            n = voice.bridge.reconciles
            await voice.wait_for(lambda: voice.bridge.reconciles > n, PERIOD + 3)

            def brk():
                stack._ports[a].stopTransmit(stack._ports[b])
                return stack._bridge.read()
            seen["broken"] = await asyncio.wrap_future(stack.query(brk))
            mark("broken")
            await asyncio.sleep(PERIOD / 2)
            mark("unnoticed")
            seen["unnoticed"] = await voice.bridge_routes() == voice.core_routes()
            await voice.wait_for(lambda: voice.bridge.repaired >= 1, PERIOD + 3)
            mark("repaired")
            seen["repaired"] = await voice.bridge_routes() == voice.core_routes()
            await asyncio.sleep(1.5)
            mark("before relevel")

            # 2. c's port is missing from the adapter while c's talk level drops 12 dB
            hidden = {}
            failures = stack.route_failures
            stack.submit(RunOnOwner(lambda: hidden.__setitem__(c, stack._ports.pop(c))))
            voice.apply(voice.mixer.set_volume(c, -4, Direction.TALK))
            stack.submit(RunOnOwner(lambda: stack._ports.__setitem__(c, hidden.pop(c))))
            await voice.wait_for(lambda: voice.bridge.repaired >= 3, PERIOD + 3)
            mark("relevelled")
            seen["failures"] = (stack.route_failures - failures, voice.bridge.failed_ops)
            state = await asyncio.wrap_future(stack.bridge_state())
            seen["levels"] = state == {(r.src, r.dst): r.level for r in voice.mixer.routes()}
            await asyncio.sleep(1.5)
            mark("end")
            for call in by_phone.values():
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 15)
            seen["by_phone"] = by_phone
        finally:
            for p in phones.values():
                p.stop()
            await voice.stop()

    asyncio.run(run())
    a, b = seen["by_phone"]["a"], seen["by_phone"]["b"]
    assert (a, b) not in seen["broken"]
    assert seen["unnoticed"] is False          # nobody noticed before the periodic check
    assert seen["repaired"] is True
    assert seen["failures"] == (2, 2)          # the two relevels of c's talk routes
    assert seen["levels"] is True              # every route at the core's level again

    def part(phone: str, start: str, stop: str, margin: int = 2400) -> tuple:
        samples, rate = sf.read_wav(phones[phone].recording())
        return samples[marks[start][phone] + margin: marks[stop][phone] - margin], rate

    gap, rate = part("b", "broken", "unnoticed")
    back, _ = part("b", "repaired", "before relevel")
    assert sf.tone_power(gap, rate, TONES["a"]) < 0.006, "b still heard a: the break did nothing"
    assert sf.tone_power(back, rate, TONES["a"]) > 0.1, "b does not hear a again after repair"
    assert sf.tone_power(gap, rate, TONES["c"]) > 0.1          # the other routes were untouched
    loud, _ = part("a", "repaired", "before relevel")
    quiet, _ = part("a", "relevelled", "end")
    ratio = sf.tone_power(quiet, rate, TONES["c"]) / sf.tone_power(loud, rate, TONES["c"])
    assert 0.18 < ratio < 0.35, f"a hears c at {ratio:.2f} of before, want 0.25 (-12 dB)"
