"""Bench helper: many SIP callers in ONE pjsua2 process (a client endpoint, not the service).

Owns `Phones`: a pjsua2 endpoint of its own (own SIP port and RTP range on 127.0.0.1, null sound
device, G.711 only, no worker threads: everything runs on the thread that calls `pump`), and
`Phone`, one outgoing call each, which records what its caller hears into a WAV (the recorder
is connected the moment the call's audio is active, and that instant is kept, so a sample index
maps to a time on the machine's monotonic clock — the same clock the server process reads) and
may play a WAV into the call (a host's tone). DTMF goes out as RFC 4733 with `dialDtmf`.
Used by bench/ivr.py only. Must not import bot/ or ivr/: the service under test runs in another
process; this is the far end of the wire.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pjsua2 as pj

PUMP_MS = 5
# the callers' jitter buffer (ms: initial prefetch, min / max prefetch, maximum) as a desk phone
# sets it; pjsua's own defaults (150 / 60 / 240 / 500) would add ~150-300 ms to every figure
PHONE_JITTER_MS = (40, 20, 80, 200)


def _barrier(fn):
    """No exception may leave a pjsua2 callback (SWIG would keep the traceback's objects)."""
    def wrapper(self, *args):
        try:
            fn(self, *args)
        except Exception as exc:   # noqa: BLE001
            self.error = repr(exc)
    wrapper.__name__ = fn.__name__
    return wrapper


class Phone(pj.Call):
    """One caller. Times are `time.monotonic()` seconds; None until it happened."""

    def __init__(self, phones: "Phones", name: str, record_to: Path | None,
                 play: "pj.AudioMediaPlayer | None" = None) -> None:
        super().__init__(phones.account)
        self.phones, self.name, self.record_to, self.play = phones, name, record_to, play
        self.t_dial: float | None = None
        self.t_confirmed: float | None = None      # 200 OK received (ACK sent)
        self.t_media: float | None = None          # audio active
        self.t_rec: float | None = None            # recorder connected: sample 0 is about here
        self.t_ended: float | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.error: str | None = None
        self.status = 0

    @_barrier
    def onCallState(self, prm) -> None:
        ci = self.getInfo()
        now = time.monotonic()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.t_confirmed is None:
            self.t_confirmed = now
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.t_ended, self.status = now, ci.lastStatusCode

    @_barrier
    def onCallMediaState(self, prm) -> None:
        ci = self.getInfo()   # keep it: iterating a temporary's media reads freed memory
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                media = self.getAudioMedia(mi.index)
                if self.t_media is None:
                    self.t_media = time.monotonic()
                if self.record_to is not None and self.recorder is None:
                    self.recorder = pj.AudioMediaRecorder()
                    self.recorder.createRecorder(str(self.record_to))
                    media.startTransmit(self.recorder)
                    self.t_rec = time.monotonic()
                if self.play is not None:
                    self.play.startTransmit(media)
                return

    def dial(self, uri: str) -> None:
        self.t_dial = time.monotonic()
        self.makeCall(uri, pj.CallOpParam(True))

    def keys(self, digits: str) -> float:
        """Queue RFC 4733 digits; returns the instant they were handed to the stream."""
        self.dialDtmf(digits)
        return time.monotonic()

    def jbuf_delay_ms(self) -> float | None:
        try:
            return float(self.getStreamStat(0).jbuf.avgDelayMsec)
        except pj.Error:
            return None


class Phones:
    """A pjsua2 client endpoint on `port` with RTP from `rtp_port`. Call `close()` at the end."""

    def __init__(self, port: int, rtp_port: int, max_calls: int, clock_rate: int = 8000,
                 jitter_ms: tuple[int, int, int, int] | None = PHONE_JITTER_MS,
                 media_thread: bool = False) -> None:
        ep = self.ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = max_calls
        cfg.uaConfig.userAgent = "confbot-bench-client"
        cfg.logConfig.level = 1
        cfg.logConfig.consoleLevel = 1
        cfg.medConfig.clockRate = clock_rate
        cfg.medConfig.sndClockRate = clock_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.noVad = True
        if not media_thread:     # RTP read by `pump` on the SIP ioqueue, as every 5 ms
            cfg.medConfig.hasIoqueue, cfg.medConfig.threadCnt = False, 0
        cfg.medConfig.maxMediaPorts = max(3 * max_calls + 64, 256)
        if jitter_ms is not None:
            m = cfg.medConfig
            m.jbInit, m.jbMinPre, m.jbMaxPre, m.jbMax = jitter_ms
        ep.libInit(cfg)
        tc = pj.TransportConfig()
        tc.port, tc.boundAddress, tc.publicAddress = port, "127.0.0.1", "127.0.0.1"
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        ep.libStart()
        ep.audDevManager().setNullDev()
        for ci in ep.codecEnum2():
            name = ci.codecId.split("/", 1)[0].upper()
            ep.codecSetPriority(ci.codecId, {"PCMA": 255, "PCMU": 254}.get(name, 0))
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:bench@127.0.0.1:{port}"
        mt = acfg.mediaConfig.transportConfig
        mt.port, mt.portRange, mt.boundAddress = rtp_port, 4 * max_calls + 20, "127.0.0.1"
        self.account = pj.Account()
        self.account.create(acfg, True)
        self.phones: list[Phone] = []
        self.players: list[pj.AudioMediaPlayer] = []

    def phone(self, name: str, record_to: Path | None, play_wav: Path | None = None) -> Phone:
        player = None
        if play_wav is not None:
            player = pj.AudioMediaPlayer()
            player.createPlayer(str(play_wav), 0)     # looped
            self.players.append(player)
        p = Phone(self, name, record_to, player)
        self.phones.append(p)
        return p

    def pump(self, seconds: float = 0.0) -> None:
        """Handle SIP events for `seconds` (at least one poll)."""
        end = time.monotonic() + seconds
        while True:
            self.ep.libHandleEvents(PUMP_MS)
            if time.monotonic() >= end:
                return

    def pump_until(self, done: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= end:
                return False
            self.ep.libHandleEvents(PUMP_MS)
        return True

    def close(self) -> None:
        """Hang up, close the recorders (that writes their WAV headers), destroy the endpoint.
        pjsua2's Call objects outlive this (SWIG directors are not freed with the last Python
        reference here, and ~Call asserts once the library is gone), so the process that used
        Phones must end with `os._exit` after it has written its results."""
        try:
            self.ep.hangupAllCalls()
        except pj.Error:
            pass
        self.pump_until(lambda: all(p.t_ended is not None or p.t_confirmed is None
                                    for p in self.phones), 5.0)
        self.pump(0.2)
        for p in self.phones:
            p.recorder = None
            p.play = None
        self.players.clear()
        self.pump(0.1)
        try:
            self.account.shutdown()
        except pj.Error:
            pass
        self.pump(0.1)
        self.ep.libDestroy()
        self.ep = None
