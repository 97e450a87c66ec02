"""The links between calls (wiring): invitations by dial-out (I6), 3PTY legs and incoming SIP
REFER (I7), and the operator leg (I2).

Owns `Leg` (an outgoing call the bot placed or accepted for another call: who owns it, for
what, whether it was answered) and `Switchboard`, which the voice service calls on dial-outs,
answers, REFERs and hang-ups. It translates SIP outcomes into the flows' answers
(`DialOutResult`, `OperatorResult`) and starts an `InviteeFlow` on an answered invitation.
Must not import pjsua2 or touch the mixer directly: it asks `bot.service.voice.VoiceService`.

The operator route is a bridge, not a transfer: the bot dials `[ivr].operator_uri`, and when
the operator answers both calls meet in a private room "op-<caller's call>" (so the bot keeps
the caller: the operator can later be offered keypad commands to move the caller into a
conference, and the CDR keeps the whole call). Either side hanging up ends the other.
REFER (RFC 4579 conference-factory style): a caller's phone refers the bot to a third party;
the bot dials it and joins it into the referrer's room. A caller still in the IVR (no room yet:
entering a PIN, in a menu) has no room to bring anyone into: the referred call is cancelled at
once (the referrer's phone gets a failure NOTIFY) and the caller's flow carries on untouched.
"""
from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Protocol

from bot.conference.owner import ConferenceKind
from bot.conference.rooms import Role
from bot.sip.events import BUSY_CODES, NO_ANSWER_CODES
from ivr import events as ev
from ivr.invitee import InviteeFlow

log = logging.getLogger("confbot.switchboard")



class LegKind(enum.Enum):
    INVITE = "invite"
    THREEWAY = "threeway"
    OPERATOR = "operator"
    REFER = "refer"


@dataclass(eq=False)
class Leg:
    kind: LegKind
    owner: str                      # the call it was placed for
    room: str | None = None
    inviter: str = ""
    title: str = ""
    answered: bool = False
    ring_timer: asyncio.TimerHandle | None = None


def outcome_of(status: int) -> ev.DialOutcome:
    if status in BUSY_CODES:
        return ev.DialOutcome.BUSY
    if status in NO_ANSWER_CODES:
        return ev.DialOutcome.NO_ANSWER
    return ev.DialOutcome.FAILED


class SwitchboardPort(Protocol):
    """What the switchboard asks of the voice service, and nothing more."""
    settings: object
    ivr: object

    def calls(self) -> dict: ...
    def room_of(self, call: str) -> str | None: ...
    def driver_of(self, call: str): ...
    def new_driver(self, call: str, flow): ...
    def place_call(self, uri: str, dialled: str) -> str: ...
    def join_room(self, call: str, room: str, role: Role, muted: bool, limit: int | None,
                  name: str | None = None, kind=None) -> ev.JoinResult: ...
    def hangup(self, call: str, code: int = 603, cause: str | None = None) -> None: ...


class Switchboard:
    def __init__(self, voice: SwitchboardPort) -> None:
        self.voice = voice
        self.legs: dict[str, Leg] = {}

    # ---- placing calls ---------------------------------------------------------------------

    def dial_out(self, driver, action: ev.DialOut) -> None:
        template = self.voice.settings.ivr.dialout_uri
        if not template:
            log.warning("call %s: dial-out requested but [ivr].dialout_uri is not set", driver.call)
            driver.feed_soon(ev.DialOutResult("", ev.DialOutcome.FAILED))
            return
        kind = LegKind.INVITE if action.purpose is ev.DialPurpose.INVITE else LegKind.THREEWAY
        call = self.voice.place_call(template.format(number=action.number), action.number)
        self._add(call, Leg(kind, driver.call, action.room, action.inviter, action.title))

    def transfer_to_operator(self, driver, uri: str) -> None:
        call = self.voice.place_call(uri, "operator")
        self._add(call, Leg(LegKind.OPERATOR, driver.call))

    def referred(self, referrer: str, new_call: str, target: str) -> None:
        if self.voice.room_of(referrer) is None:
            log.info("%s referred the bot to %s but is in no conference: declined", referrer,
                     target)
            self.voice.hangup(new_call, 603, cause="refer declined")
            return
        log.info("%s referred the bot to %s (as %s)", referrer, target, new_call)
        self._add(new_call, Leg(LegKind.REFER, referrer))

    def _add(self, call: str, leg: Leg) -> None:
        # every dial-out, operator and REFER leg rings at most `[ivr] dialout_ring_seconds`
        leg.ring_timer = asyncio.get_running_loop().call_later(
            self.voice.settings.ivr.dialout_ring_seconds, self._ring_timeout, call)
        self.legs[call] = leg

    def _ring_timeout(self, call: str) -> None:
        leg = self.legs.get(call)
        if leg is not None and not leg.answered:
            self.voice.hangup(call, cause="no answer")     # CANCEL → 487 → NO_ANSWER

    # ---- progress ----------------------------------------------------------------------------

    def answered(self, call: str) -> None:
        """An outgoing leg has audio (the callee answered)."""
        leg = self.legs.get(call)
        if leg is None:
            self.voice.hangup(call, cause="no leg")
            return
        leg.answered = True
        if leg.ring_timer is not None:
            leg.ring_timer.cancel()
        owner = self.voice.driver_of(leg.owner)
        match leg.kind:
            case LegKind.INVITE:
                flow = InviteeFlow(leg.room, leg.inviter, leg.title)
                info = self.voice.calls().get(call)
                self.voice.new_driver(call, flow).feed(
                    ev.CallAnswered(call, info.dialled if info else "", "", self.voice.ivr.clock()))
                if owner is not None:
                    owner.feed(ev.DialOutResult(call, ev.DialOutcome.ANSWERED))
            case LegKind.THREEWAY:
                if owner is None:
                    self.voice.hangup(call, cause="inviter gone")
                else:
                    owner.feed(ev.DialOutResult(call, ev.DialOutcome.ANSWERED))
            case LegKind.OPERATOR:
                if leg.owner not in self.voice.calls():
                    self.voice.hangup(call, cause="caller gone")
                    return
                room = f"op-{leg.owner}"
                self.voice.join_room(leg.owner, room, Role.PARTICIPANT, False, 2,
                                     kind=ConferenceKind.ADHOC)
                self.voice.join_room(call, room, Role.OPERATOR, False, 2, kind=ConferenceKind.ADHOC)
                if owner is not None:
                    owner.feed(ev.OperatorResult(True))
            case LegKind.REFER:
                self._join_referred(leg, call)

    def _join_referred(self, leg: Leg, call: str) -> None:
        room = self.voice.room_of(leg.owner)
        if room is None:    # the referrer hung up or left meanwhile
            self.voice.hangup(call, cause="referrer gone")
            return
        result = self.voice.join_room(call, room, Role.PARTICIPANT, False, None)
        if result.outcome is not ev.JoinOutcome.JOINED:
            self.voice.hangup(call, 486, cause=f"room {result.outcome.value}")

    def bridge_invitee(self, call: str, room: str) -> None:
        # a 3PTY callee may reach the ad-hoc room before its host (whose JoinRoom waits for the
        # ringing prompt): the room's limit is set by whoever comes first, so both must carry it
        leg = self.legs.get(call)
        limit = self.voice.ivr.threeway_parties if leg is not None \
            and leg.kind is LegKind.THREEWAY else None
        result = self.voice.join_room(call, room, Role.PARTICIPANT, False, limit)
        if result.outcome is not ev.JoinOutcome.JOINED:
            self.voice.hangup(call, cause=f"room {result.outcome.value}")

    def notify_inviter(self, driver, outcome: ev.DialOutcome) -> None:
        leg = self.legs.get(driver.call)
        owner = self.voice.driver_of(leg.owner) if leg is not None else None
        if owner is not None:
            owner.feed_soon(ev.DialOutResult(driver.call, outcome))

    # ---- hang-ups ------------------------------------------------------------------------------

    def ended(self, call: str, info, status: int) -> None:
        leg = self.legs.pop(call, None)
        if leg is not None:
            if leg.ring_timer is not None:
                leg.ring_timer.cancel()
            owner = self.voice.driver_of(leg.owner)
            if not leg.answered and owner is not None:
                if leg.kind is LegKind.OPERATOR:
                    owner.feed(ev.OperatorResult(False))
                elif leg.kind in (LegKind.INVITE, LegKind.THREEWAY):
                    owner.feed(ev.DialOutResult(call, outcome_of(status)))
            elif leg.answered and leg.kind is LegKind.OPERATOR:
                self.voice.hangup(leg.owner, 200, cause="operator hung up")
        for other, leg in list(self.legs.items()):
            if leg.owner == call and leg.kind is LegKind.OPERATOR:
                self.voice.hangup(other, 200, cause="caller hung up")
            elif leg.owner == call and not leg.answered:   # still ringing: nobody to join now
                self.voice.hangup(other, cause="inviter gone")
