"""Benchmark: how many concurrent G.711 callers the voice service carries on this machine.

For N = 50, 100, 200, 400, ... (until loss appears or the configured maximum), sipp places N
calls over 127.0.0.1, each playing Debian's g711a.pcap in a loop, into rooms of 10 (from N >= 200,
200 of them go into one hall where 5 speak and the rest only listen). The server runs in its own
process so its CPU time can be read from /proc. Two server modes per N:
  voice  — the real service: VoiceService, the mixer core, talk detection polling;
  bridge — the baseline: SipStack alone, static full-mesh connections, no control plane.
Figures per N: server CPU (% of one core), CPU per call, receive loss, jitter and jitter-buffer
delay from pjsua2's stream statistics. The last line printed is
  RESULT max_calls_no_loss=<int> cpu_per_call_pct=<float> overhead_vs_bridge=<float>
Never a timed test: run it by hand or with `make bench`. Owns nothing the service uses.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sipfixtures as sf  # noqa: E402

ROOM_SIZE, HALL_SIZE, HALL_SPEAKERS = 10, 200, 5
HALL_NUMBER = "6000"


def plan(n: int) -> list[str]:
    """The dialled number of each of n calls: rooms of 10 ("5000", "5001", ...), plus a hall of
    200 ("6000") once n >= 200."""
    numbers = [HALL_NUMBER] * HALL_SIZE if n >= HALL_SIZE else []
    rest = n - len(numbers)
    numbers += [str(5000 + i // ROOM_SIZE) for i in range(rest)]
    return numbers


def settings_for(n: int, port: int, rtp: int):
    rooms = {f"room{5000 + i}": ROOM_SIZE for i in range(n // ROOM_SIZE + 1)}
    numbers = {str(5000 + i): f"room{5000 + i}" for i in range(n // ROOM_SIZE + 1)}
    rooms["hall"], numbers[HALL_NUMBER] = HALL_SIZE, "hall"
    from dataclasses import replace
    s = sf.voice_settings(rooms, numbers, max_calls=min(n + 10, 510))
    return replace(s, sip=replace(s.sip, port=port, rtp_port=rtp, rtp_port_range=4 * n + 100))


# ---- the server process --------------------------------------------------------------------

def serve(mode: str, n: int, port: int, rtp: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))  # ~2 fds per call
    settings = settings_for(n, port, rtp)
    if mode == "voice":
        asyncio.run(_serve_voice(settings))
    else:
        _serve_bridge(settings)


def _commands(handler) -> None:
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "QUIT":
            return
        print(json.dumps(handler(cmd)), flush=True)


async def _serve_voice(settings) -> None:
    from bot.sip import CallMediaReady
    from bot.voice import VoiceService
    voice = VoiceService(settings)
    hall_talkers: list[str] = []

    def on_event(e) -> None:     # the hall's listeners are muted members: no outgoing routes
        if isinstance(e, CallMediaReady) and voice.calls()[e.call].room == "hall":
            if len(hall_talkers) < HALL_SPEAKERS:
                hall_talkers.append(e.call)
            else:
                voice.set_muted(e.call, True)
    voice.subscribe(on_event)
    await voice.start()
    loop = asyncio.get_running_loop()

    def handle(cmd: str):
        if cmd == "COUNT":
            return sum(len(m) for m in voice.rooms().values())
        stats = asyncio.run_coroutine_threadsafe(voice.stream_stats(), loop).result(30)
        return {c: [s.rx_packets, s.rx_loss, s.jitter_ms, s.jbuf_delay_ms] for c, s in stats.items()}
    await asyncio.to_thread(_commands, handle)
    await voice.stop()


def _serve_bridge(settings) -> None:
    from bot.mixer import Connect
    from bot.sip import Answer, CallMediaReady, CallOffered, SipStack
    rooms: dict[str, list[str]] = {}
    room_of: dict[str, str] = {}
    lock = threading.Lock()
    stack: SipStack

    def on_event(e) -> None:     # runs on the owner thread: no asyncio, no mixer core
        if isinstance(e, CallOffered):
            entry = settings.dialin_by_user(e.dialled)
            room_of[e.call] = entry.room
            stack.submit(Answer(e.call))
        elif isinstance(e, CallMediaReady):
            with lock:
                members = rooms.setdefault(room_of[e.call], [])
                hall = room_of[e.call] == "hall"
                talkers = members[:HALL_SPEAKERS] if hall else members
                diffs = [Connect(o, e.call, 1.0) for o in talkers]
                if not hall or len(members) < HALL_SPEAKERS:
                    diffs += [Connect(e.call, o, 1.0) for o in members]
                members.append(e.call)
            stack.apply(diffs)

    stack = SipStack(settings.sip, on_event)
    stack.start()

    def handle(cmd: str):
        if cmd == "COUNT":
            return sum(len(m) for m in rooms.values())
        stats = stack.stream_stats().result(30)
        return {c: [s.rx_packets, s.rx_loss, s.jitter_ms, s.jbuf_delay_ms] for c, s in stats.items()}
    _commands(handle)
    stack.stop()


# ---- the driver ----------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(mode: str, n: int, seconds: float, workdir: Path) -> dict:
    port, rtp = sf.free_port(), 30000
    server = subprocess.Popen([sys.executable, __file__, "--serve", mode, str(n), str(port),
                               str(rtp)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=ROOT)
    ask = lambda cmd: (server.stdin.write(cmd + "\n"), server.stdin.flush(),  # noqa: E731
                       json.loads(server.stdout.readline()))[-1]
    assert server.stdout.readline().strip() == "READY"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "numbers.csv").write_text("SEQUENTIAL\n" + "".join(f"{x};\n" for x in plan(n)))
    ramp = n / 50 + 2
    plays = int((ramp + seconds + 10) / 7) + 1
    scenario = sf.sipp_scenario("bench", rtp_pcaps=(str(sf.SIPP_PCAPS / "g711a.pcap"),) * plays,
                                hold_ms=1000).replace("[service]", "[field0]")
    scenario = scenario.replace('<pause milliseconds="1200"/>', '<pause milliseconds="7050"/>')
    (workdir / "scenario.xml").write_text(scenario)
    sipp = subprocess.Popen(
        [sf.SIPP, f"127.0.0.1:{port}", "-sf", str(workdir / "scenario.xml"), "-inf",
         str(workdir / "numbers.csv"), "-i", "127.0.0.1", "-p", str(sf.free_port()),
         "-mi", "127.0.0.1", "-mp", str(sf.free_port_block(4)), "-m", str(n), "-l", str(n),
         "-r", "50", "-nostdin", "-trace_err", "-error_file", str(workdir / "errors.log")],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + ramp + 30
    joined = 0
    while time.monotonic() < deadline:
        joined = ask("COUNT")
        if joined >= n:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    before = ask("STATS")
    c0, t0 = _cpu_seconds(server.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = _cpu_seconds(server.pid), time.monotonic()
    after = ask("STATS")
    sipp.terminate()          # the callers go away; the server then hangs up what is left
    sipp.wait(30)
    server.stdin.write("QUIT\n")
    server.stdin.flush()
    server.wait(60)
    common = before.keys() & after.keys()
    loss = sum(after[c][1] - before[c][1] for c in common)
    packets = sum(after[c][0] - before[c][0] for c in common)
    jitter = sum(after[c][2] for c in common) / max(len(common), 1)
    jbuf = sum(after[c][3] for c in common) / max(len(common), 1)
    cpu = 100.0 * (c1 - c0) / (t1 - t0)
    return {"mode": mode, "n": n, "joined": joined, "cpu_pct": cpu,
            "cpu_per_call_pct": cpu / max(joined, 1), "loss": loss, "packets": packets,
            "jitter_ms": jitter, "jbuf_ms": jbuf}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", nargs=4, metavar=("MODE", "N", "PORT", "RTP"), help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window per N")
    ap.add_argument("--max", type=int, default=500, help="largest N (PJSUA_MAX_CALLS is 512)")
    ap.add_argument("--workdir", default=str(ROOT / "var" / "bench"))
    args = ap.parse_args()
    if args.serve:
        mode, n, port, rtp = args.serve
        serve(mode, int(n), int(port), int(rtp))
        return 0
    ladder, n = [], 50
    while n <= args.max:
        ladder.append(n)
        n = n * 2 if n < 400 else n + 100
    if ladder[-1] != args.max:
        ladder.append(args.max)
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; window {args.seconds:.0f} s")
    print(f"{'mode':6} {'N':>5} {'joined':>6} {'cpu%':>7} {'cpu/call%':>9} {'loss':>6} "
          f"{'packets':>8} {'jitter ms':>9} {'jbuf ms':>8}")
    best, best_row, overhead = 0, None, float("nan")
    for n in ladder:
        rows = {}
        for mode in ("voice", "bridge"):
            r = rows[mode] = measure(mode, n, args.seconds, Path(args.workdir) / f"{mode}-{n}")
            print(f"{mode:6} {n:5d} {r['joined']:6d} {r['cpu_pct']:7.1f} {r['cpu_per_call_pct']:9.3f} "
                  f"{r['loss']:6d} {r['packets']:8d} {r['jitter_ms']:9.2f} {r['jbuf_ms']:8.1f}",
                  flush=True)
        v = rows["voice"]
        if v["loss"] > 0 or v["joined"] < n:
            break
        best, best_row = n, v
        overhead = v["cpu_pct"] / max(rows["bridge"]["cpu_pct"], 1e-9) - 1
    per_call = best_row["cpu_per_call_pct"] if best_row else float("nan")
    print(f"RESULT max_calls_no_loss={best} cpu_per_call_pct={per_call:.3f} "
          f"overhead_vs_bridge={overhead:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
