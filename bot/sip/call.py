"""The pjsua2 subclasses of the SIP adapter (split out of `bot.sip.stack` for size; one adapter).

Owns `PjCall`, `PjAccount` and `LogWriter`: thin overrides that translate pjsua2 callbacks into
calls on their `SipStack` (`bot.sip.stack`), which turns them into events. Must not keep state beyond
what a callback needs to tell a first event from a repeated one, and must not decide anything.
Every callback runs on the pjsua2 owner thread (`mainThreadOnly`), behind `barrier`.

Media state: `onCallMediaState` fires again on every re-INVITE/UPDATE that renegotiates the
call's media (hold, resume, codec change). pjsua then destroys the call's stream and re-adds its
conference port — often at the same slot number, but with every route into and out of it gone.
The stack is told each time (`media_active`); it re-announces the port so the routes are re-laid.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pjsua2 as pj

from bot.sip.events import CallConfirmed, CallRinging, DtmfMethod, DtmfReceived

if TYPE_CHECKING:
    from bot.sip.stack import SipStack

log = logging.getLogger("confbot.sip")
pjlog = logging.getLogger("confbot.pjsip")

METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: DtmfMethod.RFC4733,
           pj.PJSUA_DTMF_METHOD_SIP_INFO: DtmfMethod.SIP_INFO}
_PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}


class LogWriter(pj.LogWriter):
    def write(self, entry: "pj.LogEntry") -> None:
        pjlog.log(_PJ_LEVELS.get(entry.level, logging.DEBUG), "%s", entry.msg.rstrip())


def barrier(fn):
    """No exception may leave a pjsua2 callback: SWIG would print it and keep its traceback (and
    with it our Call objects) alive past libDestroy, whose destructors then abort."""
    def wrapper(self, *args):
        try:
            fn(self, *args)
        except Exception:   # noqa: BLE001
            log.exception("pjsua2 callback %s", fn.__name__)
    wrapper.__name__ = fn.__name__
    return wrapper


class PjCall(pj.Call):
    def __init__(self, stack: "SipStack", account: "pj.Account", pj_id: int, call_id: str) -> None:
        super().__init__(account, pj_id)
        self.stack, self.call_id, self.media_ready = stack, call_id, False
        self.confirmed = self.ringing = False

    @barrier
    def onCallState(self, prm) -> None:
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.stack._ended(self, ci.lastStatusCode, ci.lastReason)
        elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self.stack._post(CallConfirmed(self.call_id))
        elif ci.state == pj.PJSIP_INV_STATE_EARLY and ci.role == pj.PJSIP_ROLE_UAC \
                and not self.ringing:
            self.ringing = True
            self.stack._post(CallRinging(self.call_id, ci.lastStatusCode))

    @barrier
    def onCallTransferRequest(self, prm) -> None:
        # accept (prm.statusCode stays 202): pjsua dials the target on the call object we hand
        # it and reports its progress to the referrer as NOTIFYs (message/sipfrag). As the
        # transferee we never end the referrer's call: it stays (RFC 4579 conference factory)
        # or hangs up by itself (a phone's blind transfer).
        self.stack._transfer(self, prm)

    @barrier
    def onCallMediaState(self, prm) -> None:
        ci = self.getInfo()  # keep it: iterating a temporary's media reads freed memory
        for mi in ci.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.stack._media_active(self, self.getAudioMedia(mi.index))
                return

    @barrier
    def onDtmfDigit(self, prm) -> None:
        self.stack._post(DtmfReceived(self.call_id, prm.digit,
                                      METHODS.get(prm.method, DtmfMethod.INBAND)))


class PjAccount(pj.Account):
    def __init__(self, stack: "SipStack") -> None:
        super().__init__()
        self.stack = stack

    @barrier
    def onIncomingCall(self, prm) -> None:
        self.stack._incoming(self, prm.callId, prm.rdata.wholeMsg)
