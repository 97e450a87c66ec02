"""What each event from the SIP adapter's owner thread does to the voice service (asyncio wiring).

Owns `CallEvents`, the part of `bot.service.voice.VoiceService` that takes the adapter's events
(posted to the loop with `call_soon_threadsafe`, one exception barrier per event): an offered
call is answered or refused (no `[[dialin]]` entry: 404; a direct-access room full: 486), an
answered one enters the holding room and gets its `CallFlow` (or joins its direct-access room
without the IVR), a re-INVITE lays the call's routes again, DTMF goes to the call's driver,
levels to the talk detector, bridge failures to `bot.service.bridgewatch`, and an ended call
leaves everything (driver, owner, recorder, name files, switchboard, call record). `CallInfo`
is what the service knows of each call. Mixed into `VoiceService` (like the parts of
`bot.store`): it uses the service's state and must not be used alone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.conference.mixer import Connect, Role
from bot.config.settings import Route, UnknownNumber
from bot.sip.events import (AddPlayer, Answer, ApplyRoutes, BridgeReconciled, CallConfirmed,
                           CallEnded, CallMediaChanged, CallMediaReady, CallOffered, CallRinging,
                           CommandFailed, DtmfReceived, Hangup, LevelsSampled, Reconcile,
                           RecorderStopped, RoutesFailed, SipEvent, StartRecorder,
                           TransferRequested)
from ivr import events as ev
from ivr.flow import CallFlow
from ivr.routing import Entry, route_call, user_part

log = logging.getLogger("confbot.voice")

BUSY, NOT_FOUND = 486, 404


@dataclass(frozen=True, slots=True)
class CallInfo:
    call: str
    dialled: str
    caller: str
    room: str | None       # without the IVR: the direct-access room it was answered for
    outgoing: bool = False


class CallEvents:
    """The SIP-event half of `VoiceService` (see the module doc)."""

    # ---- events from the owner thread -----------------------------------------------------

    def _post_threadsafe(self, event: SipEvent) -> None:
        self._loop.call_soon_threadsafe(self._on_event, event)

    def _on_event(self, event: SipEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:   # an exception barrier per event: one call's bug ends that call
            log.exception("handling %s", event)
            call = getattr(event, "call", None)
            if call is not None:
                self.hangup(call, 500, cause="error")
        self._changed.set()

    def _dispatch(self, event: SipEvent) -> None:
        if not isinstance(event, LevelsSampled):
            self.events.append(event)
        if self._stack is None and not isinstance(event, CallEnded):
            # stopping: the stack hangs up every call; only the ends still count (call records),
            # nothing may start (a call offered or answered meanwhile is not taken on)
            log.debug("stopping: %s ignored", event)
            return
        match event:
            case CallOffered(call, dialled, caller):
                self._offered(call, dialled, caller)
            case CallMediaReady(call):
                self._media_ready(call)
            case CallMediaChanged(call):
                self._relay(call)
            case CallRinging() | CallConfirmed():
                pass
            case DtmfReceived(call, digit):
                driver = self.drivers.get(call)
                if driver is not None:
                    driver.feed(ev.DigitPressed(digit, self._now()))
            case CallEnded(call, status, reason):
                self._ended(call, status, reason)
            case TransferRequested(call, new_call, target):
                self._calls[new_call] = CallInfo(new_call, user_part(target), target, None,
                                                 outgoing=True)
                if self.ivr is None:      # the bare voice path has no switchboard to join it
                    self.hangup(new_call)
                else:
                    at = self._now()
                    self._record(lambda s: s.call_started(new_call, "out", user_part(target),
                                                          "", at))
                    self.board.referred(call, new_call, target)
            case RecorderStopped(port, path):
                self.recorders.stopped(port, path)
            case LevelsSampled(at_ms, calls, levels):
                seats = self.members.conf.seat_of
                sample = {c: lv for c, lv in zip(calls, levels) if seats(c) is not None}
                self._fan_out_all(self.talk.feed_all(sample, at_ms))
                return
            case CommandFailed(StartRecorder(call=call)):
                self.recorders.failed(call)
            case CommandFailed(AddPlayer(port=source)):   # e.g. the bridge is full: the core
                self.stop_source(source)                    # forgets the player too
            case RoutesFailed() | BridgeReconciled() | CommandFailed(ApplyRoutes() | Reconcile()):
                self.bridge.on_event(event)                 # reconcile, count, log
            case CommandFailed():
                pass
        self._fan_out(event)

    def _offered(self, call: str, dialled: str, caller: str) -> None:
        log.info("%s: incoming from %s to %r", call, caller, dialled)
        if self.ivr is not None:
            self._calls[call] = CallInfo(call, dialled, caller, None)
            if (self.settings.sip.unknown_number is UnknownNumber.REJECT
                    and route_call(dialled, self.settings.dialin).entry is Entry.UNKNOWN):
                log.info("%s dialled %r: no [[dialin]] entry, refused (404)", call, dialled)
                self._causes[call] = "unknown number"
                self._stack.submit(Hangup(call, NOT_FOUND))   # before any answer: no connect
                return
            self._stack.submit(Answer(call))
            at = self._now()
            self._record(lambda s: s.call_started(call, "in", dialled, caller, at))
            return
        entry = self.settings.dialin_by_user(dialled)
        if entry is None or entry.route is not Route.DIRECT or entry.room is None:
            log.info("%s dialled %r: no direct-access route", call, dialled)
            self._calls[call] = CallInfo(call, dialled, caller, None)
            self._stack.submit(Hangup(call, NOT_FOUND))
            return
        room = entry.room
        rs = self.settings.room(room)
        limit = rs.max_participants if rs is not None else self.settings.capacity.room_max
        taken = sum(1 for c in self._calls.values() if c.room == room)
        if taken >= limit:
            log.info("%s for room %r refused: full (%d/%d)", call, room, taken, limit)
            self._calls[call] = CallInfo(call, dialled, caller, None)
            self._stack.submit(Hangup(call, BUSY))
            return
        self._calls[call] = CallInfo(call, dialled, caller, room)
        self._stack.submit(Answer(call))

    def _media_ready(self, call: str) -> None:
        info = self._calls.get(call)
        if info is None or self._is_member(call):
            return
        self.members.apply(self.members.conf.arrive(call))     # the holding room first
        if self.ivr is None:
            if info.room is not None:
                self.members.join(call, info.room, Role.PARTICIPANT, False, None)
            return
        if info.outgoing:
            self.board.answered(call)
            return
        flow = CallFlow(self.flow_config, self.pin_guard, self.dial_guard)
        self.new_driver(call, flow).feed(ev.CallAnswered(call, info.dialled, info.caller,
                                                         self._now()))

    def _relay(self, call: str) -> None:
        """A re-INVITE gave the call a fresh bridge port: lay every route touching it again
        (connecting an existing route is a no-op in pjmedia, so this is safe when the port
        survived)."""
        if self._is_member(call):
            self._execute([Connect(r.src, r.dst, r.level) for r in self.mixer.routes_of(call)])

    def _ended(self, call: str, status: int, reason: str) -> None:
        cause = self._causes.pop(call, None)
        if cause is not None:
            log.info("%s: ended by confbot: %s (%d %s)", call, cause, status, reason)
        else:
            cause = f"remote hangup ({status} {reason})" if 200 <= status < 300 \
                else f"{status} {reason}"
            log.info("%s: ended: %s", call, cause)
        driver = self.drivers.pop(call, None)
        room = self.room_of(call) or (getattr(driver.flow, "room", None) if driver else None)
        if driver is not None:
            driver.ended(cause)    # its flow still sees the call (LeaveRoom)
        info = self._calls.pop(call, None)
        if self._is_member(call):
            self.members.gone(call)
        self.stop_recording(call)
        if driver is not None and self.names is not None:
            self.names.call_ended(driver.recordings, room)
            self.announcer.room_maybe_idle(room)
        if info is not None and self.ivr is not None:
            self.board.ended(call, info, status)
            at = self._now()
            self._record(lambda s: s.call_ended(call, at, cause))
        self._fan_out_all(self.talk.forget(call))
