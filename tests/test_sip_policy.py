"""What carriers' SBCs and softphones get from the service outside a booked call (issue 7, point 9),
with real peers against the IVR service:

- an INVITE to a number no [[dialin]] entry has: a final 404 Not Found, and no 200 before it
  (sipp; under `[sip] unknown_number = "reject"`, the default), while a known number is still
  answered;
- with `unknown_number = "answer"`: answered, and the caller (baresip) hears the "unknown
  number" prompt;
- REGISTER: 405 Method Not Allowed with an Allow header, at once (sipp; the patched pjsua2's
  fallback module, scripts/pjsua2/0004-unhandled-request-405.patch; before it, no answer);
- OPTIONS (an SBC's keep-alive): 200 OK.
"""
from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import sipfixtures as sf
from bot.config.load import ConfigError, load, parse_text
from bot.config.settings import UnknownNumber

ROOT = Path(__file__).resolve().parent.parent


# ---- the setting ------------------------------------------------------------------------------

def test_unknown_numbers_are_rejected_by_default_and_in_the_shipped_config():
    assert parse_text("").sip.unknown_number is UnknownNumber.REJECT
    assert load(ROOT / "config.toml").sip.unknown_number is UnknownNumber.REJECT


def test_unknown_number_answer_is_accepted_and_a_bad_value_names_its_line():
    assert parse_text('[sip]\nunknown_number = "answer"\n').sip.unknown_number is UnknownNumber.ANSWER
    with pytest.raises(ConfigError) as e:
        parse_text('[sip]\nport = 5060\nunknown_number = "ring"\n')
    assert e.value.problems == [
        'config.toml:3: sip.unknown_number must be one of "reject", "answer", not \'ring\'']


# ---- real peers -------------------------------------------------------------------------------

needs_pjsua2 = pytest.mark.skipif(importlib.util.find_spec("pjsua2") is None,
                                  reason="run scripts/build-pjsua2.sh --install")
needs_sipp = pytest.mark.skipif(sf.SIPP is None,
                                reason="sipp (Debian package sip-tester) not installed")
KNOWN, UNKNOWN = "7000", "4930123456"


def _sipp(tmp: Path, name: str, target: str, service: str, tcp: bool = False,
          timeout: float = 8.0):
    """tests/sipp/<name>.xml once (over UDP, or TCP), with every message traced
    (<name>_<pid>_messages.log); "known" is the fixtures' plain call that sipp hangs up."""
    work = tmp / f"{name}-{service}{'-tcp' if tcp else ''}"
    work.mkdir(parents=True, exist_ok=True)
    text = (sf.sipp_scenario("known", hold_ms=300) if name == "known"
            else (sf.SIPP_DIR / f"{name}.xml").read_text())
    extra = ("-trace_msg",) + (("-t", "t1") if tcp else ())
    proc = sf.run_sipp(work, text, target, service, timeout=timeout, extra=extra)
    trace = "".join(p.read_text(errors="replace") for p in work.glob("*_messages.log"))
    return proc, trace


@pytest.fixture(scope="module")
def carrier(tmp_path_factory):
    """One service (IVR, reject policy); sipp as the carrier: an unknown number, a known one
    (also with a "+"), REGISTER over UDP and TCP, OPTIONS."""
    from bot.service.voice import VoiceService
    tmp = tmp_path_factory.mktemp("policy")
    settings = sf.ivr_settings(pin_numbers={KNOWN: "premium"})
    assert settings.sip.unknown_number is UnknownNumber.REJECT
    ctx = sf.ivr_context(settings, tmp)
    out: dict = {}

    async def run() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            target = f"127.0.0.1:{settings.sip.port}"
            for name, service, tcp in (("invite_404", UNKNOWN, False), ("known", KNOWN, False),
                                       ("known", "+" + KNOWN, False),
                                       ("register_405", "alice", False),
                                       ("register_405", "alice", True),
                                       ("options_200", KNOWN, False)):
                out[service if name == "known" else name + ("-tcp" if tcp else "")] = \
                    await asyncio.to_thread(_sipp, tmp, name, target, service, tcp)
            await voice.wait_for(lambda: not voice.calls(), 10)
            out["events"] = list(voice.events)
        finally:
            await voice.stop()

    asyncio.run(run())
    return out


def _ok(proc) -> str:
    return proc.stdout.decode()[-1500:] + proc.stderr.decode()[-1500:]


def _received_status_lines(trace: str) -> list[str]:
    """The status lines of the responses sipp received, in order."""
    lines = trace.splitlines()
    return [lines[i + 2].strip() for i, line in enumerate(lines[:-2])
            if "message received" in line and lines[i + 2].startswith("SIP/2.0")]


@needs_pjsua2
@needs_sipp
@pytest.mark.timeout(90)
def test_an_unknown_number_gets_404_and_never_a_200(carrier):
    from bot.sip.events import CallEnded, CallMediaReady, CallOffered
    proc, trace = carrier["invite_404"]
    assert proc.returncode == 0, _ok(proc)
    statuses = _received_status_lines(trace)
    assert statuses and statuses[-1].startswith("SIP/2.0 404"), statuses
    assert not [s for s in statuses if s.startswith("SIP/2.0 2")], statuses
    events = carrier["events"]
    call = next(e.call for e in events if isinstance(e, CallOffered) and e.dialled == UNKNOWN)
    assert [e.status for e in events if isinstance(e, CallEnded) and e.call == call] == [404]
    assert not [e for e in events if isinstance(e, CallMediaReady) and e.call == call]


@needs_pjsua2
@needs_sipp
@pytest.mark.timeout(90)
@pytest.mark.parametrize("dialled", [KNOWN, "+" + KNOWN])
def test_a_known_number_is_still_answered_however_it_is_written(carrier, dialled):
    """"+7000" is the [[dialin]] user "7000", as the call flow's routing reads it."""
    proc, trace = carrier[dialled]
    assert proc.returncode == 0, _ok(proc)
    assert any(s.startswith("SIP/2.0 200") for s in _received_status_lines(trace))


@needs_pjsua2
@needs_sipp
@pytest.mark.timeout(90)
@pytest.mark.parametrize("run", ["register_405", "register_405-tcp"])
def test_register_gets_405_with_allow_at_once(carrier, run):
    proc, trace = carrier[run]
    assert proc.returncode == 0, _ok(proc)   # sipp checked Allow: lists INVITE, not REGISTER
    assert _received_status_lines(trace) == ["SIP/2.0 405 Method Not Allowed"]


@needs_pjsua2
@needs_sipp
@pytest.mark.timeout(90)
def test_options_keepalive_gets_200(carrier):
    proc, trace = carrier["options_200"]
    assert proc.returncode == 0, _ok(proc)
    assert _received_status_lines(trace) == ["SIP/2.0 200 OK"]


@needs_pjsua2
@pytest.mark.skipif(sf.BARESIP is None, reason="baresip (Debian package) not installed")
@pytest.mark.skipif(sf.ESPEAK is None, reason="espeak-ng not installed")
@pytest.mark.timeout(90)
def test_the_answer_setting_answers_with_the_unknown_number_prompt(tmp_path):
    from bot.service.voice import VoiceService
    from ivr.events import Play, PromptId
    from ivr.speech.render import read_wav
    base = sf.ivr_settings(pin_numbers={KNOWN: "premium"})
    settings = replace(base, sip=replace(base.sip, unknown_number=UnknownNumber.ANSWER))
    ctx = sf.ivr_context(settings, tmp_path)
    phone = sf.Baresip.create(tmp_path / "phone", sf.write_tone(tmp_path / "tone.wav", 440.0))
    out: dict = {}

    async def run() -> None:
        voice = VoiceService(settings, ivr=ctx)
        await voice.start()
        try:
            out["wav"] = (await ctx.prompts.wav(PromptId.UNKNOWN_NUMBER, (), "en"))[0]
            phone.start()
            phone.dial(f"sip:{UNKNOWN}@127.0.0.1:{settings.sip.port}")
            await voice.wait_for(lambda: voice.drivers, 15)
            driver = next(iter(voice.drivers.values()))
            await voice.wait_for(lambda: not voice.calls(), 30)   # the flow says goodbye
            out["prompts"] = [a.prompt for a in driver.history if isinstance(a, Play)]
        finally:
            phone.stop()
            await voice.stop()

    asyncio.run(run())
    assert out["prompts"][0] is PromptId.UNKNOWN_NUMBER, out["prompts"]
    rec = phone.recording()
    assert rec is not None, phone.log()
    heard, rate = sf.read_wav(rec)
    wav, wav_rate = read_wav(out["wav"])
    assert wav_rate == rate
    # the first thing the caller heard is that prompt: its envelope (20 ms RMS) from the first
    # voiced frame on follows the rendered WAV's
    frames = sf.frame_rms(heard, rate)
    start = int(np.flatnonzero(frames > 0.01)[0])
    span = heard[start * rate // 50: start * rate // 50 + len(wav)]
    ref, got = sf.frame_rms(wav, rate), sf.frame_rms(span, rate)
    assert len(got) == len(ref), "the call ended before the prompt had played"
    corr = float(np.corrcoef(ref, got)[0, 1])
    assert corr > 0.8, corr
