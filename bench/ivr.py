"""Benchmark: IVR latency with N callers entering at once (default 50).

N baresip phones dial a PIN number of one VoiceService (with the IVR, a real SQLite store and
espeak-ng prompts rendered beforehand, as `confbot prompts render` does) at the same moment,
wait for the PIN question and send the booking's PIN + # as RFC 4733 digits, all at once. A host
phone already in the room sends a 1850 Hz tone. Figures (median / p95 / max over the callers):
  answer → first prompt audio   at the caller: the first voiced 20 ms frame of its recording
                                (baresip records from the moment the call's audio starts)
  last PIN digit → room heard   the server receiving '#' → the host's tone in the caller's
                                recording (aligned through the server's media-ready time)
  server: '#' → routes applied  the loop-side part of the latter (PIN look-up, join, diffs)
Targets: ≤ 150 ms and ≤ 300 ms. Never a test: run by hand or with `make bench`.
Caveat: the 51 baresip processes (each decoding and recording its audio) run on the same cores
as the server and this script; at N = 50 they saturate a 2-core machine, which shows up as event
loop delay and as lost RFC 4733 digits (those callers are reported and left out).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sipfixtures as sf  # noqa: E402
from bot.booking import BookingRequest  # noqa: E402
from bot.settings import CapacitySettings  # noqa: E402
from bot.sipevents import CallMediaReady, DtmfReceived  # noqa: E402
from bot.store import SqliteStore  # noqa: E402
from bot.voice import VoiceService  # noqa: E402
from ivr.catalog import static_prompts  # noqa: E402
from ivr.steps import State  # noqa: E402

HOST_TONE = 1850.0
VOICED = 0.01


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def figures(xs: list[float]) -> str:
    return (f"median {statistics.median(xs):6.1f} ms  p95 {p95(xs):6.1f} ms  max {max(xs):6.1f} ms"
            f"  (n={len(xs)})")


def first_frame(mask: np.ndarray, after: int = 0) -> int | None:
    idx = np.flatnonzero(mask[after:])
    return None if idx.size == 0 else int(idx[0]) + after


def tone_frames(x: np.ndarray, rate: int, freq: float, ms: int = 20) -> np.ndarray:
    n = rate * ms // 1000
    frames = x[: len(x) // n * n].reshape(-1, n)
    t = np.arange(n) / rate
    c, s = np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)
    return np.hypot(frames @ c, frames @ s) * 2 / n / np.sqrt(2)   # the tone's RMS per frame


async def command(phone: sf.Baresip, cmd: str, params: str = "") -> None:
    """baresip's ctrl_tcp from the event loop: no helper threads fighting the loop for the GIL
    (50 of them made the server look seconds slow in a first version of this bench)."""
    import json
    msg = json.dumps({"command": cmd, "params": params, "token": "t"}).encode()
    _r, w = await asyncio.open_connection("127.0.0.1", phone.ctrl_port)
    w.write(str(len(msg)).encode() + b":" + msg + b",")
    await w.drain()
    w.close()


async def keys(phone: sf.Baresip, digits: str, gap: float = 0.25) -> None:
    for d in digits:
        await command(phone, "sndcode", d)
        await asyncio.sleep(gap)


def started(workdir: Path, tone: Path, user: str) -> sf.Baresip:
    """A running phone; baresip also binds port+1 (TLS), so 50 random ports may collide: retry."""
    for attempt in range(5):
        phone = sf.Baresip.create(workdir / str(attempt), tone, user=user)
        try:
            phone.start()
            return phone
        except (RuntimeError, TimeoutError):
            phone.stop()
    raise RuntimeError(f"baresip {user} would not start")


async def run(n: int, tmp: Path) -> None:
    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    booking = store.reserve(BookingRequest(now, now + timedelta(hours=1), n + 1, "Bench", "a@example.com"),
                            now - timedelta(minutes=1), CapacitySettings(total_lines=n + 10,
                                                                         room_max=n + 1), 6).booking
    settings = sf.ivr_settings(pin_numbers={"7000": "premium"}, max_calls=n + 8)
    ctx = sf.ivr_context(settings, tmp, store=store)
    for p in static_prompts():            # what `confbot prompts render` does before a start
        await ctx.prompts.wav(p, (), "en")
    quiet = sf.write_tone(tmp / "quiet.wav", 300.0, 90, 0.0)
    phones = [started(tmp / f"p{i}", quiet, f"p{i}") for i in range(n)]
    host = started(tmp / "host", sf.write_tone(tmp / "host.wav", HOST_TONE, 90), "host")
    voice = VoiceService(settings, ivr=ctx)
    lookups: list[float] = []
    real_lookup = store.lookup_pin

    def timed_lookup(*a):
        t = time.monotonic()
        try:
            return real_lookup(*a)
        finally:
            lookups.append(1000 * (time.monotonic() - t))
    store.lookup_pin = timed_lookup
    seen: dict[str, dict[str, float]] = {}
    digits: dict[str, list[str]] = {}

    def listen(e) -> None:
        if isinstance(e, CallMediaReady):
            seen.setdefault(e.call, {})["media"] = time.monotonic()
        elif isinstance(e, DtmfReceived):
            digits.setdefault(e.call, []).append(e.digit)
            if e.digit == "#":
                seen.setdefault(e.call, {})["hash"] = time.monotonic()
    voice.subscribe(listen)
    play_to = voice.play_to

    def timed_play_to(call, source, path):
        seen.setdefault(call, {}).setdefault("play", time.monotonic())
        play_to(call, source, path)
    voice.play_to = timed_play_to
    await voice.start()
    pool = ThreadPoolExecutor(n + 1)
    loop = asyncio.get_running_loop()
    try:
        port, room = settings.sip.port, booking.reference
        host.dial(f"sip:7000@127.0.0.1:{port}")
        await voice.wait_for(lambda: voice.drivers, 5)
        hcall = next(iter(voice.drivers))
        await voice.wait_for(lambda: voice.drivers[hcall].flow.state is State.PIN_ENTRY
                             and all(voice.drivers[hcall].flow.playing.values()), 10)
        await keys(host, booking.participant_pin + "#")
        await voice.wait_for(lambda: hcall in voice.rooms().get(room, ()), 5)
        known = set(voice.calls())
        t0 = time.monotonic()
        await asyncio.gather(*(command(p, "dial", f"sip:7000@127.0.0.1:{port}") for p in phones))
        await voice.wait_for(lambda: len(set(voice.drivers) - known) == n, 30)
        calls = sorted(set(voice.drivers) - known, key=lambda c: int(c.split("-")[1]))
        print(f"{n} calls answered in {time.monotonic() - t0:.2f} s")
        # the PIN question is playing (the welcome before it drops keys: it is not barge-in)
        await voice.wait_for(lambda: all(voice.drivers[c].flow.state is State.PIN_ENTRY
                                         and all(voice.drivers[c].flow.playing.values())
                                         for c in calls), 30)
        joined_at: dict[str, float] = {}

        def on_change() -> bool:
            members = voice.rooms().get(room, ())
            for c in calls:
                if c in members and c not in joined_at:
                    joined_at[c] = time.monotonic()
            return len(joined_at) == n
        await asyncio.gather(*(keys(p, booking.participant_pin + "#") for p in phones))
        try:
            await voice.wait_for(on_change, 20)
        except TimeoutError:   # a PIN digit lost on the way in: that caller is left out
            lost = {c: "".join(digits.get(c, [])) for c in calls if c not in joined_at}
            print(f"{len(lost)} of {n} callers' PINs arrived incomplete (sent "
                  f"{booking.participant_pin}#, received {sorted(lost.values())}); left out")
        await asyncio.sleep(2.0)
        voice_calls = voice.calls()
        for c in [hcall, *calls]:
            voice.hangup(c, 200)
        await voice.wait_for(lambda: not voice.calls(), 10)
    finally:
        await asyncio.gather(*(loop.run_in_executor(pool, p.stop) for p in [host, *phones]))
        await voice.stop()
    # each phone's From user ("p7") names its call; baresip records from the moment the
    # call's audio starts, i.e. from the server's media-ready instant (give or take a frame)
    phone_of = {c: int(voice_calls[c].caller.split("sip:p", 1)[1].split("@", 1)[0]) for c in calls}
    first_audio, room_heard, server = [], [], []
    for c in calls:
        t = seen.get(c, {})
        if "hash" in t and c in joined_at:
            server.append(1000 * (joined_at[c] - t["hash"]))
        rec = phones[phone_of[c]].recording()
        if rec is None:
            continue
        x, rate = sf.read_wav(rec)
        start = first_frame(sf.frame_rms(x, rate) > VOICED)
        if start is not None:
            first_audio.append(20.0 * start)
        onset = first_frame(tone_frames(x, rate, HOST_TONE) > 0.03)
        if onset is not None and {"hash", "media"} <= t.keys():
            room_heard.append(20.0 * onset - 1000 * (t["hash"] - t["media"]))
    print(f"answer → first prompt audio (caller side): {figures(first_audio)}")
    server_play = [1000 * (seen[c]["play"] - seen[c]["media"]) for c in calls
                   if {"play", "media"} <= seen.get(c, {}).keys()]
    print(f"media ready → prompt player started (server): {figures(server_play)}")
    print(f"PIN look-up in SQLite (worker thread):     {figures(lookups)}")
    print(f"'#' received → routes applied (server):    {figures(server)}")
    if room_heard:
        print(f"last PIN digit → room heard (caller side): {figures(room_heard)}")
    print(f"RESULT n={n} first_prompt_p95_ms={p95(first_audio):.0f} "
          f"pin_to_room_p95_ms={p95(room_heard) if room_heard else float('nan'):.0f} "
          f"server_p95_ms={p95(server):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ivr-") as tmp:
        asyncio.run(run(args.n, Path(tmp)))


if __name__ == "__main__":
    main()
