"""PIN lockouts with the real stack: a baresip caller locks itself out with wrong PINs, stays
locked across a restart of the voice service (real pjsua2, one database), and gets in with the
right PIN once `confbot lockout clear` (a separate process) has lifted the lock — while the
service keeps running."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(120),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.booking.domain import BookingRequest  # noqa: E402
from bot.config.settings import CapacitySettings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr import events as ev  # noqa: E402
from ivr.guard import Admission  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import until_asking  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NUMBER = "7000"


async def _call(voice: VoiceService, phone, port: int, digits: str | None) -> list:
    """Dial in; type `digits` at the PIN prompt (None: expect to be refused before it). Returns
    the flow's actions once the call has ended or joined."""
    before = set(voice.drivers)
    phone.dial(f"sip:{NUMBER}@127.0.0.1:{port}")
    await voice.wait_for(lambda: set(voice.drivers) - before, 15)
    call = (set(voice.drivers) - before).pop()
    driver = voice.drivers[call]
    if digits is not None:
        await until_asking(voice, call, State.PIN_ENTRY)
        await asyncio.to_thread(phone.send_digits, digits)
    await voice.wait_for(lambda: call not in voice.calls() or voice.members.seat_of(call) is not None, 30)
    if voice.members.seat_of(call) is not None:
        voice.hangup(call, 200)
        await voice.wait_for(lambda: call not in voice.calls(), 10)
        return driver.history + ["joined"]
    return driver.history


def _refused_as_locked(history: list) -> bool:
    return any(isinstance(a, ev.Play) and a.prompt is ev.PromptId.PIN_LOCKED for a in history)


def _config(tmp: Path) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    cfg = tmp / "config.toml"
    cfg.write_text(text.replace('data_dir = "var"', f'data_dir = "{tmp}"'), encoding="utf-8")
    return cfg


def test_a_lock_survives_a_restart_and_confbot_lockout_clear_lifts_it_in_the_running_service(
        tmp_path):
    now = datetime.now(timezone.utc)
    seed = SqliteStore(tmp_path / "confbot.sqlite3")
    booking = seed.reserve(BookingRequest(now - timedelta(minutes=5), now + timedelta(minutes=55),
                                          3, "Weekly", "alice@example.com"),
                           now - timedelta(minutes=6), CapacitySettings(), 6).booking
    seed.close()
    wrong = "1" * len(booking.participant_pin)
    wrong = wrong if wrong != booking.participant_pin else "2" * len(wrong)
    base = sf.ivr_settings(pin_numbers={NUMBER: "premium"})
    settings = replace(base, ivr=replace(base.ivr, pin_tries=5, pin_caller_failures=2))
    phone = sf.Baresip.create(tmp_path / "a", sf.write_tone(tmp_path / "a.wav", 440.0))
    port = settings.sip.port

    async def run(steps) -> dict:
        store = SqliteStore(tmp_path / "confbot.sqlite3")
        ctx = sf.ivr_context(settings, tmp_path, store=store)
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            return await steps(voice, store)
        finally:
            await voice.stop()
            store.close()

    async def lock_myself_out(voice, store) -> dict:
        history = await _call(voice, phone, port, f"{wrong}#{wrong}#")
        await asyncio.wrap_future(voice.ivr.store_executor.submit(lambda: None))
        return {"history": history, "stored": store.active_lockouts(datetime.now(timezone.utc))}

    async def after_restart(voice, store) -> dict:
        [lock] = store.active_lockouts(datetime.now(timezone.utc))
        refused = await _call(voice, phone, port, None)        # locked before the PIN prompt
        res = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "bot.cli", "lockout", "clear", lock.caller,
            "--config", str(_config(tmp_path))], capture_output=True, text=True, timeout=60,
            cwd=ROOT)
        async with asyncio.timeout(10):     # the service's next poll of the store
            while voice.pin_guard.admit(lock.caller, datetime.now(timezone.utc)) \
                    is not Admission.ALLOWED:
                await asyncio.sleep(0.1)
        admitted = await _call(voice, phone, port, booking.participant_pin + "#")
        return {"refused": refused, "cli": res, "admitted": admitted}

    phone.start()
    try:
        first = asyncio.run(run(lock_myself_out))
        second = asyncio.run(run(after_restart))
    finally:
        phone.stop()
    assert _refused_as_locked(first["history"]), first["history"][-8:]
    [stored] = first["stored"]
    assert stored.scope == "caller" and stored.failures == 2 and "tester" in stored.caller
    assert _refused_as_locked(second["refused"]), second["refused"][-8:]
    assert not any(isinstance(a, ev.CheckPin) for a in second["refused"])  # no more tries
    assert second["cli"].returncode == 0, second["cli"].stderr
    assert "lifted the PIN lockout" in second["cli"].stdout
    assert second["admitted"][-1] == "joined", second["admitted"][-8:]
    assert not _refused_as_locked(second["admitted"])
