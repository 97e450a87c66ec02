"""The caller's journey as a sans-I/O state machine (pure): `CallFlow.handle(event) -> [action]`.

Owns `State`, the one transition table `TRANSITIONS` and `CallFlow` (entry, menu, PIN entry,
naming, joining, leaving); what a flow is configured with (`FlowConfig`, the main menu's keys) is
`ivr.flowconfig`, re-exported here. In-conference commands, invites and 3PTY live in
`ivr.conference` (a mixin whose handlers this table names). Must not perform I/O, read clocks or
config files, or import adapters: the driver executes the returned actions and feeds the answers
back as events (see the contract in `ivr.events`).

Theory of operation (after h11's `_state.py`):

    START ─CallAnswered─▶ (routing.Entry)
      PIN ........ PIN_ENTRY ─#─▶ CHECKING_PIN ─PinChecked ok─▶ [NAME_RECORDING ⇄ NAME_CONFIRM]
      DIRECT ..... [NAME_RECORDING ⇄ NAME_CONFIRM] ─▶ JOINING ─JoinResult─▶ IN_CONFERENCE
      MENU ....... MENU ─1─▶ PIN_ENTRY, ─2─▶ THREEWAY_NUMBER, ─9─▶ LANGUAGE, ─0─▶ operator
      THREEWAY ... THREEWAY_NUMBER ─#─▶ THREEWAY_DIALING ─ANSWERED─▶ JOINING (ad-hoc room)
      OPERATOR / UNKNOWN / wrong PIN ×3 / no PIN ─▶ TRANSFERRING ─OperatorResult─▶ CLOSING
    IN_CONFERENCE ⇄ INVITE_NUMBER (invite key, number, #: DialOut; the call stays in its room)
    IN_CONFERENCE ─*2 (moderators)─▶ NAME_WHO ─#─▶ NAME_FOR_RECORDING ⇄ NAME_FOR_CONFIRM ─1─▶
                  AssignName, back IN_CONFERENCE (NameAssigned: "saved" / "no such participant")
    any live state ─CallEnded─▶ ENDED (cleanup: leave the room, cancel timers)
    any live state ─our Hangup─▶ CLOSING ─CallEnded─▶ ENDED

Rule 1: an event is legal in a state only if `TRANSITIONS` lists the pair. Caller input
(`DigitPressed`, `SpeechRecognized`) and housekeeping (`PromptFinished`, `TimerFired`,
`CallEnded`) are legal in every live state — the caller may press keys at any time and timers
race with cancellation — and are ignored where they mean nothing. Answers (`PinChecked`,
`RecordingDone`, `JoinResult`, `RoomCount`, `DialOutResult`, `OperatorResult`) are legal only
while their question is outstanding. An illegal event raises `IllegalEvent` and changes nothing:
it is a driver bug, and the driver decides what to do.
Rule 2 (exception barrier, STYLE lesson 9): any *other* exception inside a handler is our own
bug; `handle` catches it, returns [Log, (LeaveRoom,) Play(ERROR_APOLOGY), Hangup("error")] and
moves to CLOSING, so one call's bug ends that call politely and never the service.
Rule 3: a key pressed while a barge-in prompt is queued stops the playback (StopPlayback first)
and then counts; while only non-barge-in audio is queued, keys are dropped.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.booking.domain import BookingStatus
from bot.conference.rooms import Role
from ivr.conference import ConferenceSteps
from ivr.events import (AnnounceToRoom, CallAnswered, CallEnded, CheckPin, Closing,
                        ConferenceClosed, ConferenceNotice, DialOutResult, DigitPressed,
                        EndRecording, JoinOutcome, JoinResult, JoinRoom, LeaveRoom, Level, Log,
                        AskAnswered, LoginChecked, Moved, MuteChanged, Removed, RollCall, NameAssigned, NameChanged, OperatorResult, PinChecked, Play,
                        PromptFinished, PromptId, RecordCdr, RecordingDone, RecordName, RoomCount,
                        SetLanguage, SpeechRecognized, TimerFired, TransferToOperator, params)
from ivr.flowconfig import MAIN_MENU_KEYS, FlowConfig, MenuChoice
from ivr.guard import Admission, DialOutGuard, PinGuard
from ivr.keypad import KeyMatcher
from ivr.routing import Destination, Entry, route_call
from ivr.steps import Announce, IllegalEvent, Naming, State, StepsBase

P = PromptId
S = State
_LIVE = tuple(s for s in State if s not in (S.START, S.ENDED))


class CallFlow(ConferenceSteps, StepsBase):
    def __init__(self, config: FlowConfig, pin_guard: PinGuard | None = None,
                 dial_guard: DialOutGuard | None = None) -> None:
        super().__init__()
        self.config = config
        self.pin_guard = pin_guard if pin_guard is not None else PinGuard()
        self.dial_guard = dial_guard if dial_guard is not None else DialOutGuard()
        self.matcher = KeyMatcher(config.keypad)
        self.destination: Destination | None = None
        self.booking = None                  # bot.booking.domain.Booking once the PIN was right
        self.role = Role.PARTICIPANT
        self.wrong_pins = 0
        self.language_chosen = False         # the caller picked one in the menu: it stays
        self.name_tries = 0
        self.name_candidate: str | None = None
        self.name_path: str | None = None

    # ---- the engine ---------------------------------------------------------------------

    def handle(self, event) -> list:
        """Feed one event; get the actions to execute. See Rules 1-3 in the module docstring."""
        if isinstance(event, SpeechRecognized):
            self._check_legal(DigitPressed("0"))
            out: list = []
            for key in event.keyword or "":
                out += self.handle(DigitPressed(key))
            return out
        handler = self._check_legal(event)
        out = []
        if isinstance(event, DigitPressed):
            if event.at is not None:
                self.now = event.at
            if self.playing and not any(self.playing.values()):
                return []    # Rule 3: only non-barge-in audio is playing; the key is dropped
            out = self._stop_playback()
        try:
            out += handler(self, event)
        except IllegalEvent:
            raise
        except Exception as exc:  # the barrier: our bug, not the caller's
            return self._barrier(exc)
        return out

    def _check_legal(self, event) -> Callable[[CallFlow, object], list]:
        handler = TRANSITIONS.get((self.state, type(event)))
        if handler is None:
            raise IllegalEvent(f"{type(event).__name__} is illegal in state {self.state.name}")
        return handler

    def _barrier(self, exc: Exception) -> list:
        out: list = [Log(Level.ERROR, f"call {self.call_id}: {type(exc).__name__}: {exc} "
                                      f"in state {self.state.name}")]
        out += self._cleanup()
        out += [Play(P.ERROR_APOLOGY, token=self._token())]
        return out + self._hangup("error")

    # ---- entry ---------------------------------------------------------------------------

    def _answered(self, ev: CallAnswered) -> list:
        self.call_id, self.caller, self.now = ev.call_id, ev.caller, ev.at
        dest = self.destination = route_call(ev.dialled, self.config.dialins)
        out: list = [SetLanguage(dest.language or self.config.default_language)]
        if dest.entry is Entry.UNKNOWN:
            out += [Log(Level.INFO, f"call {ev.call_id}: unknown number {dest.dialled}"),
                    self._play(P.UNKNOWN_NUMBER)]
            return out + self._to_operator()
        if dest.entry is Entry.OPERATOR:
            return out + self._to_operator()
        if dest.entry is Entry.THREEWAY:
            return out + self._threeway_start()
        out.append(self._play(P.WELCOME))
        if dest.entry is Entry.MENU:
            return out + self._ask(S.MENU, [P.MAIN_MENU], 1)
        if dest.entry is Entry.DIRECT:
            self.room = dest.room
            out.append(self._cdr(None))
            return out + self._after_admission()
        return out + self._pin_start()

    def _menu_key(self, ev: DigitPressed) -> list:
        choice = MAIN_MENU_KEYS.get(ev.digit)
        if choice is None:
            return self._invalid()
        if choice is MenuChoice.PIN:
            return self._pin_start()
        if choice is MenuChoice.THREEWAY:
            return self._threeway_start()
        if choice is MenuChoice.LANGUAGE:
            return self._ask(S.LANGUAGE, [P.LANGUAGE_MENU], 1)
        return self._cancel_input() + self._to_operator()

    def _language_key(self, ev: DigitPressed) -> list:
        langs = self.config.languages
        if not ev.digit.isdigit() or not 1 <= int(ev.digit) <= len(langs):
            return self._invalid()
        self.language_chosen = True
        return [SetLanguage(langs[int(ev.digit) - 1])] + self._ask(S.MENU, [P.MAIN_MENU], 1)

    def _to_operator(self) -> list:
        uri = self.config.operator_uri
        if uri is None:
            return [self._play(P.OPERATOR_UNAVAILABLE), self._play(P.GOODBYE)] + self._hangup("no operator")
        self.state = S.TRANSFERRING
        return [self._play(P.CONNECTING_OPERATOR), TransferToOperator(uri)]

    def _operator_result(self, ev: OperatorResult) -> list:
        if ev.connected:
            self.state = S.CLOSING   # the operator has the call now; we wait for CallEnded
            return [Log(Level.INFO, f"call {self.call_id}: handed to the operator")]
        return [self._play(P.OPERATOR_UNAVAILABLE), self._play(P.GOODBYE)] + self._hangup("operator unavailable")

    # ---- PIN -----------------------------------------------------------------------------

    def _pin_start(self) -> list:
        if self.pin_guard.admit(self.caller, self.now) is not Admission.ALLOWED:
            return self._locked(None)
        return self._ask(S.PIN_ENTRY, [P.ENTER_PIN], self.config.pin_max_digits)

    def _pin_key(self, ev: DigitPressed) -> list:
        if ev.digit == "*":
            return self._ask(S.PIN_ENTRY, [P.ENTER_PIN], self.config.pin_max_digits)
        if ev.digit != "#":
            self.digits += ev.digit if ev.digit.isdigit() else ""
            return self._restart_input()
        pin, self.digits = self.digits, ""
        if not pin:   # "#" alone: I have no PIN → the operator helps (I2)
            return self._cancel_input() + self._to_operator()
        if len(pin) > self.config.pin_max_digits:
            return self._cancel_input() + self._wrong_pin()
        if self.pin_guard.admit(self.caller, self.now) is not Admission.ALLOWED:
            return self._cancel_input() + self._locked(None)
        self.state = S.CHECKING_PIN
        return self._cancel_input() + [CheckPin(pin)]

    def _pin_checked(self, ev: PinChecked) -> list:
        self.now = ev.at
        b = ev.booking
        if b is None:
            return self._wrong_pin()
        # a right PIN of a booking: from here on its language (unless the caller chose one)
        out = [] if self.language_chosen or b.language not in self.config.languages \
            else [SetLanguage(b.language)]
        if b.status is BookingStatus.CANCELLED:     # a right PIN: no lockout strike
            return out + [Log(Level.INFO, f"call {self.call_id}: PIN of cancelled {b.reference}"),
                          self._play(P.CONFERENCE_CANCELLED), self._play(P.GOODBYE)] \
                + self._hangup("conference cancelled")
        early = timedelta(minutes=self.config.early_join_minutes)
        if ev.at < b.start - early:
            start = b.start.astimezone(self.config.timezone)   # said in the service's zone
            return out + [self._play(P.CONFERENCE_NOT_STARTED, start=start),
                          self._play(P.GOODBYE)] + self._hangup("not started")
        if ev.at >= b.end:
            return out + [self._play(P.CONFERENCE_ENDED), self._play(P.GOODBYE)] \
                + self._hangup("ended")
        self.pin_guard.succeeded(self.caller, ev.at)
        self.booking, self.room = b, b.reference
        self.role = Role.MODERATOR if ev.is_moderator else Role.PARTICIPANT
        return out + [self._cdr(b.reference)] + self._after_admission()

    def _wrong_pin(self) -> list:
        self.wrong_pins += 1
        said = Log(Level.INFO, f"call {self.call_id}: wrong PIN from "      # never the digits
                               f"{self.caller or 'anonymous'} ({self.wrong_pins}/{self.config.pin_tries})")
        lock = self.pin_guard.failed(self.caller, self.now)
        if lock is not None:
            return [said] + self._locked(lock)
        left = self.config.pin_tries - self.wrong_pins
        if left > 0:
            return self._ask(S.PIN_ENTRY, [(P.PIN_WRONG, params(tries_left=left)), P.ENTER_PIN],
                             self.config.pin_max_digits) + [said]
        return [said, Log(Level.INFO, f"call {self.call_id}: {self.wrong_pins} wrong PINs, "
                                      "to the operator")] + self._to_operator()

    def _locked(self, lock) -> list:
        log = Log(Level.WARNING, lock.message if lock is not None
                  else f"call {self.call_id}: caller {self.caller or 'anonymous'} refused, PIN entry locked")
        return [log, self._play(P.PIN_LOCKED)] + self._hangup("pin locked")

    def _cdr(self, reference: str | None) -> RecordCdr:
        d = self.destination
        return RecordCdr(self.call_id, reference, d.dialled, self.caller, d.tariff, self.role)

    # ---- naming --------------------------------------------------------------------------

    def _after_admission(self) -> list:
        # a name is asked for only where the room will announce it (a tone-only or silent room
        # would make the caller wait for nothing)
        if self.config.naming is Naming.RECORD \
                and self.config.announce_for(self.room) is Announce.NAME:
            return self._record_name()
        return self._join()

    def _record_name(self) -> list:
        self.name_tries += 1
        self.state = S.NAME_RECORDING
        return [self._play(P.SAY_NAME), self._play(P.BEEP), RecordName(self.config.name_max_ms)]

    def _name_changed(self, ev: NameChanged) -> list:
        self.name_path = ev.path        # a moderator renamed this caller (bot.conference.owner)
        return []

    def _recording_key(self, ev: DigitPressed) -> list:
        return [EndRecording()] if ev.digit == "#" else []

    def _recorded(self, ev: RecordingDone) -> list:
        if ev.path is None or ev.duration_ms < self.config.name_min_ms:
            if self.name_tries < self.config.name_tries:
                return [self._play(P.INVALID_INPUT)] + self._record_name()
            return [Log(Level.INFO, f"call {self.call_id}: no usable name recording")] + self._join()
        self.name_candidate = ev.path
        return self._confirm_recording(ev.path, S.NAME_CONFIRM)

    def _confirm_key(self, ev: DigitPressed) -> list:
        if ev.digit == "1":
            self.name_path = self.name_candidate
            return self._cancel_input() + self._join()
        if ev.digit == "2":
            if self.name_tries < self.config.name_tries:
                return self._cancel_input() + self._record_name()
            return self._cancel_input() + self._join()
        return self._invalid()

    # ---- joining and leaving -------------------------------------------------------------

    def _join(self) -> list:
        self.state = S.JOINING
        return [JoinRoom(self.room, self.role, muted=False, name_path=self.name_path)]

    def _joined(self, ev: JoinResult) -> list:
        if ev.outcome is not JoinOutcome.JOINED:
            full = ev.outcome is JoinOutcome.FULL
            return [self._play(P.ROOM_FULL if full else P.LOCKED_OUT), self._play(P.GOODBYE)] \
                + self._hangup("room full" if full else "conference locked")
        self.joined, self.state = True, S.IN_CONFERENCE
        if self.threeway:
            return []
        # barge-in: a keypad command during the welcome interrupts it instead of being lost
        out = [self._play(P.JOINED_AS_MODERATOR if self.role is Role.MODERATOR else P.JOINED_AS_PARTICIPANT,
                          barge_in=True)]
        out.append(self._play(P.YOU_ARE_ALONE, barge_in=True) if ev.count <= 1
                   else self._play(P.YOU_ARE_NTH, barge_in=True, n=ev.seat or ev.count))
        return out + self._announce(P.JOIN_ANNOUNCE)

    def _announce(self, prompt: PromptId) -> list:
        mode = self.config.announce_for(self.room)
        if mode is Announce.OFF:
            return []
        if mode is Announce.NAME and self.name_path is not None:
            return [AnnounceToRoom(self.room, prompt, params(name=self.name_path))]
        return [AnnounceToRoom(self.room, P.BEEP)]

    # ---- the service ends or extends the conference (bot.conference.endwatch) ---------------------------

    def _notice(self, ev: ConferenceNotice) -> list:
        if not self.joined or self.ended:
            return []       # not in the room (yet): the room's end concerns it once it is
        prompt = P.CONFERENCE_EXTENDED if ev.extended else P.CONFERENCE_ENDS_SOON
        return [self._play(prompt, minutes=ev.minutes)]

    def _closed(self, ev: ConferenceClosed) -> list:
        if self.ended:
            return []
        # everyone goes: no "X has left" for each of them to the ones still leaving
        joining = self.state is S.JOINING          # already in the room; its JoinResult is due
        out = self._stop_playback() + self._cleanup(announce=False)
        if joining:
            out.append(LeaveRoom(self.room))
        said = {Closing.CANCELLED: P.CONFERENCE_CANCELLED,
                Closing.BY_MODERATOR: P.ENDED_BY_MODERATOR}.get(ev.why, P.CONFERENCE_CLOSING)
        out += [Log(Level.INFO, f"call {self.call_id}: {ev.why.value}"),
                self._play(said), self._play(P.GOODBYE)]
        return out + self._hangup(ev.why.value)

    def _ended(self, ev: CallEnded) -> list:
        out = self._cleanup()
        self.state = S.ENDED
        return out + [Log(Level.INFO, f"call {self.call_id} ended: {ev.reason}")]

    # ---- input timeouts and invalid answers ----------------------------------------------

    def _give_up(self) -> list:
        """After `input_retries` timeouts or wrong answers in the current question."""
        if self.state in (S.PIN_ENTRY, S.MENU, S.LANGUAGE):
            return self._to_operator()
        if self.state is S.NAME_CONFIRM:
            self.name_path = self.name_candidate
            return self._join()
        if self.state in (S.INVITE_NUMBER, S.NAME_WHO, S.NAME_FOR_CONFIRM, S.SEATS, S.END_CONFIRM,
                          S.LOGIN_PIN):
            self.state = S.IN_CONFERENCE    # a side question left unanswered: back in the room
            return []
        return [self._play(P.GOODBYE)] + self._hangup("no input")


# ---- the one transition table ------------------------------------------------------------------
# (state, event type) → the handler (a function of the flow); handlers set the next state.
# Written after the class so that every entry is a real function: a typo fails the import.
F = CallFlow
_KEYS = {S.MENU: F._menu_key, S.LANGUAGE: F._language_key, S.PIN_ENTRY: F._pin_key,
         S.NAME_RECORDING: F._recording_key, S.NAME_CONFIRM: F._confirm_key,
         S.IN_CONFERENCE: F._conference_key,
         S.INVITE_NUMBER: F._number_key, S.THREEWAY_NUMBER: F._number_key,
         S.NAME_WHO: F._who_key, S.NAME_FOR_RECORDING: F._recording_key,
         S.NAME_FOR_CONFIRM: F._confirm_for_key, S.SEATS: F._seats_key,
         S.END_CONFIRM: F._end_confirm_key, S.LOGIN_PIN: F._login_key}
# in a conference, with or without a side question (an invitation's number, naming someone)
_IN_ROOM = (S.IN_CONFERENCE, S.INVITE_NUMBER, S.NAME_WHO, S.NAME_FOR_RECORDING,
            S.NAME_FOR_CONFIRM, S.SEATS, S.END_CONFIRM, S.LOGIN_PIN)

TRANSITIONS: dict[tuple[State, type], Callable[[CallFlow, object], list]] = {
    (S.START, CallAnswered): F._answered,
    (S.START, CallEnded): F._ended,
    **{(s, DigitPressed): _KEYS.get(s, F._ignore) for s in _LIVE},
    **{(s, PromptFinished): F._prompt_finished for s in _LIVE},
    **{(s, TimerFired): F._timer for s in _LIVE},
    **{(s, CallEnded): F._ended for s in _LIVE},
    **{(s, NameChanged): F._name_changed for s in _LIVE},
    **{(s, ConferenceNotice): F._notice for s in _LIVE},
    **{(s, MuteChanged): F._mute_changed for s in _LIVE},
    **{(s, Moved): F._moved for s in _LIVE},
    **{(s, AskAnswered): F._ask_answered for s in _LIVE},
    **{(s, ConferenceClosed): F._closed for s in _LIVE},
    **{(s, Removed): F._removed for s in _LIVE},
    (S.CHECKING_PIN, PinChecked): F._pin_checked,
    (S.NAME_RECORDING, RecordingDone): F._recorded,
    (S.JOINING, JoinResult): F._joined,
    **{(s, RoomCount): F._room_count for s in _IN_ROOM},
    **{(s, DialOutResult): F._dial_result for s in _IN_ROOM},
    **{(s, NameAssigned): F._name_assigned for s in _IN_ROOM},
    **{(s, LoginChecked): F._login_checked for s in _IN_ROOM},
    **{(s, RollCall): F._roll_call for s in _IN_ROOM},
    (S.NAME_FOR_RECORDING, RecordingDone): F._recorded_for,
    (S.THREEWAY_DIALING, DialOutResult): F._dial_result,
    (S.TRANSFERRING, OperatorResult): F._operator_result,
    # answers to questions asked before we hung up (the service closed the conference
    # meanwhile): a race, not a driver bug
    **{(S.CLOSING, t): F._ignore for t in (PinChecked, RecordingDone, JoinResult, RoomCount,
                                           NameAssigned, DialOutResult, OperatorResult,
                                           LoginChecked, RollCall)},
}
