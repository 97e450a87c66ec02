"""GIL independence: pjmedia's bridge and RTP threads never wait for Python. While 50 callers talk
(3 baresip callers in one room, 47 sipp callers playing G.711 into rooms of ~10), the test burns
the Python main thread (the asyncio loop) for 5 s; the measuring callers' own RTP statistics show
no loss and their recordings show no gap in the tones they hear."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None or sf.SIPP is None, reason="needs baresip and sipp"),
    pytest.mark.timeout(90),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.service.voice import VoiceService  # noqa: E402

BURN = 5.0
TONES = (500.0, 900.0, 1300.0)
LOAD_ROOMS = {"r1": 10, "r2": 10, "r3": 10, "r4": 10, "r5": 7}   # 47 sipp callers


def _burn(seconds: float) -> int:
    """Pure-Python work that holds the GIL except at the interpreter's switch points."""
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return n


def test_burning_the_main_thread_for_5s_causes_no_rtp_loss_or_gap(tmp_path: Path):
    numbers = {"1000": "lobby", **{f"10{i}1": r for i, r in enumerate(LOAD_ROOMS, 1)}}
    settings = sf.voice_settings({"lobby": 10, **LOAD_ROOMS}, numbers, max_calls=64)
    target = f"127.0.0.1:{settings.sip.port}"
    phones = [sf.Baresip.create(tmp_path / f"p{i}", sf.write_tone(tmp_path / f"t{i}.wav", f))
              for i, f in enumerate(TONES)]
    load = sf.sipp_scenario("load", rtp_pcaps=(str(sf.SIPP_PCAPS / "g711a.pcap"),),
                            hold_ms=6000)

    async def run() -> float:
        voice = VoiceService(settings)
        await voice.start()
        try:
            for p in phones:
                p.start()
                p.dial(f"sip:1000@{target}")
            await voice.wait_for(lambda: len(voice.rooms().get("lobby", ())) == 3, 10)
            sipps = [asyncio.create_task(asyncio.to_thread(
                sf.run_sipp, tmp_path / f"sipp-{room}", load, target, number, calls=size,
                rate=50)) for (number, room), size in zip(list(numbers.items())[1:],
                                                          LOAD_ROOMS.values())]
            await voice.wait_for(lambda: sum(len(m) for m in voice.rooms().values()) == 50, 10)
            await asyncio.sleep(0.3)
            t0 = time.perf_counter()
            _burn(BURN)                       # the asyncio loop is blocked all this time
            lag = time.perf_counter() - t0
            await asyncio.sleep(0.5)
            for call, info in voice.calls().items():
                if info.room == "lobby":
                    voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.rooms().get("lobby"), 15)
            for task in sipps:
                proc = await task
                assert proc.returncode == 0, proc.stdout.decode()[-1500:]
            return lag
        finally:
            for p in phones:
                p.stop()
            await voice.stop()

    lag = asyncio.run(run())
    assert lag >= BURN
    for i, phone in enumerate(phones):
        stats = sf.baresip_rtp_summary(phone.log())
        assert stats, phone.log()
        assert stats["lost"][1] == 0, f"caller {i} lost packets: {stats}"
        assert stats["packets"][1] >= 50 * (BURN + 0.5), stats
        assert stats["jitter"][1] < 10.0, f"caller {i} jitter: {stats}"
        samples, rate = sf.read_wav(phone.recording())
        # the burn ended 0.5 s before the hang-up: look at the 5 s before that, frame by frame
        during = sf.window(samples, rate, BURN + 0.5, 0.5)
        rms = sf.frame_rms(during, rate)
        heard = [f for j, f in enumerate(TONES) if j != i]
        assert sf.tones_heard(during, rate, list(TONES)) == set(heard)
        # two tones of 0.21 RMS each: every 20 ms frame carries ~0.3; a stalled bridge or a
        # late packet would leave a frame near silence (or a concealment fade)
        assert rms.min() > 0.2, f"caller {i}: gap of {int((rms < 0.2).sum())} frames"
