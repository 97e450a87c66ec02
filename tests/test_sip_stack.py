"""The SIP adapter on its own: request-URI parsing, TLS available by config, and the stack's
start/stop contract (a port already taken fails `start()` cleanly instead of hanging)."""
from __future__ import annotations

import socket
import ssl
import subprocess
import time
from dataclasses import replace

import pytest

import sipfixtures as sf

pytestmark = pytest.mark.timeout(30)
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.sip.stack import SipStack, request_user  # noqa: E402
from bot.config.settings import SipSettings  # noqa: E402


@pytest.mark.parametrize("line, user", [
    ("INVITE sip:1000@127.0.0.1:5060 SIP/2.0\r\nVia: x\r\n", "1000"),
    ("INVITE sip:+4990055551000@gw.example;user=phone SIP/2.0\r\n", "+4990055551000"),
    ("INVITE sips:lobby@host SIP/2.0\n", "lobby"),
    ("INVITE sip:host.example SIP/2.0\r\n", ""),
    ("garbage", ""),
])
def test_request_user_is_the_user_part_of_the_request_uri(line, user):
    assert request_user(line) == user


def test_tls_transport_listens_with_the_configured_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=confbot.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    tls_port = sf.free_port()
    settings = replace(sf.voice_settings({}, {}).sip, tls_port=tls_port, tls_cert=str(cert),
                       tls_key=str(key), srtp="optional")
    stack = SipStack(settings, lambda e: None)
    stack.start()
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", tls_port), timeout=3) as raw:
            with ctx.wrap_socket(raw) as tls:
                peer = tls.getpeercert()
        assert dict(x[0] for x in peer["subject"])["commonName"] == "confbot.test"
    finally:
        stack.stop()


def test_start_fails_cleanly_when_the_sip_port_is_taken():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        stack = SipStack(SipSettings(port=port, transports=("udp",)), lambda e: None)
        with pytest.raises(RuntimeError, match="SIP stack failed to start"):
            stack.start()
    # and a new stack can be created afterwards in the same process
    again = SipStack(SipSettings(port=sf.free_port(), transports=("udp",)), lambda e: None)
    again.start()
    again.stop()


def test_a_full_bridge_refuses_players_and_keeps_ports_for_calls(tmp_path):
    """pjmedia aborts the process when a port is added to a full bridge: players beyond the
    ports owed to calls must fail as CommandFailed, and a call must still get its port."""
    import threading
    from bot.sip.events import (AddPlayer, Answer, CallEnded, CallMediaReady, CallOffered,
                               CommandFailed)
    events: list[object] = []
    media = threading.Event()
    stack: SipStack | None = None

    def post(e):
        events.append(e)
        if isinstance(e, CallOffered):
            stack.submit(Answer(e.call))
        elif isinstance(e, CallMediaReady):
            media.set()
    settings = replace(sf.voice_settings({}, {}, max_calls=2).sip)
    stack = SipStack(settings, post, conf_ports=8)   # port 0 (clock) + 7; 2 owed to calls
    stack.start()
    try:
        wav = str(sf.write_tone(tmp_path / "t.wav", 440.0, 1.0))
        for k in range(8):
            stack.submit(AddPlayer(f"p{k}", wav))
        assert stack.query(lambda: None).result(10) is None    # the stack is alive
        failed = [e for e in events if isinstance(e, CommandFailed)]
        assert [e.command.port for e in failed] == ["p5", "p6", "p7"]
        assert all("conference bridge full" in e.error for e in failed)
        run = sf.run_sipp(tmp_path / "sipp", sf.sipp_scenario("full"), f"127.0.0.1:{settings.port}",
                          "1000")
        assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
        assert media.is_set()
        deadline = time.monotonic() + 10
        while not any(isinstance(e, CallEnded) for e in events) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(isinstance(e, CallEnded) for e in events)
    finally:
        stack.stop()


def test_a_call_offered_while_the_service_stops_is_not_an_error(caplog):
    """The owner thread may post a CallOffered after VoiceService.stop() dropped the stack (the
    stack's own shutdown hangs that call up): it is logged and left alone, not an exception."""
    import asyncio

    from bot.sip.events import CallOffered
    from bot.service.voice import VoiceService

    async def run():
        voice = VoiceService(sf.voice_settings({"lobby": 5}, {"1000": "lobby"}),
                             asyncio.get_running_loop())
        voice._on_event(CallOffered("call-1", "1000", "<sip:tester@127.0.0.1>"))
        return voice
    voice = asyncio.run(run())
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    assert voice.calls() == {}


def test_a_call_whose_dialog_ends_without_a_disconnected_callback_still_ends(tmp_path,
                                                                             monkeypatch):
    """A 20,000-call soak left 7 calls open for good: callers CANCELled just as they were
    answered, the answer failed (PJSIP_ESESSIONTERMINATED) and no DISCONNECTED callback came.
    Here the callback is withheld on purpose: a failed answer ends the call at once, and a call
    nobody answers is found by the stack's sweep; both are reported as ended (487)."""
    import threading

    import pjsua2 as pj

    from bot.sip import call as sipcall
    from bot.sip.events import Answer, CallEnded, CallOffered
    real = sipcall.PjCall.onCallState

    def withheld(self, prm):
        if self.getInfo().state != pj.PJSIP_INV_STATE_DISCONNECTED:
            real(self, prm)
    monkeypatch.setattr(sipcall.PjCall, "onCallState", withheld)
    events: list[object] = []
    offered = threading.Event()

    def post(e):
        events.append(e)
        if isinstance(e, CallOffered):
            offered.set()
    settings = sf.voice_settings({}, {}).sip
    stack = SipStack(settings, post)
    stack.start()
    try:
        for answer in (True, False):
            events.clear()
            offered.clear()
            run = sf.run_sipp_file(tmp_path / f"sipp-{answer}", "invite_cancel",
                                   f"127.0.0.1:{settings.port}", "1000")
            assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
            assert offered.is_set()
            call = next(e.call for e in events if isinstance(e, CallOffered))
            started = time.monotonic()
            if answer:
                stack.submit(Answer(call))
            deadline = started + 5
            while not any(isinstance(e, CallEnded) for e in events) and time.monotonic() < deadline:
                time.sleep(0.02)
            ended = [e for e in events if isinstance(e, CallEnded)]
            assert [(e.call, e.status) for e in ended] == [(call, 487)], events
            if answer:
                assert time.monotonic() - started < 1.0     # the failed answer, not the sweep
    finally:
        stack.stop()
