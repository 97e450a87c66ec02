"""The call flow's states and the small steps every part of it shares (pure).

Owns `State`, `IllegalEvent`, `Announce`, `Naming` and `StepsBase`: the per-call bookkeeping
(prompt tokens and what is still playing, running timers, the question being asked and its
retries) and the helpers that emit the matching actions (`_play`, `_ask`, `_invalid`, `_hangup`,
`_cleanup`). Must not decide the journey: `ivr.flow.TRANSITIONS` does, and `ivr.flow` /
`ivr.conference` hold the handlers. No I/O, no clocks.
"""
from __future__ import annotations

import enum
from datetime import datetime

from ivr.events import (CancelTimer, CollectDigits, Hangup, LeaveRoom, Level, Log, Play, PlayFile,
                        PromptFinished, PromptId, StartTimer, StopPlayback, Timer, TimerFired,
                        params)


class IllegalEvent(Exception):
    """The driver fed an event the current state cannot receive. Raised before anything
    changes, so the flow is exactly as it was (unlike a bug inside a handler, which the
    exception barrier turns into an apology and a hangup)."""


class State(enum.Enum):
    START = "start"
    MENU = "menu"
    LANGUAGE = "language"
    PIN_ENTRY = "pin_entry"
    CHECKING_PIN = "checking_pin"
    NAME_RECORDING = "name_recording"
    NAME_CONFIRM = "name_confirm"
    JOINING = "joining"
    IN_CONFERENCE = "in_conference"
    INVITE_NUMBER = "invite_number"
    THREEWAY_NUMBER = "threeway_number"
    THREEWAY_DIALING = "threeway_dialing"
    NAME_WHO = "name_who"                    # a moderator names a participant: which one?
    NAME_FOR_RECORDING = "name_for_recording"
    NAME_FOR_CONFIRM = "name_for_confirm"
    SEATS = "seats"                          # a moderator enters seat / séparée numbers
    END_CONFIRM = "end_confirm"              # a moderator confirms ending the conference
    LOGIN_PIN = "login_pin"                  # a caller enters a personal moderator PIN
    TRANSFERRING = "transferring"
    CLOSING = "closing"      # we hung up or handed the call over; waiting for CallEnded
    ENDED = "ended"          # terminal: every event is illegal


class Announce(enum.Enum):
    """Join/leave announcements of a room (I3)."""
    OFF = "off"
    NAME = "name"            # the recorded name (a tone when the caller gave none)
    TONE = "tone"


class Naming(enum.Enum):
    OFF = "off"
    RECORD = "record"        # SAY_NAME, beep, record, play back, 1 keep / 2 again


PromptSpec = PromptId | tuple[PromptId, tuple]


class StepsBase:
    def __init__(self) -> None:
        self.state = State.START
        self.call_id = ""
        self.caller = ""
        self.now: datetime | None = None
        self.room: str | None = None
        self.joined = False
        self.playing: dict[int, bool] = {}     # token → barge_in, for audio still queued
        self.timers: set[Timer] = set()
        self.digits = ""
        self.question: tuple[State, tuple[PromptSpec, ...], int] | None = None
        self.ask_token: int | None = None
        self.retries = 0
        self._next_token = 0

    @property
    def ended(self) -> bool:
        """True once the flow takes no more caller input (CLOSING or ENDED)."""
        return self.state in (State.CLOSING, State.ENDED)

    # ---- audio ------------------------------------------------------------------------------

    def _token(self, barge_in: bool = False) -> int:
        self._next_token += 1
        self.playing[self._next_token] = barge_in
        return self._next_token

    def _play(self, prompt: PromptId, barge_in: bool = False, **values: object) -> Play:
        return Play(prompt, params(**values), barge_in, self._token(barge_in))

    def _stop_playback(self) -> list:
        if not self.playing:
            return []
        self.playing.clear()
        self.ask_token = None
        return [StopPlayback()]

    def _prompt_finished(self, ev: PromptFinished) -> list:
        self.playing.pop(ev.token, None)
        if ev.token != self.ask_token:
            return []
        self.ask_token = None     # the question has been heard: now the caller has to answer
        return self._start_timer(Timer.INPUT, self.config.input_timeout_ms)

    # ---- timers -----------------------------------------------------------------------------

    def _start_timer(self, name: Timer, ms: int) -> list:
        self.timers.add(name)
        return [StartTimer(name, ms)]

    def _cancel_timer(self, name: Timer) -> list:
        if name not in self.timers:
            return []
        self.timers.discard(name)
        return [CancelTimer(name)]

    def _timer(self, ev: TimerFired) -> list:
        if ev.name not in self.timers:
            return []             # cancelled while the expiry was on its way: not news
        self.timers.discard(ev.name)
        if ev.name is Timer.KEYPAD:
            self.matcher.reset()
            return []
        if ev.name is Timer.INPUT and self.question is not None and self.question[0] is self.state:
            return self._retry(PromptId.TIMEOUT_RETRY)
        return []

    # ---- questions --------------------------------------------------------------------------

    def _ask(self, state: State, prompts, max_digits: int, fresh: bool = True) -> list:
        """Ask a question: play its prompts (all barge-in), declare the input, and start the
        input timer once the last prompt has been heard (see `_prompt_finished`)."""
        out = self._cancel_timer(Timer.INPUT)
        if fresh:
            self.retries = 0
        self.state, self.digits = state, ""
        self.question = (state, tuple(prompts), max_digits)
        for spec in prompts:
            prompt, values = spec if isinstance(spec, tuple) else (spec, ())
            out.append(Play(prompt, values, True, self._token(True)))
        self.ask_token = out[-1].token
        return out + [CollectDigits(max_digits, timeout_ms=self.config.input_timeout_ms)]

    def _confirm_recording(self, path: str, state: State) -> list:
        """Play a recorded name back, then ask: 1 keep, 2 record again (in `state`)."""
        out = [self._play(PromptId.NAME_PLAYBACK), PlayFile(path, token=self._token(barge_in=False))]
        return out + self._ask(state, [PromptId.NAME_CONFIRM], 1)

    def _restart_input(self) -> list:
        return self._start_timer(Timer.INPUT, self.config.input_timeout_ms)

    def _cancel_input(self) -> list:
        self.ask_token = None
        return self._cancel_timer(Timer.INPUT)

    def _invalid(self) -> list:
        return self._retry(PromptId.INVALID_INPUT)

    def _retry(self, why: PromptId | None) -> list:
        """Ask the current question again after `why` (TIMEOUT_RETRY, INVALID_INPUT, or None when
        the caller has just heard the reason), or give up after `input_retries` attempts."""
        self.retries += 1
        if self.retries >= self.config.input_retries or self.question is None:
            return self._cancel_input() + self._give_up()
        state, prompts, max_digits = self.question
        said = [self._play(why, barge_in=True)] if why is not None else []
        return said + self._ask(state, prompts, max_digits, fresh=False)

    def _ignore(self, ev) -> list:
        return []

    # ---- the end ------------------------------------------------------------------------------

    def _cleanup(self, announce: bool = True) -> list:
        out = [CancelTimer(t) for t in sorted(self.timers, key=lambda t: t.value)]
        self.timers.clear()
        self.ask_token = None
        if self.joined:
            self.joined = False
            out.append(LeaveRoom(self.room))
            if announce:
                out += self._announce(PromptId.LEAVE_ANNOUNCE)
        if getattr(self, "dialing", None) is not None:
            out.append(Log(Level.INFO, f"call {self.call_id}: left with a dial-out still pending"))
            self.dialing = None
        return out

    def _hangup(self, reason: str) -> list:
        out = self._cleanup()
        self.state = State.CLOSING
        return out + [Hangup(reason)]
