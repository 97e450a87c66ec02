"""Benchmark: how many concurrent G.711 callers the voice service carries on this machine, and
what its control plane costs over a bare bridge.

Two phases, the server always in its own process so its CPU time can be read from /proc:
  ladder   — for N = 50, 100, 200, 400, ... (until loss appears or --max), sipp places N calls
             over 127.0.0.1, each looping Debian's g711a.pcap, into rooms of 10 (from N >= 200,
             200 of them go into one hall where 5 speak and the rest are muted). Real service
             only; a short window per N. Gives max_calls_no_loss and CPU per call.
  overhead — at one N or several (--overhead-n 200,400; default 200, at most the ladder's
             best: at 500 sipp and the server saturate both cores, CPU is capped and
             differences hide), --repeat rounds of: the bare bridge, the real service with
             nobody watching talkers, and with every conference watched at each --levels
             polling interval, interleaved so drifting background
             load hits every mode alike; a long window each (--seconds, default 30). Reports the
             median per mode, and the talk events seen (talk detection still working?).
             --no-ladder skips the ladder (the overhead N are then taken as given).
Server modes:
  voice@<s> — the real service: VoiceService, the mixer core, talk detection polling every s
              the voices someone watches; here nobody does (no console, no roll call), so
              no level is read (bot.service.talkwatch);
  watch@<s> — the same with every conference watched (`VoiceService.watch_talk()`, what a
              console showing every room's talkers costs): every voice polled every s;
  base@<s>  — the real service of another checkout (--baseline TREE, e.g. the commit before a
              change, `git archive`d into var/) at that tree's default interval, so before
              and after run side by side;
  bridge    — the baseline: SipStack alone, static full-mesh connections, no control plane.
Figures per run: server CPU (% of one core), CPU per call, receive loss, jitter and
jitter-buffer delay from pjsua2's stream statistics, Talking events per call-minute. The ladder runs
watch@<default> (the dearer case). The last line printed is
  RESULT max_calls_no_loss=<int> cpu_per_call_pct=<float> overhead_vs_bridge=<float>
         overhead_watched=<float> overhead_n<N>=... overhead_watched_n<N>=...
where an overhead is the median CPU of voice@ (watch@) at VoiceService's default
level_interval over the median bridge CPU, minus 1. Never a timed test: run it by hand or with `make bench`. Owns
nothing the service uses.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import statistics
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
BASELINE: Path | None = None     # --baseline: another tree whose service runs as "base@<s>"


def default_level_interval() -> float:
    """VoiceService's own default polling interval (what the service runs with unless told)."""
    from bot.service.voice import VoiceService
    return float(inspect.signature(VoiceService).parameters["level_interval"].default)


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
    if mode.startswith(("voice@", "watch@")):
        kind, interval = mode.split("@", 1)
        asyncio.run(_serve_voice(settings, float(interval), kind == "watch"))
    else:
        _serve_bridge(settings)


def _commands(handler) -> None:
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "QUIT":
            return
        print(json.dumps(handler(cmd)), flush=True)


def _stats_json(stats) -> dict:
    return {c: [s.rx_packets, s.rx_loss, s.jitter_ms, s.jbuf_delay_ms] for c, s in stats.items()}


async def _serve_voice(settings, level_interval: float, watch: bool) -> None:
    from bot.sip.stack import CallMediaReady
    from bot.conference.talk import Silent, Talking
    from bot.service.voice import VoiceService
    voice = VoiceService(settings, level_interval=level_interval)
    hall_talkers: list[str] = []
    talk = {"talking": 0, "silent": 0}

    def on_event(e) -> None:     # the hall's listeners are muted members: no outgoing routes
        if isinstance(e, CallMediaReady) and voice.calls()[e.call].room == "hall":
            if len(hall_talkers) < HALL_SPEAKERS:
                hall_talkers.append(e.call)
            else:
                voice.set_muted(e.call, True)
        elif isinstance(e, Talking):
            talk["talking"] += 1
        elif isinstance(e, Silent):
            talk["silent"] += 1
    voice.subscribe(on_event)
    if watch:
        voice.watch_talk()        # every conference, as a console showing all rooms
    await voice.start()
    loop = asyncio.get_running_loop()

    def handle(cmd: str):
        if cmd == "COUNT":
            return sum(len(m) for m in voice.rooms().values())
        if cmd == "TALK":
            return asyncio.run_coroutine_threadsafe(_read(talk), loop).result(30)
        stats = asyncio.run_coroutine_threadsafe(voice.stream_stats(), loop).result(30)
        return _stats_json(stats)
    await asyncio.to_thread(_commands, handle)
    await voice.stop()


async def _read(d: dict) -> dict:
    return dict(d)


def _serve_bridge(settings) -> None:
    from bot.conference.mixer import Connect
    from bot.sip.stack import Answer, CallMediaReady, CallOffered, SipStack
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
        if cmd == "TALK":
            return {"talking": 0, "silent": 0}
        return _stats_json(stack.stream_stats().result(30))
    _commands(handle)
    stack.stop()


# ---- the driver ----------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def measure(mode: str, n: int, seconds: float, workdir: Path) -> dict:
    port, rtp = sf.free_port(), sf.free_port_block(4 * n + 100)
    tree, serve_mode = ROOT, mode
    if mode.startswith("base@"):      # the real service as another tree has it (--baseline)
        tree, serve_mode = BASELINE, "voice@" + mode.split("@", 1)[1]
    server = subprocess.Popen([sys.executable, str(tree / "bench" / "calls.py"), "--serve",
                               serve_mode, str(n), str(port), str(rtp)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=tree)
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
    try:
        deadline = time.monotonic() + ramp + 30
        joined = 0
        while time.monotonic() < deadline:
            joined = ask("COUNT")
            if joined >= n:
                break
            time.sleep(0.5)
        time.sleep(2.0)                # let the join burst and the first talk spurts settle
        before, talk0 = ask("STATS"), ask("TALK")
        load = _loadavg()
        c0, t0 = _cpu_seconds(server.pid), time.monotonic()
        s0 = _cpu_seconds(sipp.pid)
        time.sleep(seconds)
        c1, t1 = _cpu_seconds(server.pid), time.monotonic()
        s1 = _cpu_seconds(sipp.pid)
        after, talk1 = ask("STATS"), ask("TALK")
    finally:
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
    talking = talk1["talking"] - talk0["talking"]
    return {"mode": mode, "n": n, "joined": joined, "cpu_pct": cpu,
            "cpu_per_call_pct": cpu / max(joined, 1), "loss": loss, "packets": packets,
            "jitter_ms": jitter, "jbuf_ms": jbuf, "load1": load,
            "sipp_cpu_pct": 100.0 * (s1 - s0) / (t1 - t0),
            "talk_per_call_min": talking / max(joined, 1) / ((t1 - t0) / 60)}


HEADER = (f"{'mode':10} {'N':>4} {'joined':>6} {'cpu%':>6} {'cpu/call%':>9} {'loss':>5} "
          f"{'packets':>8} {'jit ms':>6} {'jbuf ms':>7} {'talk/c/min':>10} {'sipp%':>6} "
          f"{'load1':>5}")


def row(r: dict) -> str:
    return (f"{r['mode']:10} {r['n']:4d} {r['joined']:6d} {r['cpu_pct']:6.1f} "
            f"{r['cpu_per_call_pct']:9.3f} {r['loss']:5d} {r['packets']:8d} {r['jitter_ms']:6.2f} "
            f"{r['jbuf_ms']:7.1f} {r['talk_per_call_min']:10.2f} {r['sipp_cpu_pct']:6.1f} "
            f"{r['load1']:5.2f}")


def ladder_of(top: int) -> list[int]:
    out, n = [], 50
    while n <= top:
        out.append(n)
        n = n * 2 if n < 400 else n + 100
    if not out or out[-1] != top:
        out.append(top)
    return out


def overhead_phase(on: int, modes: list[str], args, work: Path) -> dict[str, float]:
    """--repeat interleaved rounds of every mode at N = on; prints the runs and the medians and
    returns mode -> overhead over the bridge."""
    print(f"-- overhead at N = {on}: {args.repeat} interleaved rounds of {', '.join(modes)}")
    print(HEADER)
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for k in range(args.repeat):
        for m in modes:
            r = measure(m, on, args.seconds, work / f"overhead-{m}-{on}-{k}")
            runs[m].append(r)
            print(row(r), flush=True)
    bridge = statistics.median(r["cpu_pct"] for r in runs["bridge"])
    print(f"-- medians at N = {on} (overhead = median voice CPU / median bridge CPU - 1)")
    print(f"{'mode':10} {'cpu% median':>11} {'min':>6} {'max':>6} {'overhead':>9} "
          f"{'talk/c/min':>10} {'loss':>5} {'load1':>5}")
    overhead = {}
    for m in modes:
        cpus = [r["cpu_pct"] for r in runs[m]]
        med = statistics.median(cpus)
        overhead[m] = med / max(bridge, 1e-9) - 1
        talk = statistics.median(r["talk_per_call_min"] for r in runs[m])
        loss = sum(r["loss"] for r in runs[m])
        load = statistics.median(r["load1"] for r in runs[m])
        print(f"{m:10} {med:11.1f} {min(cpus):6.1f} {max(cpus):6.1f} {overhead[m]:+9.1%} "
              f"{talk:10.2f} {loss:5d} {load:5.2f}", flush=True)
    return overhead


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", nargs=4, metavar=("MODE", "N", "PORT", "RTP"), help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=30.0, help="overhead window per run")
    ap.add_argument("--repeat", type=int, default=3, help="overhead rounds (median reported)")
    ap.add_argument("--ladder-seconds", type=float, default=10.0, help="ladder window per N")
    ap.add_argument("--max", type=int, default=500, help="largest N (PJSUA_MAX_CALLS is 512)")
    ap.add_argument("--overhead-n", default="200", help="N of the overhead runs, or several "
                    "comma-separated (default 200, at most the ladder's best)")
    ap.add_argument("--no-ladder", action="store_true", help="skip the ladder: only the "
                    "overhead phase, at each --overhead-n as given")
    ap.add_argument("--levels", default="0.05,0.1", help="level_interval values of the watched "
                    "modes (watch@<s>) to compare")
    ap.add_argument("--baseline", metavar="TREE", help="also run the real service of another "
                    "checkout (e.g. `git archive` of the commit before a change, unpacked) as "
                    "mode base@<default interval>, interleaved with the others: before and after "
                    "in one run")
    ap.add_argument("--workdir", default=str(ROOT / "var" / "bench"))
    args = ap.parse_args()
    if args.serve:
        mode, n, port, rtp = args.serve
        serve(mode, int(n), int(port), int(rtp))
        return 0
    default = default_level_interval()
    voice_default, watch_default = f"voice@{default:g}", f"watch@{default:g}"
    work = Path(args.workdir)
    print(f"machine: {os.cpu_count()} cores, {os.uname().release}; ladder window "
          f"{args.ladder_seconds:.0f} s, overhead window {args.seconds:.0f} s x {args.repeat}; "
          f"VoiceService level_interval default {default:g} s")
    best, best_row = 0, None
    if not args.no_ladder:
        print("-- ladder (real service, every conference's talkers watched, default polling)")
        print(HEADER)
        for n in ladder_of(args.max):
            r = measure(watch_default, n, args.ladder_seconds, work / f"ladder-{n}")
            print(row(r), flush=True)
            if r["loss"] > 0 or r["joined"] < n:
                break
            best, best_row = n, r
    modes = ["bridge", voice_default] + [f"watch@{float(x):g}" for x in args.levels.split(",")]
    if watch_default not in modes:
        modes.append(watch_default)
    if args.baseline:
        global BASELINE
        BASELINE = Path(args.baseline).resolve()
        base_default = subprocess.check_output(   # that tree's own default, not this one's
            [sys.executable, "-c", "import inspect\ntry:\n from bot.service.voice import "
             "VoiceService\nexcept ImportError:\n from bot.voice import VoiceService\n"
             "print(inspect.signature(VoiceService).parameters['level_interval'].default)"],
            cwd=BASELINE, text=True).strip()
        modes.insert(1, f"base@{float(base_default):g}")
    overheads = {}
    for wanted in (int(x) for x in args.overhead_n.split(",")):
        on = min(wanted, best) if best else wanted
        overheads[on] = overhead_phase(on, modes, args, work)
    first = overheads[min(overheads)]
    per_call = best_row["cpu_per_call_pct"] if best_row else float("nan")
    print(f"RESULT max_calls_no_loss={best} cpu_per_call_pct={per_call:.3f} "
          f"overhead_vs_bridge={first[voice_default]:.3f} "
          f"overhead_watched={first[watch_default]:.3f}" + "".join(
              f" overhead_n{n}={o[voice_default]:.3f} overhead_watched_n{n}={o[watch_default]:.3f}"
              for n, o in sorted(overheads.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
