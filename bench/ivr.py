"""Benchmark: IVR latency with N callers entering at once (issue 4; default N = 10, 50, 100).

Three processes, so the figures measure the service and not the harness:
  server  — `--serve`: one VoiceService with the IVR, a real SqliteStore holding one booking,
            espeak-ng prompts rendered beforehand (the static ones, as `confbot prompts render`
            does, plus "you are the n-th participant" for every n of the run), naming off
            (settings.ivr.naming = False) unless --naming;
  callers — this process: N + 1 calls from ONE pjsua2 client endpoint (bench/ivrclient.py), each
            recording what it hears into a WAV; DTMF as RFC 4733 (`dialDtmf`);
  (sipp/baresip are not used: 50 softphone processes saturated two cores in the first version).
A host call enters first (moderator PIN) and plays a 2850 Hz tone into the room. Then the N
callers dial at the same moment; once every one hears the PIN question they all send the PIN,
and when the server has every digit, all send '#' at the same moment.
Caller-side figures (median / p95 / max), 20 ms frame resolution, from the recordings:
  answer → first prompt audio   200 OK received → first voiced frame (the WELCOME prompt)
  '#' → room heard              '#' handed to the stream → first frame of the host's tone
  '#' → confirmation heard      '#' → first frame of "You have joined the conference."
With naming off no prompt plays between '#' and joining: the flow joins the room first and then
plays JOINED_AS_PARTICIPANT + YOU_ARE_NTH over the room's audio (barge-in). Server-side figures
(same monotonic clock, other process): media ready → prompt player started, '#' received → room
joined (routes handed to the SIP owner thread), '#' sent → '#' received. Targets: ≤ 150 ms and
≤ 300 ms. Never a test: run by hand or with `make bench`. Owns nothing the service uses.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import sipfixtures as sf  # noqa: E402

HOST_TONE = 2850.0
TONE_HEARD = 0.05        # the tone's RMS in a 20 ms frame (sent at 0.3 amplitude = 0.21 RMS)
VOICED = 0.01            # frame RMS of prompt audio (silence decodes to ~0.0003)
FRAME = 0.020
BEEP_HZ = 1000.0         # ivr.catalog's beep: announced into the room when someone joins
FIRST_NUMBER = 7000      # the host dials 7000, caller i dials 7001 + i: the dialled number names
                         # the call on both sides


# ---- the server process --------------------------------------------------------------------

def serve(tmp: Path, port: int, rtp: int, n: int, naming: bool) -> None:
    asyncio.run(_serve(tmp, port, rtp, n, naming))


async def _serve(tmp: Path, port: int, rtp: int, n: int, naming: bool) -> None:
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from bot.booking.domain import BookingRequest
    from bot.config.settings import CapacitySettings
    from bot.sip.events import CallMediaReady, DtmfReceived
    from bot.store.sqlite import SqliteStore
    from bot.service.voice import VoiceService
    from ivr.catalog import static_prompts
    from ivr.events import PromptId, params
    from ivr.steps import State

    now = datetime.now(timezone.utc)
    store = SqliteStore(tmp / "confbot.sqlite3")
    booking = store.reserve(BookingRequest(now, now + timedelta(hours=1), n + 1, "Bench",
                                           "a@example.com"), now - timedelta(minutes=1),
                            CapacitySettings(total_lines=n + 10, room_max=n + 1), 6).booking
    s = sf.ivr_settings(pin_numbers={str(FIRST_NUMBER + i): "premium" for i in range(n + 1)},
                        max_calls=n + 8, naming=naming)
    settings = replace(s, sip=replace(s.sip, port=port, rtp_port=rtp, rtp_port_range=4 * n + 100))
    lookups: list[float] = []
    real_lookup = store.lookup_pin

    def timed_lookup(*a):
        t0 = time.monotonic()
        try:
            return real_lookup(*a)
        finally:
            lookups.append(1000 * (time.monotonic() - t0))
    store.lookup_pin = timed_lookup
    ctx = sf.ivr_context(settings, tmp, store=store)
    lang = settings.service.default_language
    durations = {}
    for p in static_prompts():
        durations[p.value] = (await ctx.prompts.wav(p, (), lang))[1]
    for k in range(1, n + 2):
        await ctx.prompts.wav(PromptId.YOU_ARE_NTH, params(n=k), lang)
    voice = VoiceService(settings, ivr=ctx)
    t: dict[str, dict[str, float]] = {}
    digits: dict[str, str] = {}
    number = lambda call: voice.calls()[call].dialled if call in voice.calls() else call  # noqa

    def listen(e) -> None:
        if isinstance(e, CallMediaReady):
            t.setdefault(number(e.call), {})["media"] = time.monotonic()
        elif isinstance(e, DtmfReceived):
            d = number(e.call)
            digits[d] = digits.get(d, "") + e.digit
            if e.digit == "#":
                t.setdefault(d, {})["hash"] = time.monotonic()
    voice.subscribe(listen)
    real_play, real_join = voice.play_to, voice.join_room

    def play_to(call, source, path):
        t.setdefault(number(call), {}).setdefault("play", time.monotonic())
        real_play(call, source, path)

    def join_room(call, *a, **k):
        out = real_join(call, *a, **k)
        t.setdefault(number(call), {})["joined"] = time.monotonic()
        return out
    voice.play_to, voice.join_room = play_to, join_room
    await voice.start()
    loop = asyncio.get_running_loop()
    room = booking.reference

    def at_pin() -> list[str]:    # PIN question playing (the WELCOME before it drops keys)
        return [c for c, d in voice.drivers.items() if d.flow.state is State.PIN_ENTRY
                and d.flow.playing and all(d.flow.playing.values())]

    async def handle(cmd: str, arg: int):
        try:
            if cmd == "WAITPIN":
                await voice.wait_for(lambda: len(at_pin()) >= arg, 30)
            elif cmd == "WAITDIGITS":
                await voice.wait_for(lambda: sum(len(v) >= arg for v in digits.values()) >= n + 1,
                                     10)
            elif cmd == "WAITJOIN":
                await voice.wait_for(lambda: len(voice.rooms().get(room, ())) >= arg, 20)
        except TimeoutError:
            pass
        if cmd == "TIMES":
            return {"t": t, "digits": digits, "lookups": lookups}
        return {"pin": len(at_pin()), "joined": len(voice.rooms().get(room, ())),
                "digits": digits}

    print("READY " + json.dumps({"pin": booking.participant_pin, "host_pin": booking.moderator_pin,
                                 "durations": durations}), flush=True)

    def commands() -> None:
        for line in sys.stdin:
            cmd, *rest = line.split()
            if cmd == "QUIT":
                return
            out = asyncio.run_coroutine_threadsafe(handle(cmd, int(rest[0]) if rest else 0),
                                                   loop).result(60)
            print(json.dumps(out), flush=True)
    await asyncio.to_thread(commands)
    await voice.stop()


# ---- analysis (pure) -----------------------------------------------------------------------

def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def figures(xs: list[float]) -> str:
    if not xs:
        return "no samples"
    return (f"median {statistics.median(xs):6.1f} ms  p95 {p95(xs):6.1f} ms  max {max(xs):6.1f} ms"
            f"  (n={len(xs)})")


def first_frame(mask: np.ndarray, after: int = 0) -> int | None:
    idx = np.flatnonzero(mask[max(after, 0):])
    return None if idx.size == 0 else int(idx[0]) + max(after, 0)


def tone_frames(x: np.ndarray, rate: int, freq: float, ms: int = 20) -> np.ndarray:
    """Per frame: the RMS of the component at `freq` (a one-bin DFT over the frame)."""
    n = rate * ms // 1000
    frames = x[: len(x) // n * n].reshape(-1, n)
    t = np.arange(n) / rate
    c, s = np.cos(2 * np.pi * freq * t), np.sin(2 * np.pi * freq * t)
    return np.hypot(frames @ c, frames @ s) * 2 / n / np.sqrt(2)


def speech_frames(x: np.ndarray, rate: int, without: list[float], ms: int = 20) -> np.ndarray:
    """Per frame: RMS of what is left once the bands around `without` are removed (prompts)."""
    n = rate * ms // 1000
    frames = x[: len(x) // n * n].reshape(-1, n)
    spec = np.fft.rfft(frames * np.hanning(n), axis=1)
    f = np.fft.rfftfreq(n, 1 / rate)
    keep = f > 150
    for fr in without:
        keep &= np.abs(f - fr) > 150
    power = 2 * (np.abs(spec[:, keep]) ** 2).sum(axis=1) / (n * (np.hanning(n) ** 2).sum())
    return np.sqrt(power)


# ---- the run -------------------------------------------------------------------------------

class Server:
    """The server process and its line protocol; replies are read on a thread so this process
    keeps pumping pjsua2 while it waits."""

    def __init__(self, tmp: Path, port: int, rtp: int, n: int, naming: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(tmp), str(port), str(rtp), str(n),
             "1" if naming else "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=ROOT)
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def reply(self, phones, timeout: float = 120.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get_nowait()
                if not line:
                    raise RuntimeError("server exited")
                return line
            except queue.Empty:
                phones.pump(0.005) if phones is not None else time.sleep(0.01)
        raise TimeoutError("server did not answer")

    def ask(self, phones, cmd: str) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return json.loads(self.reply(phones))

    def quit(self) -> None:
        try:
            self.proc.stdin.write("QUIT\n")
            self.proc.stdin.flush()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(n: int, tmp: Path, naming: bool) -> dict:
    from ivrclient import Phones
    port, rtp = sf.free_port(), sf.free_port_block(4 * n + 100)
    server = Server(tmp, port, rtp, n, naming)
    ready = server.reply(None)
    if not ready.startswith("READY "):
        raise RuntimeError(f"server: {ready!r}")
    info = json.loads(ready[6:])
    phones = Phones(sf.free_port(), sf.free_port_block(4 * n + 40), n + 8)
    try:
        got = _drive(phones, server, info, n, port, tmp)
    finally:
        phones.close()
        server.quit()
    return analyse(got, info, tmp, n)


def _drive(phones, server: Server, info: dict, n: int, port: int, tmp: Path) -> dict:
    host = phones.phone("host", None, sf.write_tone(tmp / "host.wav", HOST_TONE, 120))
    callers = [phones.phone(str(FIRST_NUMBER + 1 + i), tmp / f"c{i}.wav") for i in range(n)]
    uri = lambda num: f"sip:{num}@127.0.0.1:{port}"  # noqa: E731
    host.dial(uri(FIRST_NUMBER))
    server.ask(phones, "WAITPIN 1")
    host.keys(info["host_pin"] + "#")
    if server.ask(phones, "WAITJOIN 1")["joined"] != 1:
        raise RuntimeError("the host did not get into the room")
    c0, s0, w0 = cpu_seconds(os.getpid()), cpu_seconds(server.proc.pid), time.monotonic()
    for c in callers:                                 # all at once
        c.dial(uri(c.name))
    phones.pump_until(lambda: all(c.t_confirmed for c in callers), 30)
    answered = max(c.t_confirmed or 0 for c in callers) - min(c.t_dial for c in callers)
    at_pin = server.ask(phones, f"WAITPIN {n}")["pin"]
    for c in callers:
        c.keys(info["pin"])
    server.ask(phones, f"WAITDIGITS {len(info['pin'])}")
    phones.pump(0.6)       # the last digit is reported at its start and lasts 200 ms + 3 ends
    t_hash = {c.name: c.keys("#") for c in callers}   # all at once
    joined = server.ask(phones, f"WAITJOIN {n + 1}")["joined"]
    phones.pump(6.0)            # the joined prompts play over the room; record them too
    c1, s1, w1 = cpu_seconds(os.getpid()), cpu_seconds(server.proc.pid), time.monotonic()
    times = server.ask(phones, "TIMES")
    t_end = time.monotonic()
    sizes = {c.name: c.record_to.stat().st_size if c.record_to.exists() else 0 for c in callers}
    jbuf = [j for c in callers if (j := c.jbuf_delay_ms()) is not None]
    return {"answered": answered, "at_pin": at_pin, "joined": joined, "times": times,
            "t_hash": t_hash, "jbuf": jbuf, "client_cpu": 100 * (c1 - c0) / (w1 - w0),
            "server_cpu": 100 * (s1 - s0) / (w1 - w0),
            "meta": [(c.name, c.t_confirmed, c.t_media, c.t_rec) for c in callers],
            "t_end": t_end, "sizes": sizes}


def analyse(got: dict, info: dict, tmp: Path, n: int) -> dict:
    times, meta, t_hash, jbuf = got["times"], got["meta"], got["t_hash"], got["jbuf"]
    srv, digits = times["t"], times["digits"]
    out = {"n": n, "answered_s": got["answered"], "at_pin": got["at_pin"],
           "joined": got["joined"] - 1, "client_cpu": got["client_cpu"],
           "server_cpu": got["server_cpu"],
           "jbuf": statistics.median(jbuf) if jbuf else float("nan"), "load1": os.getloadavg()[0],
           "lost_digits": sum(1 for name, *_ in meta
                              if digits.get(name, "") != info["pin"] + "#"),
           "first": [], "room": [], "confirm": [], "srv_play": [], "srv_join": [], "wire": [],
           "false_tone": 0.0, "room_any": [], "beep_peak": 0.0}
    for name, t_conf, t_media, t_rec in meta:
        s = srv.get(name, {})
        if {"play", "media"} <= s.keys():
            out["srv_play"].append(1000 * (s["play"] - s["media"]))
        if {"joined", "hash"} <= s.keys():
            out["srv_join"].append(1000 * (s["joined"] - s["hash"]))
        if "hash" in s:
            out["wire"].append(1000 * (s["hash"] - t_hash[name]))
        path = tmp / f"c{int(name) - FIRST_NUMBER - 1}.wav"
        if t_rec is None or not path.exists():
            continue
        x, rate = sf.read_wav(path)
        at = lambda k: t_rec + FRAME * k  # noqa: E731 - frame index → monotonic time
        k = first_frame(sf.frame_rms(x, rate) > VOICED)
        if k is not None and t_conf is not None:
            out["first"].append(1000 * (at(k) - min(t_conf, t_media or t_conf)))
        tone = tone_frames(x, rate, HOST_TONE)
        k_hash = int((t_hash[name] - t_rec) / FRAME)
        out["false_tone"] = max(out["false_tone"], float(tone[:max(k_hash, 1)].max()))
        k_tone = first_frame(tone > TONE_HEARD, k_hash)
        if k_tone is not None:
            out["room"].append(1000 * (at(k_tone) - t_hash[name]))
        beep = tone_frames(x, rate, BEEP_HZ)
        k_any = first_frame((tone > TONE_HEARD) | (beep > TONE_HEARD), k_hash)
        if k_any is not None:
            out["room_any"].append(1000 * (at(k_any) - t_hash[name]))
        out["beep_peak"] = max(out["beep_peak"], float(sf.frame_rms(x, rate)[k_hash:].max()))
        speech = speech_frames(x, rate, [HOST_TONE, BEEP_HZ, 2 * BEEP_HZ, 3 * BEEP_HZ]) > VOICED
        for k in (k_tone, k_any):
            if k is not None:
                speech[k] = False      # a tone's onset splatters over the band in its frame
        k = first_frame(speech, k_hash + 1)
        if k is not None:
            out["confirm"].append(1000 * (at(k) - t_hash[name]))
    # the recorder writes every 20 ms frame at once: frames on disk vs. time elapsed shows
    # whether the callers' media clock stalled (which would shift every caller-side figure)
    slips = [1000 * (got["t_end"] - t_rec) - 1000 * (got["sizes"][name] - 44) / 2 / 8000
             for name, _c, _m, t_rec in meta if t_rec is not None]
    out["slip_ms"] = max(slips, default=float("nan"))
    out["durations"] = info["durations"]
    out["lookups"] = times.get("lookups", [])
    return out


def report(r: dict) -> None:
    print(f"N = {r['n']}: answered in {r['answered_s']:.2f} s, {r['at_pin']} at the PIN question, "
          f"{r['joined']} joined; digits incomplete for {r['lost_digits']}; CPU during the "
          f"entry: server {r['server_cpu']:.0f} %, callers' process {r['client_cpu']:.0f} % of one "
          f"core; load {r['load1']:.2f}; callers' jitter buffer {r['jbuf']:.0f} ms")
    print(f"  answer → first prompt audio (caller):   {figures(r['first'])}")
    print(f"  '#' → room audio, beep or tone (caller): {figures(r['room_any'])}")
    print(f"  '#' → host tone ≥ {TONE_HEARD} RMS (caller):  {figures(r['room'])}")
    print(f"  '#' → confirmation prompt (caller):     {figures(r['confirm'])}")
    print(f"  media ready → prompt player (server):   {figures(r['srv_play'])}")
    print(f"  '#' received → room joined (server):    {figures(r['srv_join'])}")
    print(f"  PIN look-up in SQLite (worker thread):  {figures(r['lookups'][1:])}")
    print(f"  '#' sent → '#' received (RFC 4733):     {figures(r['wire'])}")
    print(f"  largest host-tone level before '#': {r['false_tone']:.4f} (threshold {TONE_HEARD}); "
          f"loudest frame after '#': {r['beep_peak']:.2f} RMS (full-scale square wave: 1.0)")
    print(f"  callers' clock slip (frames recorded vs. elapsed): max {r['slip_ms']:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--callers", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("-n", type=int, action="append", help="callers (repeatable; default 10 50 100)")
    ap.add_argument("--naming", action="store_true", help="ask callers for their names (off)")
    args = ap.parse_args()
    if args.serve:
        tmp, port, rtp, n, naming = args.serve
        serve(Path(tmp), int(port), int(rtp), int(n), naming == "1")
        return
    if args.callers:             # the callers' process: one pjsua2 endpoint per process
        n, naming = args.callers
        try:
            with tempfile.TemporaryDirectory(prefix="bench-ivr-") as tmp:
                r = run(int(n), Path(tmp), naming == "1")
            print("FIGURES " + json.dumps(r), flush=True)
        except BaseException:
            import traceback
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)
        os._exit(0)              # see ivrclient.Phones.close: no pjsua2 destructors after this
    results = []
    for n in args.n or [10, 50, 100]:
        child = subprocess.run([sys.executable, __file__, "--callers", str(n),
                                "1" if args.naming else "0"], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, timeout=600)
        lines = [x for x in child.stdout.splitlines() if x.startswith("FIGURES ")]
        if child.returncode != 0 or not lines:
            print(f"N = {n}: the callers' process failed ({child.returncode})")
            continue
        r = json.loads(lines[-1][len("FIGURES "):])
        report(r)
        results.append(r)
    if not results:
        sys.exit(1)
    d = results[-1]["durations"]
    print(f"prompts: welcome {d['welcome']:.2f} s, enter_pin {d['enter_pin']:.2f} s, "
          f"joined_as_participant {d['joined_as_participant']:.2f} s (plays over the room)")
    for r in results:
        print(f"RESULT n={r['n']} first_prompt_p95_ms={p95(r['first']):.0f} "
              f"pin_to_room_p95_ms={p95(r['room']) if r['room'] else float('nan'):.0f} "
              f"server_p95_ms={p95(r['srv_join']) if r['srv_join'] else float('nan'):.0f}")


if __name__ == "__main__":
    main()
