"""The service side of the owner of conference state (asyncio wiring): applies its changes and
delivers its facts.

Owns `Members`, which holds the one `bot.conference.owner.Conferences` of the service and
turns each operation's `Change` into bridge diffs (through the voice service) and its facts into
what each party needs: the member's own flow hears of a mute or a new name made by someone else
(`MuteChanged`, `NameChanged`), the call records get joins and leaves, the log gets every
change with who made it, a recorded name is transcribed into the owner when speech input is on,
and a closed conference's announcements and name files are freed. Must not keep any membership
state of its own, and must not decide anything: the owner does.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.conference.mixer import Role
from bot.conference.rooms import MODERATING
from bot.conference.owner import (Change, ConferenceClosed, ConferenceKind, Conferences,
                                  MemberJoined, MemberLeft, MemberMoved, MemberMuted,
                                  MemberNamed, NotAllowed, RoomFull, Seat, SepareeClosed,
                                  SepareeOpened, UnknownCall)
from bot.conference.endwatch import Closing
from bot.conference.facts import (ConferenceEnded, ConferenceLocked, LockChanged, MemberRemoved,
                                  MutedByModerator, NoSuchSeat, NoSuchSeparee, RoleChanged)
from ivr import events as ev
from ivr.flow import CallFlow

log = logging.getLogger("confbot.voice")


class Members:
    def __init__(self, voice) -> None:
        self.voice = voice
        self.conf = Conferences()
        # a moderator present watches its conference's talk (its roll call says who talks);
        # the watch ends when it leaves
        self._watches: dict[str, Callable[[], None]] = {}

    # ---- operations (the keypad, and later the operator desk and the control socket) ----------

    def join(self, call: str, room: str, role: Role, muted: bool, limit: int | None,
             name: str | None = None, kind: ConferenceKind | None = None) -> ev.JoinResult:
        owner = self.conf.conference_of(room)
        if owner is not None and owner != room:   # a séparée's room: its conference's main room
            log.info("%s joins %r in the main room of %r", call, room, owner)
            room = owner
        seat = self.conf.seat_of(call)
        if seat is not None and seat.conference == room:
            return ev.JoinResult(ev.JoinOutcome.JOINED, self.conf.count(seat.room), seat.seat)
        if seat is not None:
            self.leave(call)
        rs = self.voice.settings.room(room)
        if kind is None:
            kind = ConferenceKind.STANDING if rs is not None else ConferenceKind.ADHOC
        if limit is None:
            limit = rs.max_participants if rs is not None else self.voice.settings.capacity.room_max
        # a known conference takes the current limit and rules
        self.conf.open(room, kind, limit,
                       self_unmute=self.voice.settings.conference.self_unmute)
        change = self.conf.join(call, room, role, muted=muted, name=name)
        self.apply(change)
        seat = self.conf.seat_of(call)
        if seat is None:
            locked = any(isinstance(f, ConferenceLocked) for f in change.facts)
            return ev.JoinResult(ev.JoinOutcome.LOCKED if locked else ev.JoinOutcome.FULL,
                                 self.conf.count(room))
        return ev.JoinResult(ev.JoinOutcome.JOINED, self.conf.count(room), seat.seat)

    def move(self, call: str, target: str, by: str) -> bool:
        """`by` moves `call` into the open conference `target`; False when it may not, or the
        target is full."""
        try:
            change = self.conf.move(call, target, by)
        except NotAllowed as e:
            log.warning("refused: %s", e)
            return False
        self.apply(change)
        return not any(isinstance(f, RoomFull) for f in change.facts)

    def leave(self, call: str) -> None:
        self.apply(self.conf.leave(call))

    def gone(self, call: str) -> None:
        self.apply(self.conf.gone(call))

    def ask(self, op, args: tuple, by: str) -> ev.AskAnswered:
        """`by` asks for the owner's operation `op(conferences, *args, by=by)` (`ivr.events.Ask`:
        the keypad's way in); the answer says why when the owner refuses (nothing changed)."""
        try:
            change = op(self.conf, *args, by=by)
        except MutedByModerator as e:
            return self._refused(op, e, ev.Refusal.MUTED_BY_MODERATOR)
        except NotAllowed as e:
            return self._refused(op, e, ev.Refusal.NOT_ALLOWED)
        except NoSuchSeat as e:
            return self._refused(op, e, ev.Refusal.NO_SUCH_SEAT, e.seat)
        except UnknownCall as e:
            return self._refused(op, e, ev.Refusal.NOT_IN_ROOM)
        except NoSuchSeparee as e:
            return self._refused(op, e, ev.Refusal.NO_SUCH_SEPAREE, e.number)
        except ValueError as e:
            return self._refused(op, e, ev.Refusal.INVALID)
        self.apply(change)
        toggled = {f.muted for f in change.facts if isinstance(f, MemberMuted)} | {
            f.locked for f in change.facts if isinstance(f, LockChanged)}
        return ev.AskAnswered(now_on=toggled.pop() if len(toggled) == 1 else None)

    def roll_call(self, call: str, talking) -> ev.RollCall:
        """Every member of `call`'s conference by seat, for its moderator (or the superuser):
        name, muted, talking (`talking(call)`: the talk detector, which reads the levels of
        watched rooms only), séparée."""
        seat = self.conf.seat_of(call)
        if seat is None or seat.role not in MODERATING:
            return ev.RollCall(None)
        numbers = {room: n for n, room in self.conf.separees(seat.conference).items()}
        return ev.RollCall(tuple(
            ev.RollEntry(s.seat, s.name, self.conf.muted(s.call), talking(s.call),
                         numbers.get(s.room, 0))
            for s in sorted(self.conf.members(seat.conference), key=lambda s: s.seat)))

    def login(self, call: str, pin: str) -> ev.LoginChecked:
        """`call` entered a personal PIN: a moderator of `[[moderators]]` for this conference
        (or the superuser) moderates it from now on. The PIN never reaches the log."""
        seat = self.conf.seat_of(call)
        person = self.voice.settings.moderator_by_pin(pin)
        if seat is None or person is None:
            return ev.LoginChecked(None)
        if not person.may_moderate(seat.conference):
            log.warning("%s: %s does not moderate %r", call, person.name, seat.conference)
            return ev.LoginChecked(None, known=True)
        role = Role.OPERATOR if person.superuser else Role.MODERATOR
        self.apply(self.conf.promote(call, role, person.name))
        return ev.LoginChecked(role)

    @staticmethod
    def _refused(op, e: Exception, why: ev.Refusal, number: int = 0) -> ev.AskAnswered:
        log.warning("refused %s: %s", op.__name__, e or why.value)
        return ev.AskAnswered(why, number)

    def set_muted(self, call: str, muted: bool | None, by: str | None = None) -> bool:
        """Mute, unmute or (None) toggle; False when `by` may not, or `call` is in no room."""
        if self.conf.seat_of(call) is None:
            return False
        try:
            self.apply(self.conf.toggle_muted(call, by) if muted is None
                       else self.conf.set_muted(call, muted, by))
        except NotAllowed as e:
            log.warning("refused: %s", e)
            return False
        return True

    def assign_name(self, room: str, seat: int, path: str, by: str) -> bool:
        """`by` (a moderator) names the member of `room`'s conference in `seat` (0: the last
        who joined)."""
        target = self.conf.find(self.conf.conference_of(room) or room, seat, exclude=by)
        if target is None:
            log.info("%s named nobody: no member in seat %d of room %r", by, seat, room)
            return False
        try:
            self.apply(self.conf.name(target.call, path, by=by))
        except NotAllowed as e:
            log.warning("refused: %s", e)
            return False
        return True

    # ---- queries ------------------------------------------------------------------------------

    def seat_of(self, call: str) -> Seat | None:
        return self.conf.seat_of(call)

    def count(self, room: str) -> int:
        return self.conf.count(room)

    def rooms(self) -> dict[str, tuple[str, ...]]:
        """Every room with members (main rooms by their conference's id, séparées by theirs)."""
        out = {}
        for c in self.conf.conferences():
            for room in (c, *self.conf.separees(c).values()):
                members = self.conf.in_room(room)
                if members:
                    out[room] = tuple(sorted(s.call for s in members))
        return out

    # ---- changes and facts --------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        self.voice.apply(list(change.diffs))
        for fact in change.facts:
            try:
                self._deliver(fact)
            except Exception:   # noqa: BLE001 - the others (and the call's end) still happen
                log.exception("delivering %s", fact)

    def _deliver(self, fact) -> None:
        v = self.voice
        match fact:
            case MemberJoined(call, conference, role, seat, count):
                log.info("%s joined room %r as %s%s (%d/%s), seat %d", call, conference,
                         role.name.lower(), ", muted" if self.conf.muted(call) else "", count,
                         self.conf.limit(conference), seat)
                at = v._now()
                v._record(lambda s: s.call_joined(call, conference, at))
                v.talkwatch.placed(call, conference)
                if role in MODERATING:
                    self._watch(call, conference)
                s = self.conf.seat_of(call)
                if s is not None and s.name is not None:
                    self._transcribe(call, s.name)
            case MemberLeft(call, conference, _seat, _name):
                log.info("%s left room %r", call, conference)
                at = v._now()
                v._record(lambda s: s.call_left(call, at))
                v.talkwatch.placed(call, None)
                self._unwatch(call)
            case MemberMoved(call, source, target, seat, by):
                log.info("%s moved from %r to %r (seat %d) by %s", call, source, target, seat, by)
                at = v._now()
                v._record(lambda s: s.call_joined(call, target, at))
                conference = self.conf.conference_of(target)
                v.talkwatch.placed(call, conference)
                number = next((n for n, r in self.conf.separees(conference).items()
                               if r == target), 0)
                self._tell(call, ev.Moved(target, number))
            case SepareeOpened(conference, room, number, by):
                log.info("séparée %d (%r) of %r opened by %s", number, room, conference, by)
            case SepareeClosed(conference, room, number):
                log.info("séparée %d (%r) of %r closed", number, room, conference)
                v.announcer.forget(room)
            case MemberMuted(call, muted, by):
                log.info("%s %s%s", call, "muted" if muted else "unmuted",
                         "" if by == call else f" by {by}")
                self._tell(call, ev.MuteChanged(muted, by_other=by != call))
            case MemberNamed(call, name, by):
                log.info("%s named %s", by, call)
                if by != call:
                    self._tell(call, ev.NameChanged(name))   # its leave announcement says it
                self._transcribe(call, name)
            case MemberRemoved(call, conference, by):
                log.info("%s removed from %r by %s", call, conference, by)
                self._tell_or_end(call, ev.Removed(), "removed by a moderator")
            case ConferenceEnded(conference, by, calls):
                log.info("%r ended by %s for %d callers", conference, by, len(calls))
                for call in calls:
                    self._tell_or_end(call, ev.ConferenceClosed(Closing.BY_MODERATOR),
                                      Closing.BY_MODERATOR.value)
            case LockChanged(conference, locked, by):
                log.info("%r %s by %s", conference, "locked" if locked else "unlocked", by)
            case RoleChanged(call, role, who):
                log.info("%s logged in as %s (%s)", call, who, role.name.lower())
                s = self.conf.seat_of(call)
                if s is not None:
                    self._watch(call, s.conference)
            case ConferenceLocked(call, conference):
                log.info("%s for %r refused: locked", call, conference)
            case RoomFull(call, conference, count, limit):
                log.info("%s for room %r refused: full (%d/%d)", call, conference, count, limit)
            case ConferenceClosed(conference):
                log.info("conference %r closed", conference)
                v.announcer.forget(conference)
                if v.names is not None:
                    v.names.room_idle(conference)

    def _watch(self, call: str, conference: str) -> None:
        if call not in self._watches:
            self._watches[call] = self.voice.watch_talk(conference)

    def _unwatch(self, call: str) -> None:
        unwatch = self._watches.pop(call, None)
        if unwatch is not None:
            unwatch()

    def _tell_or_end(self, call: str, event, cause: str) -> None:
        """Its flow says why and hangs up; a call without one (an invitee, a referred leg) is
        hung up."""
        driver = self.voice.drivers.get(call)
        if driver is not None and isinstance(driver.flow, CallFlow):
            driver.feed_soon(event)
        else:
            self.voice.hangup(call, cause=cause)

    def _tell(self, call: str, event) -> None:
        driver = self.voice.drivers.get(call)
        if driver is not None and isinstance(driver.flow, CallFlow):   # invitees do not ask
            driver.feed_soon(event)

    def _transcribe(self, call: str, path: str) -> None:
        """With speech input on, the recorded name becomes text in the owner too."""
        ivr = self.voice.ivr
        fut = ivr.transcribe(path) if ivr is not None else None
        if fut is None:
            return

        def done(f: asyncio.Future) -> None:
            if f.cancelled() or f.exception() is not None:
                log.warning("%s: name not transcribed: %s", call,
                            "cancelled" if f.cancelled() else f.exception())
            elif self.conf.transcribed(call, path, f.result()):
                log.info("%s: name heard as %r", call, f.result())
        fut.add_done_callback(done)
