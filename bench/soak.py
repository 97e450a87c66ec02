"""Soak benchmark: thousands of calls through the IVR and the rooms, and whether anything grows.

The service (VoiceService with the IVR, the booking watch and the bridge watch, as `confbot run`
builds them) runs in this process, so its tables can be read; the callers are sipp processes
over 127.0.0.1, two streams at once, `--concurrent` calls in all:
  direct — dial the demo number straight into a standing room (announce = "tone"), stay
           `--hold-ms`, hang up (BYE): a join tone, a leave tone, a CDR;
  pin    — dial the PIN number, wait for the PIN question, send the participant PIN as SIP INFO
           digits and '#', join the booked conference, stay, hang up: a flow, a PIN look-up, a
           join into a booked conference that closes when it empties and opens again.
At the start, every `--every` calls and at the end it prints the process's RSS and the sizes of
the tables that could grow: calls, drivers, the owner's conferences and members, the mixer's
rooms, members and sources, the announcement queue, the prompt memo, the name files kept, the
end causes, recorders, switchboard legs, the talk detector. Flat is the goal; the last line is
  RESULT calls=<n> rss_start_mb=<f> rss_end_mb=<f> growing=<names of tables that grew or ->
Never a timed test: run by hand (`.venv/bin/python bench/soak.py --calls 20000`) or `make bench`.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sipfixtures as sf  # noqa: E402

DIRECT, PIN_NUMBER = "1000", "7000"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sizes(voice) -> dict[str, int]:
    """The tables of the running service that could grow with the number of calls."""
    q = voice.announcements
    out = {"calls": len(voice.calls()), "drivers": len(voice.drivers)}
    out.update(voice.members.conf.sizes())
    out.update({
        "announce_rooms": len(q._playing) + len(q._waiting),
        "prompt_memo": len(voice.ivr.prompts._memo),
        "prompt_derived": len(voice.ivr.prompts._derived),
        "names_kept": voice.names.kept() if voice.names is not None else 0,
        "causes": len(voice._causes), "recorders": len(voice._recorders),
        "legs": len(voice.board.legs), "talk": len(voice.talk._tracks),
        "events": len(voice.events),
    })
    return out


def pin_scenario(pin: str, hold_ms: int) -> str:
    """INVITE, the welcome and the PIN question (keys during the welcome are dropped), the PIN
    and '#' as SIP INFO digits, the room, BYE."""
    body = [sf.SIPP_HEAD.format(name="soak-pin"), '  <pause milliseconds="4500"/>\n']
    cseq = 2
    for digit in pin + "#":
        body.append(sf.SIPP_INFO.format(cseq=cseq, digit=digit))
        cseq += 1
    body.append(f'  <pause milliseconds="{hold_ms + 1500}"/>\n')
    body.append(sf.SIPP_TAIL.format(bye_cseq=cseq))
    return "".join(body)


def sipp(workdir: Path, scenario: str, service: str, port: int, calls: int, limit: int,
         rate: int) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "scenario.xml").write_text(scenario)
    cmd = [sf.SIPP, f"127.0.0.1:{port}", "-sf", str(workdir / "scenario.xml"), "-s", service,
           "-i", "127.0.0.1", "-p", str(sf.free_port()), "-mi", "127.0.0.1",
           "-mp", str(sf.free_port_block(4)), "-m", str(calls), "-l", str(limit),
           "-r", str(rate), "-nostdin", "-timeout", "3600s", "-recv_timeout", "20000",
           "-trace_stat", "-stf", str(workdir / "stat.csv"), "-fd", "10"]
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=open(workdir / "stderr.log", "wb"))


async def soak(args) -> None:
    from bot.booking.domain import BookingRequest
    from bot.config.settings import Announce, CapacitySettings, RoomSettings
    from bot.service.bookingwatch import BookingWatch
    from bot.service.voice import VoiceService
    from bot.store.sqlite import SqliteStore

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    tmp = Path(tempfile.mkdtemp(prefix="confbot-soak-"))
    store = SqliteStore(tmp / "confbot.sqlite3")
    now = datetime.now(timezone.utc)
    booking = store.reserve(BookingRequest(now - timedelta(minutes=5), now + timedelta(hours=8),
                                           args.concurrent, "Soak", "soak@example.com"),
                            now - timedelta(minutes=6),
                            CapacitySettings(total_lines=500, room_max=500, max_minutes=600), 6
                            ).booking
    settings = sf.ivr_settings(pin_numbers={PIN_NUMBER: "premium"}, direct={DIRECT: "lobby"},
                               rooms={"lobby": args.concurrent}, naming=False,
                               max_calls=min(2 * args.concurrent + 10, 510))
    settings = replace(settings, rooms=(RoomSettings("lobby", args.concurrent, Announce.TONE),),
                       capacity=replace(settings.capacity, total_lines=500, room_max=500))
    ctx = sf.ivr_context(settings, tmp, store=store)
    voice = VoiceService(settings, ivr=ctx)
    await voice.start()
    watch = asyncio.create_task(BookingWatch(voice, store).run())
    half = args.calls // 2
    each = max(1, args.concurrent // 2)
    rate = max(1, each // 2)
    procs = [sipp(tmp / "direct", sf.sipp_scenario("soak-direct", hold_ms=args.hold_ms),
                  DIRECT, settings.sip.port, args.calls - half, each, rate),
             sipp(tmp / "pin", pin_scenario(booking.participant_pin, args.hold_ms),
                  PIN_NUMBER, settings.sip.port, half, each, rate)]
    rows: list[tuple[int, float, dict]] = []
    started = time.monotonic()

    ended = [0]

    def count(e) -> None:
        if type(e).__name__ == "CallEnded":
            ended[0] += 1
    voice.subscribe(count)
    next_mark = 0
    try:
        while any(p.poll() is None for p in procs):
            done = ended[0]
            if done >= next_mark:
                rows.append((done, rss_mb(), sizes(voice)))
                print(f"{done:>7} calls  {time.monotonic() - started:7.0f} s  "
                      f"RSS {rows[-1][1]:7.1f} MB  {rows[-1][2]}", flush=True)
                next_mark += args.every
            await asyncio.sleep(1.0)
        await asyncio.sleep(3.0)                 # the last hang-ups and records
        rows.append((ended[0], rss_mb(), sizes(voice)))
        print(f"{rows[-1][0]:>7} calls  {time.monotonic() - started:7.0f} s  "
              f"RSS {rows[-1][1]:7.1f} MB  {rows[-1][2]}  (end)", flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        watch.cancel()
        await voice.stop()
    records = len(store.call_records())
    print(f"call records: {records}; sipp stats in {tmp}")
    first, last = rows[1] if len(rows) > 2 else rows[0], rows[-1]
    growing = [k for k, v in last[2].items() if k != "events" and v > first[2].get(k, 0) + 2]
    print(f"RESULT calls={last[0]} rss_start_mb={first[1]:.1f} rss_end_mb={last[1]:.1f} "
          f"growing={','.join(growing) or '-'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000, help="calls in all (default 20000)")
    ap.add_argument("--concurrent", type=int, default=50, help="calls at once (default 50)")
    ap.add_argument("--hold-ms", type=int, default=1500, help="time in the room (ms)")
    ap.add_argument("--every", type=int, default=2000, help="print the tables every N calls")
    asyncio.run(soak(ap.parse_args()))


if __name__ == "__main__":
    main()
