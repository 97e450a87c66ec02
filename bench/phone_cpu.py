"""CPU of the test phones: two baresip phones (tests/sipfixtures.py's `Baresip`) in one room of
a bare `bot.service.voice.VoiceService`, each sending a tone; for `--seconds` the CPU time (user + sys,
from /proc/<pid>/stat) of each baresip process and of this process (the service) is read, and
how many samples each phone's sndfile recording gained (8000 a second when it hears the call).

    PYTHONPATH=.:tests .venv/bin/python bench/phone_cpu.py [--player aubridge,ear] [--seconds 10]

`--player` overrides the fixture's audio_player/audio_alert lines (e.g. "alsa,null", what the
fixtures used before issue 7) to compare. Figures: docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0:1] = [str(ROOT), str(ROOT / "tests")]   # not bench/: its ivr.py would shadow ivr/

import sipfixtures as sf  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK   # utime, stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--player", help='audio_player / audio_alert "module,device" for the phones')
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="phone-cpu-"))
    settings = sf.voice_settings({"lobby": 10}, {"1000": "lobby"})
    phones = [sf.Baresip.create(tmp / n, sf.write_tone(tmp / f"{n}.wav", f))
              for n, f in (("a", 480.0), ("b", 820.0))]
    if args.player:
        for p in phones:
            cfg = p.workdir / "config"
            text = re.sub(r"^(audio_player|audio_alert) .*$", rf"\1 {args.player}",
                          cfg.read_text(), flags=re.M)
            module = args.player.split(",", 1)[0]
            cfg.write_text(text + f"module {module}.so\n")
    player = re.search(r"^audio_player (.*)$", (phones[0].workdir / "config").read_text(),
                       re.M).group(1)

    async def run() -> None:
        voice = VoiceService(settings)
        await voice.start()
        try:
            for i, p in enumerate(phones, 1):
                p.start()
                p.dial(f"sip:1000@127.0.0.1:{settings.sip.port}")
                await voice.wait_for(lambda i=i: len(voice.rooms().get("lobby", ())) == i, 10)
            await asyncio.sleep(1.0)   # past call setup
            t0 = time.monotonic()
            before = [cpu_seconds(p.proc.pid) for p in phones]
            own = cpu_seconds("self")
            samples = [p.recorded_samples() for p in phones]
            await asyncio.sleep(args.seconds)
            wall = time.monotonic() - t0
            after = [cpu_seconds(p.proc.pid) for p in phones]
            own = cpu_seconds("self") - own
            gained = [p.recorded_samples() - s for p, s in zip(phones, samples)]
            print(f"audio_player {player}, {wall:.1f} s in a call:")
            for name, b, a, g in zip("ab", before, after, gained):
                print(f"  phone {name}: {100 * (a - b) / wall:5.1f} % of a core, "
                      f"recorded {g / wall:.0f} samples/s")
            print(f"  service (this process): {100 * own / wall:5.1f} % of a core")
            for call in list(voice.calls()):
                voice.hangup(call, 200)
            await voice.wait_for(lambda: not voice.calls(), 10)
        finally:
            for p in phones:
                p.stop()
            await voice.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
