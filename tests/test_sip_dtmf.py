"""End to end with sipp: DTMF sent as RFC 4733 telephone-events (Debian's dtmf_2833_1.pcap) and as
SIP INFO (application/dtmf-relay) arrive as the same `DtmfReceived` event, once per digit; numbers
without a direct-access route and full rooms are refused with the right status."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import sipfixtures as sf

pytestmark = [
    pytest.mark.skipif(sf.SIPP is None, reason="sipp (Debian package sip-tester) not installed"),
    pytest.mark.timeout(60),
]
pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.sip.stack import CallEnded, CallOffered, DtmfMethod, DtmfReceived  # noqa: E402
from bot.service.voice import VoiceService  # noqa: E402


def _call(tmp: Path, settings, service: str, scenario: str):
    async def run():
        voice = VoiceService(settings)
        await voice.start()
        try:
            target = f"127.0.0.1:{settings.sip.port}"
            proc = await asyncio.to_thread(sf.run_sipp, tmp, scenario, target, service)
            await voice.wait_for(lambda: any(isinstance(e, CallEnded) for e in voice.events), 5)
            return proc, list(voice.events)
        finally:
            await voice.stop()
    return asyncio.run(run())


def test_rfc4733_and_sip_info_digits_arrive_as_the_same_event(tmp_path):
    settings = sf.voice_settings({"lobby": 10}, {"1000": "lobby"})
    scenario = sf.sipp_scenario("dtmf", rtp_pcaps=(str(sf.SIPP_PCAPS / "dtmf_2833_1.pcap"),),
                                info_digits="4#")
    proc, events = _call(tmp_path, settings, "1000", scenario)
    assert proc.returncode == 0, proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:]
    digits = [(e.digit, e.method) for e in events if isinstance(e, DtmfReceived)]
    assert digits == [("1", DtmfMethod.RFC4733), ("4", DtmfMethod.SIP_INFO),
                      ("#", DtmfMethod.SIP_INFO)]
    offered = next(e for e in events if isinstance(e, CallOffered))
    assert offered.dialled == "1000"
    assert {e.call for e in events if isinstance(e, DtmfReceived)} == {offered.call}


REFUSED = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="refused">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="{code}"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"""


def test_a_number_without_a_direct_route_is_refused_with_404(tmp_path):
    settings = sf.voice_settings({"lobby": 10}, {"1000": "lobby"})
    proc, events = _call(tmp_path, settings, "4711", REFUSED.format(code=404))
    assert proc.returncode == 0, proc.stdout.decode()[-2000:]
    ended = next(e for e in events if isinstance(e, CallEnded))
    assert ended.status == 404


def test_a_full_room_refuses_the_next_caller_with_486_busy(tmp_path):
    settings = sf.voice_settings({"tiny": 1}, {"3000": "tiny"})
    target = f"127.0.0.1:{settings.sip.port}"

    async def run():
        voice = VoiceService(settings)
        await voice.start()
        try:
            first = asyncio.create_task(asyncio.to_thread(
                sf.run_sipp, tmp_path / "first", sf.sipp_scenario("hold", hold_ms=2500),
                target, "3000"))
            await voice.wait_for(lambda: voice.rooms().get("tiny"), 15)
            second = await asyncio.to_thread(sf.run_sipp, tmp_path / "second",
                                             REFUSED.format(code=486), target, "3000")
            first = await first
            await voice.wait_for(
                lambda: sum(isinstance(e, CallEnded) for e in voice.events) == 2, 5)
            return first, second, list(voice.events)
        finally:
            await voice.stop()

    first, second, events = asyncio.run(run())
    assert second.returncode == 0, second.stdout.decode()[-2000:]
    assert first.returncode == 0, first.stdout.decode()[-2000:]
    assert sorted(e.status for e in events if isinstance(e, CallEnded)) == [200, 486]
