"""The pjsua2 endpoint and account as confbot configures them (adapter, owner thread only).

Owns `start` (the stack's one pjsua2 `Endpoint`: no worker threads — everything runs on the SIP owner
thread —, our log writer, the bridge's clock rate and port count, the UDP/TCP/TLS transports,
the null sound device as the bridge's clock, the codec order) and `account_config` (the one
local account: RTP port range, SRTP policy). Split off `bot.sip.stack` for size; must not keep
state: the stack owns the objects it returns.
"""
from __future__ import annotations

import pjsua2 as pj

from bot.config.settings import SipSettings


def start(ep: "pj.Endpoint", s: SipSettings, writer: "pj.LogWriter", conf_ports: int) -> None:
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.uaConfig.maxCalls = s.max_calls
    cfg.uaConfig.userAgent = "confbot"
    cfg.logConfig.writer = writer
    cfg.logConfig.level = s.log_level
    cfg.logConfig.consoleLevel = s.log_level   # pjsua hands the writer only what passes this
    cfg.logConfig.decor = 0
    cfg.medConfig.clockRate = s.clock_rate
    cfg.medConfig.sndClockRate = s.clock_rate
    cfg.medConfig.channelCount = 1
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    cfg.medConfig.maxMediaPorts = conf_ports
    ep.libInit(cfg)
    for kind in s.transports:
        tc = pj.TransportConfig()
        tc.port, tc.boundAddress, tc.publicAddress = s.port, s.host, s.host
        ep.transportCreate({"udp": pj.PJSIP_TRANSPORT_UDP,
                            "tcp": pj.PJSIP_TRANSPORT_TCP}[kind], tc)
    if s.tls_port and s.tls_cert and s.tls_key:
        tc = pj.TransportConfig()
        tc.port, tc.boundAddress, tc.publicAddress = s.tls_port, s.host, s.host
        tc.tlsConfig.certFile, tc.tlsConfig.privKeyFile = s.tls_cert, s.tls_key
        ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
    ep.libStart()
    ep.audDevManager().setNullDev()  # a clock for the bridge, no sound card
    set_codecs(ep, s.codecs)


def set_codecs(ep: "pj.Endpoint", wanted: tuple[str, ...]) -> None:
    prio = {name.upper(): 255 - i for i, name in enumerate(wanted)}
    for ci in ep.codecEnum2():
        name = ci.codecId.split("/", 1)[0].upper()
        ep.codecSetPriority(ci.codecId, prio.get(name, 0))


def account_config(s: SipSettings) -> "pj.AccountConfig":
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:confbot@{s.host}:{s.port}"
    mt = acfg.mediaConfig.transportConfig
    mt.port, mt.portRange, mt.boundAddress = s.rtp_port, s.rtp_port_range, s.host
    acfg.mediaConfig.srtpUse = {"disabled": pj.PJMEDIA_SRTP_DISABLED,
                                "optional": pj.PJMEDIA_SRTP_OPTIONAL,
                                "mandatory": pj.PJMEDIA_SRTP_MANDATORY}[s.srtp]
    return acfg
