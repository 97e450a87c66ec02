"""A moderator's keypad commands inside a conference (pure): naming a participant (I3),
séparées, 1:1 consultations and moves (C3), muting, removing, locking, ending and the roll call
(C2), and logging in with a personal PIN.

Only a moderator or the superuser reaches these handlers: `ConferenceSteps._conference_key`
says "only a moderator can do that" to anyone else for every `MODERATOR_ACTIONS` key.

Owns `ModeratorSteps`, the mixin of `ivr.conference.ConferenceSteps` with the handlers
`ivr.conference.KEY_HANDLERS` maps the moderator's `KeyAction`s to and those
`ivr.flow.TRANSITIONS` names for NAME_WHO, NAME_FOR_*, SEATS, END_CONFIRM and LOGIN_PIN. Each command becomes one
`Ask` of a `bot.conference.moderation` operation: the owner of conference state decides
(permissions, seats, the net route change); the flow only says what came of it. Must not
perform I/O and must not keep conference state.
"""
from __future__ import annotations

from bot.conference.moderation import (bring_back_separee, consult_seat, end_conference,
                                       move_seat, mute_participants, mute_seat, remove_seat,
                                       separee_of_seats, toggle_lock)
from bot.conference.rooms import MODERATING, Role
from ivr.events import (Ask, AssignName, CheckLogin, DigitPressed, Level, LoginChecked, Log,
                        NameAssigned, Play, PlayFile, PromptId, QueryRoll, RecordingDone,
                        RecordName, RollCall)
from ivr.guard import Admission
from ivr.keypad import KeyAction
from ivr.steps import IllegalEvent, State

P = PromptId


# the moderator's commands that ask for seat / séparée numbers first, and what they ask
SEAT_QUESTIONS: dict[KeyAction, PromptId] = {
    KeyAction.SEPAREE: P.SEPAREE_WHO, KeyAction.CONSULT: P.CONSULT_WHO,
    KeyAction.BRING_BACK: P.BRING_BACK_WHICH, KeyAction.MUTE_SEAT: P.MUTE_SEAT_WHO,
    KeyAction.REMOVE_SEAT: P.REMOVE_SEAT_WHO, KeyAction.MOVE_SEAT: P.MOVE_SEAT_WHO,
}


class ModeratorSteps:
    naming_for = 0               # the position a moderator is naming (0: the last who joined)
    name_for_candidate: str | None = None
    assign_pending = 0           # AssignName actions not yet answered
    seats_for: KeyAction | None = None   # the moderator action whose numbers are being entered
    moderating: tuple[KeyAction, int] | None = None   # a moderator's command (and its seat)
                                                      # waits for the owner's answer
    roll_pending = False         # a roll call was asked for

    # ---- a moderator names a participant (I3) --------------------------------------------------

    def _key_name_member(self) -> list:
        self.matcher.reset()
        return self._ask(State.NAME_WHO, [P.NAME_WHO], 3)

    def _who_key(self, ev: DigitPressed) -> list:
        """Digits of the position the participant heard on joining, '#' ends ('#' alone: the
        last who joined), '*' starts again."""
        if ev.digit == "*":
            return self._ask(State.NAME_WHO, [P.NAME_WHO], 3, fresh=False)
        if ev.digit != "#":
            self.digits += ev.digit if ev.digit.isdigit() else ""   # A-D (RFC 4733) are no digit
            return self._restart_input()
        number, self.digits = self.digits, ""
        self.naming_for = int(number) if number else 0
        return self._cancel_input() + self._record_name_for()

    def _record_name_for(self) -> list:
        self.state = State.NAME_FOR_RECORDING
        return [self._play(P.SAY_NAME_FOR), self._play(P.BEEP), RecordName(self.config.name_max_ms)]

    def _recorded_for(self, ev: RecordingDone) -> list:
        if ev.path is None or ev.duration_ms < self.config.name_min_ms:
            self.state = State.IN_CONFERENCE
            return [self._play(P.INVALID_INPUT, barge_in=True)]
        self.name_for_candidate = ev.path
        return self._confirm_recording(ev.path, State.NAME_FOR_CONFIRM)

    def _confirm_for_key(self, ev: DigitPressed) -> list:
        if ev.digit == "1":
            self.state = State.IN_CONFERENCE
            self.assign_pending += 1
            return self._cancel_input() + [AssignName(self.room, self.naming_for,
                                                      self.name_for_candidate)]
        if ev.digit == "2":
            return self._cancel_input() + self._record_name_for()
        return self._invalid()

    def _name_assigned(self, ev: NameAssigned) -> list:
        if not self.assign_pending:
            raise IllegalEvent("NameAssigned without AssignName")
        self.assign_pending -= 1
        return [self._play(P.NAME_SAVED if ev.ok else P.NO_SUCH_PARTICIPANT, barge_in=True)]

    # ---- a moderator's room commands: séparées, 1:1 consultation, bringing back (C3) -----------

    def _moderator_asks(self, action: KeyAction) -> list:
        """A command of SEAT_QUESTIONS: its question, then `_seats_key` collects the numbers."""
        prompt = SEAT_QUESTIONS[action]
        self.matcher.reset()
        self.seats_for = action
        return self._ask(State.SEATS, [prompt], 16)

    def _moderator_now(self, action: KeyAction, ask: Ask) -> list:
        """A moderator's command without operands, asked of the owner at once."""
        self.moderating = (action, 0)
        return [ask, self._said(action.value)]

    def _key_mute_all(self) -> list:
        return self._moderator_now(KeyAction.MUTE_ALL, Ask(mute_participants, (True,)))

    def _key_unmute_all(self) -> list:
        return self._moderator_now(KeyAction.UNMUTE_ALL, Ask(mute_participants, (False,)))

    def _key_lock(self) -> list:
        return self._moderator_now(KeyAction.LOCK, Ask(toggle_lock, ()))

    def _key_end_conference(self) -> list:
        self.matcher.reset()
        return self._ask(State.END_CONFIRM, [P.END_CONFIRM], 1)

    def _end_confirm_key(self, ev: DigitPressed) -> list:
        """1 ends the conference for everyone (this caller hears it end too); any other key
        goes back to the conference."""
        self.state = State.IN_CONFERENCE
        out = self._cancel_input()
        if ev.digit != "1":
            return out
        return out + self._moderator_now(KeyAction.END_CONFERENCE, Ask(end_conference, ()))

    def _seats_key(self, ev: DigitPressed) -> list:
        """Seat (or séparée) numbers, each ended by '*'; '#' ends the entry."""
        if ev.digit != "#":
            self.digits += ev.digit if ev.digit.isdigit() or ev.digit == "*" else ""
            return self._restart_input()
        numbers = [int(n) for n in self.digits.split("*") if n]
        action, self.seats_for, self.digits = self.seats_for, None, ""
        self.state = State.IN_CONFERENCE
        out = self._cancel_input()
        match action:
            case KeyAction.SEPAREE if len(numbers) >= 2:
                ask = Ask(separee_of_seats, (tuple(numbers),))
            case KeyAction.CONSULT if len(numbers) == 1:
                ask = Ask(consult_seat, (numbers[0],))
            case KeyAction.BRING_BACK if len(numbers) <= 1:
                ask = Ask(bring_back_separee, (numbers[0] if numbers else 0,))
            case KeyAction.MUTE_SEAT if len(numbers) == 1:
                ask = Ask(mute_seat, (numbers[0],))
            case KeyAction.REMOVE_SEAT if len(numbers) == 1:
                ask = Ask(remove_seat, (numbers[0],))
            case KeyAction.MOVE_SEAT if len(numbers) == 2:
                ask = Ask(move_seat, (numbers[0], numbers[1]))
            case _:
                return out + [self._play(P.INVALID_INPUT, barge_in=True)]
        self.moderating = (action, numbers[0] if numbers else 0)
        return out + [ask, self._said(f"{action.value} {numbers}")]

    # ---- roll call -----------------------------------------------------------------------------

    def _key_roll_call(self) -> list:
        self.roll_pending = True
        return [QueryRoll()]

    def _roll_call(self, ev: RollCall) -> list:
        """Each member by seat: "number 2: <its recorded name>, muted, in private room 1",
        then how many are here; any key stops it."""
        if not self.roll_pending:
            raise IllegalEvent("RollCall without QueryRoll")
        self.roll_pending = False
        if ev.entries is None:
            return [self._play(P.MODERATOR_ONLY, barge_in=True)]
        out: list = []
        for e in ev.entries:
            out.append(self._play(P.ROLL_SEAT, barge_in=True, seat=e.seat))
            out.append(PlayFile(e.name, True, self._token(True)) if e.name
                       else self._play(P.ROLL_NO_NAME, barge_in=True))
            out += [self._play(P.ROLL_MUTED, barge_in=True)] if e.muted else []
            out += [self._play(P.ROLL_TALKING, barge_in=True)] if e.talking else []
            out += [self._play(P.ROLL_IN_SEPAREE, barge_in=True, number=e.separee)] \
                if e.separee else []
        return out + [self._play(P.PARTICIPANT_COUNT, barge_in=True, count=len(ev.entries))]

    # ---- logging in with a personal PIN ([[moderators]]) ----------------------------------------

    def _key_login(self) -> list:
        if self.role in MODERATING:
            return [self._play(P.LOGGED_IN, barge_in=True)]
        self.matcher.reset()
        return self._ask(State.LOGIN_PIN, [P.LOGIN_PIN], self.config.pin_max_digits)

    def _login_key(self, ev: DigitPressed) -> list:
        """The personal PIN's digits, '#' ends ('#' alone: never mind), '*' starts again.
        Wrong PINs count against the caller like wrong booking PINs (the same lockout)."""
        if ev.digit == "*":
            return self._ask(State.LOGIN_PIN, [P.LOGIN_PIN], self.config.pin_max_digits, fresh=False)
        if ev.digit != "#":
            self.digits += ev.digit if ev.digit.isdigit() else ""
            return self._restart_input()
        pin, self.digits = self.digits, ""
        self.state = State.IN_CONFERENCE
        out = self._cancel_input()
        if not pin:
            return out
        if self.pin_guard.admit(self.caller, self.now) is not Admission.ALLOWED:
            return out + [Log(Level.WARNING, f"call {self.call_id}: login refused, PIN entry "
                                             f"locked for {self.caller or 'anonymous'}"),
                          self._play(P.LOGIN_LOCKED, barge_in=True)]
        return out + [CheckLogin(pin)]

    def _login_checked(self, ev: LoginChecked) -> list:
        if ev.role is None:
            if ev.known:        # a right PIN, but not this conference's: no strike
                return [self._play(P.NOT_YOUR_CONFERENCE, barge_in=True)]
            lock = self.pin_guard.failed(self.caller, self.now)
            said = [Log(Level.WARNING, lock.message)] if lock is not None else []
            return said + [Log(Level.INFO, f"call {self.call_id}: wrong personal PIN"),
                           self._play(P.LOGIN_WRONG, barge_in=True)]
        self.pin_guard.succeeded(self.caller, self.now)
        self.role = ev.role
        return [self._play(P.LOGGED_IN_SUPERUSER if ev.role is Role.OPERATOR else P.LOGGED_IN,
                           barge_in=True)]

    def _done(self, action: KeyAction, seat: int, now_on: bool | None) -> Play | None:
        match action:
            case KeyAction.MUTE_SEAT:
                return self._play(P.SEAT_MUTED if now_on else P.SEAT_UNMUTED, barge_in=True,
                                  seat=seat)
            case KeyAction.REMOVE_SEAT:
                return self._play(P.SEAT_REMOVED, barge_in=True, seat=seat)
            case KeyAction.MUTE_ALL | KeyAction.UNMUTE_ALL:
                return self._play(P.ALL_MUTED if action is KeyAction.MUTE_ALL else P.ALL_UNMUTED,
                                  barge_in=True)
            case KeyAction.LOCK:
                return self._play(P.CONFERENCE_LOCKED if now_on else P.CONFERENCE_UNLOCKED,
                                  barge_in=True)
            case KeyAction.END_CONFERENCE:
                return None          # it hears the conference end, like everybody

        return self._play(P.DONE, barge_in=True)
