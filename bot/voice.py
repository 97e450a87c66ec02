"""The voice-side service: runs the SIP adapter, feeds its events into the mixer core and the
IVR drivers, and executes the route diffs the core returns.

Owns the call → member bookkeeping, rooms' limits, the per-call event fan-out (DTMF and talk
events to subscribers), and — with an `IvrContext` — one `bot.ivrdriver.CallDriver` per call:
every answered call runs a `CallFlow` chosen by its dialled number (`ivr.routing`), waits in the
IVR holding room (a WAITING room: it hears only its own prompts) and is moved into its
conference when the flow says so. The links between calls live here too (`bot.switchboard`):
invitations by dial-out, the operator leg, 3PTY and REFER. Without an `IvrContext` (tests of the
bare voice path, bench/calls.py) a direct-access number joins its room at once and everything
else is refused (404; a full room 486).
It runs on the asyncio loop; the SIP adapter's owner thread reaches it only through
`loop.call_soon_threadsafe`. Must not import pjsua2 (that is `bot.sip`), decide routes (that is
`bot.mixer`) or interpret digits (that is `ivr`).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.announce import AnnounceQueue, Announcement
from bot.roster import Roster
from bot.runs import ServiceRun
from bot.ivrdriver import CallDriver, IvrContext
from bot.lockouts import LockoutKeeper
from bot.mixer import Connect, Diff, Direction, Mixer, Role, RoomKind
from bot.namefiles import NameFiles
from bot.settings import Route, Settings, UnknownNumber
from bot.sip import SipStack
from bot.sipevents import (AddPlayer, Answer, CallConfirmed, CallEnded, CallMediaChanged,
                           CallMediaReady, CallOffered, CallRinging, CommandFailed, DtmfReceived,
                           Hangup, LevelsSampled, MakeCall, RecorderStopped, RemovePort, SipEvent,
                           StartRecorder, StopRecorder, StreamStats, TransferRequested)
from bot.switchboard import Switchboard
from bot.talk import TalkDetector, TalkEvent
from ivr import events as ev
from ivr.flow import CallFlow, FlowConfig
from ivr.guard import DialOutGuard, DialOutLimits, PinGuard, PinLimits
from ivr.routing import Entry, route_call, user_part

log = logging.getLogger("confbot.voice")

BUSY, NOT_FOUND = 486, 404
EVENT_HISTORY = 10_000
HOLDING_ROOM = "~ivr"          # callers in the IVR: a WAITING room, nobody hears anybody


def guards(settings: Settings) -> tuple[PinGuard, DialOutGuard]:
    """The brute-force and toll-fraud guards, limits from [ivr]."""
    i = settings.ivr
    pin = PinLimits(caller_failures=i.pin_caller_failures,
                    caller_window=timedelta(minutes=i.pin_caller_window_minutes),
                    caller_lock=timedelta(minutes=i.pin_caller_lock_minutes),
                    global_failures=i.pin_global_failures_per_minute,
                    global_lock=timedelta(minutes=i.pin_global_lock_minutes))
    dial = DialOutLimits(per_call=i.dialout_per_call, per_booking=i.dialout_per_booking,
                         per_caller=i.dialout_per_caller_per_hour,
                         blocked_prefixes=tuple(i.dialout_blocked_prefixes))
    return PinGuard(pin), DialOutGuard(dial)


@dataclass(frozen=True, slots=True)
class CallInfo:
    call: str
    dialled: str
    caller: str
    room: str | None       # the conference it is in (or answered for); None before routing
    outgoing: bool = False


class VoiceService:
    """`start()` brings up SIP on settings.sip; `stop()` hangs up everyone and exits cleanly."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop | None = None, *,
                 level_interval: float | None = 0.1, ivr: IvrContext | None = None) -> None:
        self.settings = settings
        self._loop = loop
        self.mixer = Mixer()
        self.talk = TalkDetector()
        self.ivr = ivr
        self.clock_rate = settings.sip.clock_rate
        self._stack: SipStack | None = None
        self.run: ServiceRun | None = None
        # the talk poll: a voice is reported Talking the attack time (100 ms) after the first
        # loud sample, so 100..200 ms after it starts at 0.1 s; half the poll's cost of 0.05 s
        self._level_interval = level_interval
        self._calls: dict[str, CallInfo] = {}
        self._joined: set[str] = set()
        self._limits: dict[str, int] = {}
        self._recorders: dict[str, tuple[str, asyncio.Future]] = {}   # call → (port, done)
        self._causes: dict[str, str] = {}     # call → why confbot hung it up (logs, records)
        self.drivers: dict[str, CallDriver] = {}
        self.pin_guard, self.dial_guard = guards(settings)   # one each for all calls
        # PIN locks kept in the store: they survive restarts, `confbot lockout clear` lifts them
        self.lockouts = LockoutKeeper.for_context(self.pin_guard.limits, ivr)
        if self.lockouts is not None:
            self.pin_guard = self.lockouts.guard
        self.flow_config = FlowConfig.from_settings(settings)
        self.board = Switchboard(self)
        self._listeners: list[Callable[[SipEvent | TalkEvent], None]] = []
        # the recent events (bounded: a long-running service must not grow), for views and tests
        self.events: deque[SipEvent | TalkEvent] = deque(maxlen=EVENT_HISTORY)
        self._changed = asyncio.Event()
        self._seq = 0
        self.announcements = AnnounceQueue()
        self.roster = Roster()      # who is in which conference, under what name
        self.names = NameFiles(ivr.names_dir, ivr.prompts.forget) if ivr is not None else None

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self.run = ServiceRun.for_context(self.ivr)   # call ids unique across restarts
        prefix = await self.run.begin() if self.run is not None else None
        if self.lockouts is not None:
            await self.lockouts.start()
        self._stack = SipStack(self.settings.sip, self._post_threadsafe,
                               level_interval=self._level_interval, call_prefix=prefix)
        await loop.run_in_executor(None, self._stack.start)
        self.mixer.open_room(HOLDING_ROOM, RoomKind.WAITING)
        if self.names is not None:
            self.names.sweep()

    async def stop(self) -> None:
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        for call in self._calls:
            self._causes.setdefault(call, "service stopped")
        for driver in list(self.drivers.values()):
            driver.ended("shutdown")
        await self._loop.run_in_executor(None, stack.stop)
        if self.run is not None:    # after the call ends the stack reported were recorded
            await self.run.end()
        if self.lockouts is not None:
            await self.lockouts.stop()
        self._calls.clear()
        self._joined.clear()
        self.drivers.clear()
        self.mixer = Mixer()   # every call is gone with the stack

    def reconfigure(self, settings: Settings) -> None:
        """A reload: new calls route with the new tables; running calls keep their flows."""
        self.settings = settings
        self.flow_config = FlowConfig.from_settings(settings)

    # ---- inspection and control -----------------------------------------------------------

    def rooms(self) -> dict[str, tuple[str, ...]]:
        """Room name → the calls joined to it (in the bridge), sorted."""
        out: dict[str, list[str]] = {}
        for cid in self._joined:
            out.setdefault(self._calls[cid].room, []).append(cid)
        return {r: tuple(sorted(m)) for r, m in sorted(out.items())}

    def calls(self) -> dict[str, CallInfo]:
        return dict(self._calls)

    def subscribe(self, listener: Callable[[SipEvent | TalkEvent], None]) -> None:
        self._listeners.append(listener)

    def set_muted(self, call: str, muted: bool) -> None:
        if call in self._joined:
            self._execute(self.mixer.set_muted(call, muted))

    def set_volume(self, call: str, direction: Direction, steps: int) -> None:
        if call in self._joined:
            self._execute(self.mixer.set_volume(call, steps, direction))

    def apply(self, diffs: list[Diff]) -> None:
        """Execute the diffs a mixer operation returned: `v.apply(v.mixer.whisper(a, b))`.
        Call it right after the operation, on the loop, so the bridge never lags the core."""
        self._execute(diffs)

    def add_source(self, source_id: str, wav_path: str, *, room: str | None = None,
                   member: str | None = None, loop: bool = True, exclude: tuple[str, ...] = ()
                   ) -> None:
        """A player (announcement into a room, or a prompt / hold music for one member)."""
        diffs = self.mixer.add_source(source_id, room=room, member=member,   # validates first
                                      exclude=exclude)
        self._stack.submit(AddPlayer(source_id, wav_path, loop))
        self._execute(diffs)

    def remove_source(self, source_id: str) -> None:
        diffs = self.mixer.remove_source(source_id)
        self._execute(diffs)
        self._stack.submit(RemovePort(source_id))

    def hangup(self, call: str, code: int = 603, cause: str | None = None) -> None:
        """End a call. `cause` (e.g. "pin locked", "left") is what the log and the call's
        record say; the SIP code only reaches a caller not yet answered."""
        if self._stack is not None and call in self._calls:
            self._causes.setdefault(call, cause or f"hung up by confbot ({code})")
            self._stack.submit(Hangup(call, code))

    async def stream_stats(self) -> dict[str, StreamStats]:
        """Per call: pjsua2's receive statistics (packets, loss, jitter, jitter-buffer delay)."""
        return await asyncio.wrap_future(self._stack.stream_stats())

    async def bridge_routes(self) -> frozenset[tuple[str, str]]:
        """(src, dst) port ids the conference bridge really connects (see `core_routes`)."""
        return await asyncio.wrap_future(self._stack.bridge_routes())

    def core_routes(self) -> frozenset[tuple[str, str]]:
        """(src, dst) pairs the mixer core decided; the bridge should hold exactly these."""
        return frozenset((r.src, r.dst) for r in self.mixer.routes())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until predicate() is true, re-checked after every event."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    # ---- the driver's VoicePort -----------------------------------------------------------

    def play_to(self, call: str, source: str, path: str) -> None:
        if self._stack is None or call not in self._calls or not self._is_member(call):
            return
        self.add_source(source, path, member=call, loop=False)

    def stop_source(self, source: str) -> None:
        if self._stack is None:
            return
        if any(s.id == source for s in self.mixer.snapshot().sources):
            self._execute(self.mixer.remove_source(source))
        self._stack.submit(RemovePort(source))   # the mixer may have dropped it with its member

    def announce(self, room: str, path: str, seconds: float, exclude: str | None = None) -> None:
        """Play a WAV into a room once the room's previous announcement has played (see
        `bot.announce`: one at a time per room, duplicates of a burst dropped); not to
        `exclude` (the caller it is about)."""
        if self._stack is None or room not in self.rooms():
            return
        start = self.announcements.offer(Announcement(room, path, seconds, exclude))
        if start is not None:
            self._play_announcement(start)

    def _play_announcement(self, a: Announcement) -> None:
        self._seq += 1
        source = f"a{self._seq}-{a.room}"
        self.add_source(source, a.path, room=a.room, loop=False,
                        exclude=(a.exclude,) if a.exclude else ())
        self._loop.call_later(a.seconds + 0.05, self._announcement_played, a.room, source)

    def _announcement_played(self, room: str, source: str) -> None:
        self.stop_source(source)
        nxt = self.announcements.finished(room)
        if nxt is None:
            self._room_maybe_idle(room)
            return
        if self._stack is None or room not in self.rooms():
            self.announcements.forget(room)
            self._room_maybe_idle(room)
            return
        self._play_announcement(nxt)

    def join_room(self, call: str, room: str, role: Role, muted: bool,
                  limit: int | None, name: str | None = None) -> ev.JoinResult:
        if call not in self._calls or not self._is_member(call):
            return ev.JoinResult(ev.JoinOutcome.FULL)
        if room not in self._limits:
            rs = self.settings.room(room)
            self._limits[room] = limit or (rs.max_participants if rs is not None
                                           else self.settings.capacity.room_max)
        members = self.rooms().get(room, ())
        if call not in members and len(members) >= self._limits[room]:
            log.info("%s for room %r refused: full (%d/%d)", call, room, len(members),
                     self._limits[room])
            return ev.JoinResult(ev.JoinOutcome.FULL, len(members))
        diffs = self.mixer.move(call, room)
        self.mixer.set_role(call, role)
        diffs += self.mixer.set_muted(call, muted)
        self._execute(diffs)
        self._calls[call] = replace(self._calls[call], room=room)
        self._joined.add(call)
        log.info("%s joined room %r as %s%s (%d/%d)", call, room, role.name.lower(),
                 ", muted" if muted else "", len(members) + 1, self._limits[room])
        self.roster.joined(call, room, role, len(members) + 1, name)
        if name is not None:
            self._transcribe(call, name)
        at = self._now()
        self._record(lambda s: s.call_joined(call, room, at))
        return ev.JoinResult(ev.JoinOutcome.JOINED, len(members) + 1)

    def leave_room(self, call: str) -> None:
        """Back to the holding room: the caller still hears its own prompts (a goodbye)."""
        if call in self._joined:
            self._joined.discard(call)
            self.roster.left(call)
            log.info("%s left room %r", call, self._calls[call].room if call in self._calls else "?")
            self._execute(self.mixer.move(call, HOLDING_ROOM) + self.mixer.set_muted(call, False))
            if call in self._calls:
                self._calls[call] = replace(self._calls[call], room=None)
            at = self._now()
            self._record(lambda s: s.call_left(call, at))

    def assign_name(self, room: str, position: int, path: str, by: str) -> bool:
        """A moderator (`by`) names the member of `room` told `position` on joining (0: the
        last who joined). False when there is nobody such."""
        e = self.roster.find(room, position, exclude=by)
        if e is None:
            log.info("%s named nobody: no member at position %d of room %r", by, position, room)
            return False
        self.roster.named(e.call, path)
        log.info("%s named %s (position %d of room %r)", by, e.call, e.position, room)
        driver = self.drivers.get(e.call)
        if driver is not None and isinstance(driver.flow, CallFlow):   # its leave announcement
            driver.feed_soon(ev.NameChanged(path))
        self._transcribe(e.call, path)
        return True

    def _transcribe(self, call: str, path: str) -> None:
        """With speech input on, the recorded name becomes text in the roster too."""
        fut = self.ivr.transcribe(path) if self.ivr is not None else None
        if fut is None:
            return

        def done(f: asyncio.Future) -> None:
            if f.cancelled() or f.exception() is not None:
                log.warning("%s: name not transcribed: %s", call,
                            "cancelled" if f.cancelled() else f.exception())
            elif self.roster.transcribed(call, path, f.result()) is not None:
                log.info("%s: name heard as %r", call, f.result())
        fut.add_done_callback(done)

    def room_count(self, room: str) -> int:
        return len(self.rooms().get(room, ()))

    def start_recording(self, call: str, path: str) -> asyncio.Future:
        done: asyncio.Future = self._loop.create_future()
        port = f"r-{call}"
        self._recorders[call] = (port, done)
        self._stack.submit(StartRecorder(port, call, path))
        return done

    def stop_recording(self, call: str) -> None:
        rec = self._recorders.get(call)
        if rec is not None and self._stack is not None:
            self._stack.submit(StopRecorder(rec[0]))
        elif rec is not None:
            self._recorders.pop(call)[1].set_result("")

    def dial_out(self, driver: CallDriver, action: ev.DialOut) -> None:
        self.board.dial_out(driver, action)

    def bridge_invitee(self, call: str, room: str) -> None:
        self.board.bridge_invitee(call, room)

    def notify_inviter(self, driver: CallDriver, outcome: ev.DialOutcome) -> None:
        self.board.notify_inviter(driver, outcome)

    def transfer_to_operator(self, driver: CallDriver, uri: str) -> None:
        self.board.transfer_to_operator(driver, uri)

    # ---- for the switchboard ---------------------------------------------------------------

    def place_call(self, uri: str, dialled: str) -> str:
        call = self._stack.new_call_id()
        self._calls[call] = CallInfo(call, dialled, uri, None, outgoing=True)
        self._stack.submit(MakeCall(call, uri))
        at = self._now()
        self._record(lambda s: s.call_started(call, "out", dialled, "", at))
        return call

    def new_driver(self, call: str, flow) -> CallDriver:
        driver = CallDriver(call, flow, self, self.ivr)
        self.drivers[call] = driver
        driver.on_closed = lambda d: self.drivers.pop(d.call, None)
        return driver

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
                for call, (p, done) in list(self._recorders.items()):
                    if p == port:
                        del self._recorders[call]
                        if not done.done():
                            done.set_result(path)
            case LevelsSampled(at_ms, calls, levels):
                if self._joined.issuperset(calls):    # the usual case: no per-call filtering
                    sample = dict(zip(calls, levels))
                else:                                 # some are still in the IVR, or leaving
                    sample = {c: lv for c, lv in zip(calls, levels) if c in self._joined}
                self._fan_out_all(self.talk.feed_all(sample, at_ms))
                return
            case CommandFailed(StartRecorder(call=call)):
                rec = self._recorders.pop(call, None)
                if rec is not None and not rec[1].done():
                    rec[1].set_result("")
            case CommandFailed(AddPlayer(port=source)):   # e.g. the bridge is full: the core
                self.stop_source(source)                    # forgets the player too
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
        if self.ivr is None:
            if info.room is not None:
                self._joined.add(call)
                self._execute(self.mixer.join(call, info.room, Role.PARTICIPANT))
            return
        self._execute(self.mixer.join(call, HOLDING_ROOM, Role.PARTICIPANT))
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
            self._execute([Connect(r.src, r.dst, r.level) for r in self.mixer.routes()
                           if call in (r.src, r.dst)])

    def _ended(self, call: str, status: int, reason: str) -> None:
        cause = self._causes.pop(call, None)
        if cause is not None:
            log.info("%s: ended by confbot: %s (%d %s)", call, cause, status, reason)
        else:
            cause = f"remote hangup ({status} {reason})" if 200 <= status < 300 \
                else f"{status} {reason}"
            log.info("%s: ended: %s", call, cause)
        driver = self.drivers.pop(call, None)
        room = getattr(driver.flow, "room", None) if driver is not None else None
        if driver is not None:
            driver.ended(cause)    # its flow still sees the call (LeaveRoom)
        info = self._calls.pop(call, None)
        self.roster.left(call)
        if self._is_member(call):
            self._joined.discard(call)
            self._execute(self.mixer.leave(call))
        self.stop_recording(call)
        if driver is not None and self.names is not None:
            self.names.call_ended(driver.recordings, room)
            self._room_maybe_idle(room)
        if info is not None and self.ivr is not None:
            self.board.ended(call, info, status)
            at = self._now()
            self._record(lambda s: s.call_ended(call, at, cause))
        self._fan_out_all(self.talk.forget(call))

    # ---- helpers ---------------------------------------------------------------------------

    def _room_maybe_idle(self, room: str | None) -> None:
        """An empty room whose announcements have played: its name recordings can go."""
        if room is None or self.names is None or room in self.rooms() \
                or self.announcements.playing(room) is not None:
            return
        self.names.room_idle(room)

    def _is_member(self, call: str) -> bool:
        try:
            self.mixer.member(call)
            return True
        except Exception:   # noqa: BLE001 - UnknownMember
            return False

    def _now(self):
        return self.ivr.clock() if self.ivr is not None else None

    def _record(self, fn) -> None:
        if self.ivr is not None:
            self.ivr.record(fn)

    def _execute(self, diffs: list) -> None:
        if self._stack is not None and diffs:
            self._stack.apply(diffs)

    def _fan_out(self, event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("listener failed on %s", event)

    def _fan_out_all(self, events: list[TalkEvent]) -> None:
        for e in events:
            self.events.append(e)
            self._fan_out(e)
