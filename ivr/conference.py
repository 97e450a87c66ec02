"""Inside a conference (pure): keypad commands, inviting by dial-out (I6) and 3PTY (I7).

Owns `ConferenceSteps`, the handlers `ivr.flow.TRANSITIONS` names for IN_CONFERENCE,
INVITE_NUMBER, THREEWAY_NUMBER and THREEWAY_DIALING, and `KEY_HANDLERS` (KeyAction → handler:
the one place a compiled keypad command is executed, STYLE lesson 5); a moderator's commands
are its mixin `ivr.moderator.ModeratorSteps`. Must not decide which
events are legal (the table does) and must not perform I/O: a dial-out is a `DialOut` action
and its progress comes back as `DialOutResult` events. Toll-fraud limits are asked of the shared
`ivr.guard.DialOutGuard`.
"""
from __future__ import annotations

from collections.abc import Callable

from bot.conference.owner import Conferences
from bot.conference.rooms import MAX_STEP, MIN_STEP, MODERATING, Direction, Role
from ivr.events import (Ask, AskAnswered, BridgeInvitee, DialOut, DialOutcome, DialOutResult,
                        DialPurpose, DigitPressed, Level, Log, Moved, MuteChanged, Params,
                        PromptId, QueryRoomCount, Refusal, Removed, RoomCount, Timer, params)
from ivr.guard import DialVerdict
from ivr.keypad import MODERATOR_ACTIONS, KeyAction, Keypad, Match
from ivr.moderator import SEAT_QUESTIONS, ModeratorSteps
from ivr.steps import IllegalEvent, State

P = PromptId


# what the help says of each action: one prompt per binding of the configured keypad
KEY_PROMPT: dict[KeyAction, PromptId] = {a: PromptId(f"key_{a.value}") for a in KeyAction}


def help_prompts(keypad: Keypad, moderator: bool = True) -> list[tuple[PromptId, Params]]:
    """What the help key reads out after HELP_KEYS: the keypad as configured, in the order of
    `KeyAction` ("star six: mute or unmute yourself", ...), the moderators' commands only to
    moderators. `confbot prompts render` renders all of these ahead too."""
    order = list(KeyAction)
    def told(action: KeyAction) -> bool:     # a moderator needs no login; the others no commands
        return action is not KeyAction.LOGIN if moderator else action not in MODERATOR_ACTIONS
    bindings = sorted((b for b in keypad.bindings if told(b[1])),
                      key=lambda b: (order.index(b[1]), b[0]))
    return [(KEY_PROMPT[action], params(keys=keys)) for keys, action in bindings]


REFUSAL_PROMPT: dict[Refusal, PromptId] = {
    Refusal.NOT_ALLOWED: P.NOT_ALLOWED, Refusal.NO_SUCH_SEAT: P.NO_SUCH_SEAT,
    Refusal.NO_SUCH_SEPAREE: P.NO_SUCH_SEPAREE, Refusal.NOT_IN_ROOM: P.NOT_IN_ROOM,
    Refusal.INVALID: P.INVALID_INPUT, Refusal.MUTED_BY_MODERATOR: P.ONLY_MODERATOR_UNMUTES,
}

FAILED_PROMPT: dict[DialOutcome, PromptId] = {
    DialOutcome.DECLINED: P.INVITE_DECLINED, DialOutcome.BUSY: P.INVITE_BUSY,
    DialOutcome.NO_ANSWER: P.INVITE_NO_ANSWER, DialOutcome.FAILED: P.INVITE_NO_ANSWER,
}


class ConferenceSteps(ModeratorSteps):
    count_pending = False
    dialing: DialPurpose | None = None
    threeway = False
    parties = 1                  # 3PTY: callers in the ad-hoc room, this one included
    placed = 0                   # dial-outs started by this call

    def __init__(self) -> None:
        super().__init__()
        self.levels = {Direction.LISTEN: 0, Direction.TALK: 0}

    # ---- keypad ------------------------------------------------------------------------------

    def _conference_key(self, ev: DigitPressed) -> list:
        match, action = self.matcher.feed(ev.digit)
        if match is Match.PENDING:
            return self._start_timer(Timer.KEYPAD, self.config.keypad_timeout_ms)
        out = self._cancel_timer(Timer.KEYPAD)
        if match is Match.NONE:
            return out
        if action in MODERATOR_ACTIONS and self.role not in MODERATING:
            return out + [self._play(P.MODERATOR_ONLY, barge_in=True)]
        return out + KEY_HANDLERS[action](self)

    def _set_muted(self, muted: bool | None) -> list:
        """The owner decides (a moderator may have muted this caller meanwhile) and answers
        with `MuteChanged`, which says what the caller hears."""
        wish = {True: "mute", False: "unmute", None: "toggle mute"}[muted]
        op = (Ask(Conferences.toggle_muted, (self.call_id,)) if muted is None
              else Ask(Conferences.set_muted, (self.call_id, muted)))
        return [op, self._said(wish)]

    def _mute_changed(self, ev: MuteChanged) -> list:
        if not self.joined or self.ended:
            return []
        if ev.by_other:
            return [self._play(P.MUTED_BY_MODERATOR if ev.muted else P.UNMUTED_BY_MODERATOR)]
        return [self._play(P.MUTED if ev.muted else P.UNMUTED, barge_in=True)]

    def _moved(self, ev: Moved) -> list:
        self.room = ev.room      # counts, invitations and announcements are there from now on
        log = Log(Level.INFO, f"call {self.call_id}: moved to {ev.room}")
        if not self.joined or self.ended:
            return [log]
        told = (self._play(P.IN_SEPAREE, barge_in=True, number=ev.separee) if ev.separee
                else self._play(P.BACK_IN_MAIN, barge_in=True))
        return [log, told]

    def _ask_answered(self, ev: AskAnswered) -> list:
        """The owner's answer to a keypad `Ask`: a refusal is said (never silence); a
        moderator's command that was carried out is confirmed with what it did."""
        moderating, self.moderating = self.moderating, None
        if ev.refusal is None:
            done = self._done(*moderating, ev.now_on) if moderating else None
            return [done] if done is not None else []
        if ev.refusal is Refusal.NO_SUCH_SEAT:
            return [self._play(P.NO_SUCH_SEAT, barge_in=True, seat=ev.number)]
        return [self._play(REFUSAL_PROMPT[ev.refusal], barge_in=True)]

    def _removed(self, ev: Removed) -> list:
        """A moderator removed this caller (the owner has taken it out of the room already;
        the others hear that it left)."""
        if self.ended:
            return []
        out = self._stop_playback() + self._cleanup()
        out += [Log(Level.INFO, f"call {self.call_id}: removed by a moderator"),
                self._play(P.REMOVED), self._play(P.GOODBYE)]
        return out + self._hangup("removed by a moderator")

    def _said(self, what: str) -> Log:
        """The log line of a keypad action that changed something."""
        return Log(Level.INFO, f"call {self.call_id}: {what} (keypad, room {self.room})")

    def _key_toggle_mute(self) -> list:
        return self._set_muted(None)

    def _key_mute(self) -> list:
        return self._set_muted(True)

    def _key_unmute(self) -> list:
        return self._set_muted(False)

    def _key_help(self) -> list:
        return [self._play(P.HELP_KEYS, barge_in=True)] + [
            self._play(prompt, barge_in=True, **dict(values))
            for prompt, values in help_prompts(
                self.config.keypad, self.role in MODERATING)]

    def _key_count(self) -> list:
        self.count_pending = True
        return [QueryRoomCount(self.room)]

    def _room_count(self, ev: RoomCount) -> list:
        if not self.count_pending:
            raise IllegalEvent("RoomCount without QueryRoomCount")
        self.count_pending = False
        return [self._play(P.PARTICIPANT_COUNT, barge_in=True, count=ev.count)]

    def _volume(self, direction: Direction, step: int) -> list:
        old = self.levels[direction]
        new = self.levels[direction] = max(MIN_STEP, min(MAX_STEP, old + step))
        out = [Ask(Conferences.set_volume, (self.call_id, direction, new)), self._said(f"{direction.value} volume {new:+d}")] \
            if new != old else []
        return out + [self._play(P.VOLUME_UP if step > 0 else P.VOLUME_DOWN, barge_in=True)]

    def _key_volume_up(self) -> list:
        return self._volume(Direction.LISTEN, +1)

    def _key_volume_down(self) -> list:
        return self._volume(Direction.LISTEN, -1)

    def _key_talk_louder(self) -> list:
        return self._volume(Direction.TALK, +1)

    def _key_talk_softer(self) -> list:
        return self._volume(Direction.TALK, -1)

    def _key_leave(self) -> list:
        return [self._play(P.GOODBYE)] + self._hangup("left")

    # ---- invite (I6) and the third party of a 3PTY call ----------------------------------------

    def _key_invite(self) -> list:
        if not self.config.dialout:     # say so at once, not after a number and "no answer"
            return [self._play(P.INVITE_UNAVAILABLE, barge_in=True)]
        refusal = self._dial_refusal()
        if refusal is not None:
            return refusal
        self.matcher.reset()
        return self._ask(State.INVITE_NUMBER, [P.INVITE_ENTER_NUMBER], self.config.number_max_digits)

    def _dial_refusal(self) -> list | None:
        if self.dialing is not None or (self.threeway and self.parties >= self.config.threeway_parties):
            return [self._play(P.INVITE_NOT_ALLOWED, barge_in=True)]
        reference = self.booking.reference if self.booking is not None else None
        verdict = self.dial_guard.may_dial(self.caller, reference, self.now, self.placed)
        if verdict is DialVerdict.ALLOWED:
            return None
        return [Log(Level.WARNING, f"call {self.call_id}: dial-out refused ({verdict.value})"),
                self._play(P.INVITE_NOT_ALLOWED, barge_in=True)]

    def _threeway_start(self) -> list:
        """I7 entry: this caller hosts an ad-hoc room and dials the second party."""
        if not self.config.dialout:
            return [Log(Level.INFO, f"call {self.call_id}: 3PTY needs [ivr] dialout_uri"),
                    self._play(P.INVITE_UNAVAILABLE), self._play(P.GOODBYE)] \
                + self._hangup("no dial-out")
        self.threeway, self.role = True, Role.MODERATOR
        self.room = f"3pty-{self.call_id}"
        return [self._cdr(None)] + self._ask(State.THREEWAY_NUMBER, [P.THREEWAY_ENTER_NUMBER],
                                             self.config.number_max_digits)

    def _number_key(self, ev: DigitPressed) -> list:
        if ev.digit == "*":
            state, prompts, max_digits = self.question
            return self._ask(state, prompts, max_digits, fresh=False)
        if ev.digit != "#":
            self.digits += ev.digit if ev.digit.isdigit() else ""
            return self._restart_input()
        number, self.digits = self.digits, ""
        if not number and self.state is State.INVITE_NUMBER:   # "#" alone: never mind
            self.state = State.IN_CONFERENCE
            return self._cancel_input()
        refusal = self._dial_refusal()
        if refusal is None and self.dial_guard.number_verdict(number) is not DialVerdict.ALLOWED:
            refusal = [Log(Level.WARNING, f"call {self.call_id}: number {number!r} refused"),
                       self._play(P.INVITE_NOT_ALLOWED, barge_in=True)]
        if refusal is not None:
            if self.state is State.THREEWAY_NUMBER:
                return refusal + self._retry(None)
            self.state = State.IN_CONFERENCE
            return self._cancel_input() + refusal
        return self._cancel_input() + self._dial(number)

    def _dial(self, number: str) -> list:
        reference = self.booking.reference if self.booking is not None else None
        self.dial_guard.placed(self.caller, reference, self.now)
        self.placed += 1
        self.dialing = DialPurpose.THREEWAY if self.threeway else DialPurpose.INVITE
        self.state = State.THREEWAY_DIALING if self.state is State.THREEWAY_NUMBER else State.IN_CONFERENCE
        title = self.booking.title if self.booking is not None else ""
        shown = number[:4] + "x" * (len(number) - 4)     # the log keeps no whole number
        return [self._said(f"dials {shown} ({self.dialing.value})"), DialOut(number, self.dialing, self.room, self.name_path or self.caller, title),
                self._play(P.INVITE_RINGING, barge_in=True)]

    def _dial_result(self, ev: DialOutResult) -> list:
        if self.dialing is None:
            raise IllegalEvent("DialOutResult without a pending DialOut")
        purpose = self.dialing
        if ev.outcome is DialOutcome.ANSWERED and purpose is DialPurpose.INVITE:
            return [Log(Level.INFO, f"call {self.call_id}: invitee {ev.call_id} answered")]
        self.dialing = None
        if ev.outcome in (DialOutcome.ANSWERED, DialOutcome.ACCEPTED):
            if purpose is DialPurpose.INVITE:
                return [self._play(P.INVITE_JOINED, barge_in=True)]
            self.parties += 1
            out = self._join() if self.state is State.THREEWAY_DIALING else []
            return out + [BridgeInvitee(ev.call_id, self.room), self._play(P.INVITE_JOINED, barge_in=True)]
        said = self._play(FAILED_PROMPT[ev.outcome], barge_in=True)
        if self.state is State.THREEWAY_DIALING:
            self.state = State.THREEWAY_NUMBER
            return [said] + self._retry(None)
        return [said]


# KeyAction → its handler (a function of the steps): the one place a compiled keypad command is
# executed (STYLE lesson 5). After the class, so every entry is a real function.
C = ConferenceSteps
KEY_HANDLERS: dict[KeyAction, Callable[[ConferenceSteps], list]] = {
    KeyAction.TOGGLE_MUTE: C._key_toggle_mute, KeyAction.MUTE: C._key_mute,
    KeyAction.UNMUTE: C._key_unmute, KeyAction.HELP: C._key_help, KeyAction.COUNT: C._key_count,
    KeyAction.VOLUME_UP: C._key_volume_up, KeyAction.VOLUME_DOWN: C._key_volume_down,
    KeyAction.TALK_LOUDER: C._key_talk_louder, KeyAction.TALK_SOFTER: C._key_talk_softer,
    KeyAction.LEAVE: C._key_leave, KeyAction.INVITE: C._key_invite,
    KeyAction.NAME_MEMBER: C._key_name_member,
    KeyAction.MUTE_ALL: C._key_mute_all, KeyAction.UNMUTE_ALL: C._key_unmute_all,
    KeyAction.LOCK: C._key_lock, KeyAction.END_CONFERENCE: C._key_end_conference,
    KeyAction.LOGIN: C._key_login, KeyAction.ROLL_CALL: C._key_roll_call,
    # the commands that ask for seat numbers first: one handler, the question from the table
    **{a: (lambda steps, a=a: steps._moderator_asks(a)) for a in SEAT_QUESTIONS},
}
