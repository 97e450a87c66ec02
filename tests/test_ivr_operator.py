"""End to end through the IVR: the first prompt a caller hears is the rendered WELCOME (energy and
length compared with the WAV), three wrong PINs take the caller to the operator (a second
baresip that answers by itself), the two then hear each other, and the operator hanging up ends
the caller's call too."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed"),
    pytest.mark.timeout(90),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.store.sqlite import SqliteStore  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402
from ivr.events import PromptId  # noqa: E402
from ivr.speech.render import read_wav  # noqa: E402
from ivr.steps import State  # noqa: E402
from test_ivr_conference import until_asking  # noqa: E402

CALLER, OPERATOR = 440.0, 770.0
HEARD, SILENT = 0.03, 0.006
VOICED = 0.01          # frame RMS above this is a prompt, not line noise


def _run(tmp: Path) -> dict:
    caller = sf.Baresip.create(tmp / "caller", sf.write_tone(tmp / "caller.wav", CALLER))
    operator = sf.Baresip.create(tmp / "operator", sf.write_tone(tmp / "op.wav", OPERATOR),
                                 answer="auto", user="operator")
    settings = sf.ivr_settings(pin_numbers={"7000": "premium"},
                               operator_uri=f"sip:operator@{operator.uri_host}")
    ctx = sf.ivr_context(settings, tmp, store=SqliteStore(tmp / "confbot.sqlite3"))
    out: dict = {}

    async def scenario() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            caller.start()
            operator.start()
            out["welcome"] = (await ctx.prompts.wav(PromptId.WELCOME, (), "en"))[0]
            caller.dial(f"sip:7000@127.0.0.1:{settings.sip.port}")
            await voice.wait_for(lambda: voice.drivers, 15)
            call = next(iter(voice.drivers))
            flow = voice.drivers[call].flow
            for attempt in range(3):
                await until_asking(voice, call, State.PIN_ENTRY)
                await asyncio.to_thread(caller.send_digits, "111111#")
                await voice.wait_for(lambda a=attempt: flow.wrong_pins == a + 1, 15)
            room = f"op-{call}"
            await voice.wait_for(lambda: len(voice.rooms().get(room, ())) == 2, 10)
            out["state"] = flow.state
            out["rooms"] = voice.rooms()
            await asyncio.sleep(2.0)
            out["end"] = time.monotonic()
            operator.hangup()
            await voice.wait_for(lambda: not voice.calls(), 15)
            out["caller_gone"] = call not in voice.calls()
        finally:
            caller.stop()
            operator.stop()
            await voice.stop()

    asyncio.run(scenario())
    for name, phone in (("caller", caller), ("operator", operator)):
        rec = phone.recording()
        assert rec is not None, f"{name} recorded nothing: {phone.log()}"
        out[name] = sf.read_wav(rec)
    return out


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("ivrop"))


def test_the_first_prompt_heard_is_the_rendered_welcome(desk):
    heard, rate = desk["caller"]
    wav, wav_rate = read_wav(desk["welcome"])
    assert wav_rate == rate
    frames = sf.frame_rms(heard, rate)
    start = int(np.flatnonzero(frames > VOICED)[0])          # first 20 ms frame with audio
    assert start * 0.02 < 0.5, f"first audio only after {start * 0.02:.2f} s"
    span = heard[start * rate // 50: start * rate // 50 + len(wav)]
    ref_frames, got_frames = sf.frame_rms(wav, rate), sf.frame_rms(span, rate)
    # same loudness (G.711 keeps levels within a dB or two) and voiced for as long as the WAV
    ratio = float(np.sqrt(np.mean(span ** 2)) / np.sqrt(np.mean(wav ** 2)))
    assert 0.7 < ratio < 1.4, ratio
    assert abs(int((got_frames > VOICED).sum()) - int((ref_frames > VOICED).sum())) <= 8


def test_three_wrong_pins_bridge_the_caller_to_the_operator(desk):
    assert desk["state"] is State.CLOSING          # the flow handed the call over
    rooms = desk["rooms"]
    assert len(rooms) == 1 and next(iter(rooms)).startswith("op-")


def test_caller_and_operator_hear_each_other(desk):
    caller, rate = desk["caller"]
    operator, _ = desk["operator"]
    at_caller = sf.window(caller, rate, 1.9, 0.3)
    at_operator = sf.window(operator, rate, 1.9, 0.3)
    assert sf.tone_power(at_caller, rate, OPERATOR) > HEARD
    assert sf.tone_power(at_operator, rate, CALLER) > HEARD
    assert sf.tone_power(at_caller, rate, CALLER) < SILENT


def test_the_operator_hanging_up_ends_the_callers_call(desk):
    assert desk["caller_gone"]
