"""Clean shutdown with calls up: the service hangs up every caller (they receive a BYE), tears
pjsua2 down in the order that does not abort, and the process exits 0 — whether the composition
root calls `stop()` or simply returns with the stack still running."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(60),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

SERVER = textwrap.dedent("""
    import asyncio, atexit, sys, time
    from pathlib import Path
    import sipfixtures as sf
    from bot.service.voice import VoiceService

    async def main(phones, explicit_stop):
        voice = VoiceService(settings)
        await voice.start()
        for p in phones:
            p.start()
            p.dial(f"sip:1000@127.0.0.1:{settings.sip.port}")
        await voice.wait_for(lambda: len(voice.rooms().get("lobby", ())) == 3, 10)
        await asyncio.sleep(0.5)
        print("CALLS UP", len(voice.calls()), flush=True)
        if explicit_stop:
            await voice.stop()
        # else: return with the stack running; its atexit hook must shut down in order

    tmp, explicit = Path(sys.argv[1]), sys.argv[2] == "stop"
    settings = sf.voice_settings({"lobby": 10}, {"1000": "lobby"})
    phones = [sf.Baresip.create(tmp / f"p{i}", sf.write_tone(tmp / f"t{i}.wav", 500 + 100 * i))
              for i in range(3)]
    # atexit runs last-registered first: this runs after the stack's own hook (registered later)
    atexit.register(lambda: (time.sleep(0.3), [p.stop() for p in phones]))
    asyncio.run(main(phones, explicit))
    print("RETURNED", flush=True)
""")


@pytest.mark.parametrize("how", ["stop", "exit"])
def test_shutdown_with_three_calls_up_hangs_up_everyone_and_exits_zero(tmp_path, how):
    proc = subprocess.run([sys.executable, "-c", SERVER, str(tmp_path), how],
                          capture_output=True, text=True, timeout=45,
                          cwd=sf.Path(__file__).resolve().parent.parent,
                          env={"PYTHONPATH": ".:tests", "PATH": "/usr/bin:/bin"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "CALLS UP 3" in proc.stdout
    for bad in ("terminate called", "Assertion", "Traceback", "Segmentation"):
        assert bad not in out, out[-3000:]
    for i in range(3):
        log = (tmp_path / f"p{i}" / "stdout.log").read_text(errors="replace")
        # baresip 1.0 reports a far-end BYE as "session closed" — before its own quit
        assert "Call established" in log, log[-1500:]
        closed, quit = log.find("session closed"), log.find("ua: stop all")
        assert 0 <= closed < quit, log[-1500:]
