"""The invited person's side of a dial-out (pure): `InviteeFlow.handle(event) -> [action]`.

Owns the small state machine run on a call the bot placed for an invite (I6): greet with who
invites to which conference, ask 1 (join) / 2 (decline), no answer = decline; tell the inviter
through `NotifyInviter`. Must not perform I/O or know the inviter's flow: the driver relays
`NotifyInviter(outcome)` to it as `DialOutResult(this call's id, outcome)`.

    RINGING ─CallAnswered─▶ CHOOSING ─1─▶ JOINING ─JoinResult─▶ IN_ROOM
                              ├─2 / CHOICE timer / 3 wrong keys─▶ CLOSING
    any live state ─CallEnded─▶ ENDED        (illegal events raise IllegalEvent, nothing changes)
"""
from __future__ import annotations

from collections.abc import Callable

import enum

from bot.conference.rooms import Role
from ivr.events import (CallAnswered, CallEnded, CancelTimer, CollectDigits, DialOutcome, DigitPressed,
                        Hangup, JoinOutcome, Level, Log, JoinResult, JoinRoom, LeaveRoom, NotifyInviter, Play,
                        PromptFinished, PromptId, SpeechRecognized, StartTimer, StopPlayback, Timer,
                        TimerFired, params)
from ivr.steps import IllegalEvent

P = PromptId


class InviteeState(enum.Enum):
    RINGING = "ringing"
    CHOOSING = "choosing"
    JOINING = "joining"
    IN_ROOM = "in_room"
    CLOSING = "closing"
    ENDED = "ended"


I = InviteeState
_LIVE = (I.CHOOSING, I.JOINING, I.IN_ROOM, I.CLOSING)


class InviteeFlow:
    def __init__(self, room: str, inviter: str, title: str, *, choice_timeout_ms: int = 15000,
                 wrong_keys: int = 3) -> None:
        self.room, self.inviter, self.title = room, inviter, title
        self.choice_timeout_ms, self.wrong_keys = choice_timeout_ms, wrong_keys
        self.state = I.RINGING
        self.outcome: DialOutcome | None = None
        self._ask_token = 0
        self._tokens = 0
        self._wrong = 0
        self._timer_running = False
        self._playing = False
        self._in_room = False

    def handle(self, event) -> list:
        if isinstance(event, SpeechRecognized):
            return [a for key in (event.keyword or "") for a in self.handle(DigitPressed(key))]
        handler = TRANSITIONS.get((self.state, type(event)))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} is illegal in state {self.state.name}")
        try:
            return handler(self, event)
        except Exception as exc:   # the barrier: end this call, tell the inviter it did not work out
            log = Log(Level.ERROR, f"invitee flow: {type(exc).__name__}: {exc} in {self.state.name}")
            return [log] + self._close(DialOutcome.FAILED, "error", [Play(P.ERROR_APOLOGY, token=self._token())])

    def _token(self) -> int:
        self._tokens += 1
        return self._tokens

    def _ask(self, lead: list) -> list:
        self._ask_token = self._token()
        self._playing = True
        return lead + [Play(P.INVITEE_CHOICE, barge_in=True, token=self._ask_token), CollectDigits(1)]

    def _answered(self, ev: CallAnswered) -> list:
        self.state = I.CHOOSING
        greeting = Play(P.INVITEE_GREETING, params(inviter=self.inviter, title=self.title),
                        barge_in=True, token=self._token())
        return self._ask([greeting])

    def _prompt_finished(self, ev: PromptFinished) -> list:
        if ev.token != self._ask_token or self.state is not I.CHOOSING:
            return []
        self._playing, self._timer_running = False, True
        return [StartTimer(Timer.CHOICE, self.choice_timeout_ms)]

    def _key(self, ev: DigitPressed) -> list:
        out: list = [StopPlayback()] if self._playing else []
        self._playing = False
        if ev.digit == "1":
            self.state, self.outcome = I.JOINING, DialOutcome.ACCEPTED
            return out + self._cancel() + [JoinRoom(self.room, Role.PARTICIPANT)]
        if ev.digit == "2":
            return out + self._close(DialOutcome.DECLINED, "declined", [])
        self._wrong += 1
        if self._wrong >= self.wrong_keys:
            return out + self._close(DialOutcome.DECLINED, "no valid choice", [])
        return out + self._cancel() + self._ask([Play(P.INVALID_INPUT, barge_in=True, token=self._token())])

    def _timer(self, ev: TimerFired) -> list:
        if ev.name is not Timer.CHOICE or not self._timer_running or self.state is not I.CHOOSING:
            return []
        self._timer_running = False
        return self._close(DialOutcome.DECLINED, "no answer", [])

    def _joined(self, ev: JoinResult) -> list:
        if ev.outcome is not JoinOutcome.JOINED:
            full = ev.outcome is JoinOutcome.FULL
            return self._close(DialOutcome.FAILED, "room full" if full else "conference locked",
                               [Play(P.ROOM_FULL if full else P.LOCKED_OUT, token=self._token())])
        self.state, self._in_room = I.IN_ROOM, True
        return [NotifyInviter(DialOutcome.ACCEPTED)]

    def _ignore(self, ev) -> list:
        return []

    def _cancel(self) -> list:
        was, self._timer_running = self._timer_running, False
        return [CancelTimer(Timer.CHOICE)] if was else []

    def _close(self, outcome: DialOutcome, reason: str, said: list) -> list:
        out = self._cancel()
        if self._in_room:
            self._in_room = False
            out.append(LeaveRoom(self.room))
        self.outcome, self.state = outcome, I.CLOSING
        return out + [NotifyInviter(outcome)] + said + [Play(P.GOODBYE, token=self._token()), Hangup(reason)]

    def _ended(self, ev: CallEnded) -> list:
        out = self._cancel()
        if self._in_room:
            out.append(LeaveRoom(self.room))
        # Before the answer the driver reports BUSY/NO_ANSWER/FAILED from the SIP status itself.
        if self.state is I.CHOOSING:
            out.append(NotifyInviter(DialOutcome.DECLINED))
        elif self.state is I.JOINING:
            out.append(NotifyInviter(DialOutcome.FAILED))
        self.state, self._in_room = I.ENDED, False
        return out


# (state, event type) → the handler; after the class, so every entry is a real function
V = InviteeFlow
TRANSITIONS: dict[tuple[InviteeState, type], Callable[[InviteeFlow, object], list]] = {
    (I.RINGING, CallAnswered): V._answered,
    (I.RINGING, CallEnded): V._ended,
    **{(s, DigitPressed): V._key if s is I.CHOOSING else V._ignore for s in _LIVE},
    **{(s, PromptFinished): V._prompt_finished for s in _LIVE},
    **{(s, TimerFired): V._timer for s in _LIVE},
    **{(s, CallEnded): V._ended for s in _LIVE},
    (I.JOINING, JoinResult): V._joined,
}
