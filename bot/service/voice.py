"""The voice-side service: runs the SIP adapter, feeds its events into the mixer core and the
IVR drivers, and executes the route diffs the core returns (`bot.service.bridgewatch` keeps the bridge
equal to the core: it reconciles after a failed route change and every 30 s).

Owns the call registry, the per-call event fan-out (DTMF and talk events to subscribers), the
parts it delegates to (`bot.service.members.Members`: who is where; `bot.service.announcer`:
room announcements; `bot.service.recorders`: name recorders; `bot.service.callevents`: what
each SIP event does), and — with an `IvrContext` — one `bot.service.driver.CallDriver` per call:
every answered call runs a `CallFlow` chosen by its dialled number (`ivr.routing`), waits in the
IVR holding room (a WAITING room: it hears only its own prompts) and is moved into its
conference when the flow says so. The links between calls live here too (`bot.service.switchboard`):
invitations by dial-out, the operator leg, 3PTY and REFER. Without an `IvrContext` (tests of the
bare voice path, bench/calls.py) a direct-access number joins its room at once and everything
else is refused (404; a full room 486).
It runs on the asyncio loop; the SIP adapter's owner thread reaches it only through
`loop.call_soon_threadsafe`. Must not import pjsua2 (that is `bot.sip.stack`), decide routes (that is
`bot.conference.mixer`) or interpret digits (that is `ivr`).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from bot.conference.mixer import Diff, Mixer, Role
from bot.conference.owner import HOLDING, ConferenceKind
from bot.conference.talk import TalkDetector, TalkEvent
from bot.service.talkwatch import TalkWatch
from bot.config.settings import Settings
from bot.service.announcer import Announcer
from bot.service.bridgewatch import RECONCILE_SECONDS, BridgeWatch
from bot.service.callevents import CallEvents, CallInfo
from bot.service.context import IvrContext
from bot.service.driver import CallDriver
from bot.service.lockouts import LockoutKeeper
from bot.service.members import Members
from bot.service.namefiles import NameFiles
from bot.service.recorders import Recorders
from bot.service.runs import ServiceRun
from bot.service.switchboard import Switchboard
from bot.sip.events import AddPlayer, Hangup, MakeCall, RemovePort, SipEvent, StreamStats
from bot.sip.stack import SipStack
from ivr import events as ev
from ivr.flowconfig import FlowConfig
from ivr.guard import DialOutGuard, DialOutLimits, PinGuard, PinLimits

log = logging.getLogger("confbot.voice")

EVENT_HISTORY = 10_000
HOLDING_ROOM = HOLDING        # callers in the IVR: a WAITING room, nobody hears anybody


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


class VoiceService(CallEvents):
    """`start()` brings up SIP on settings.sip; `stop()` hangs up everyone and exits cleanly."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop | None = None, *,
                 level_interval: float | None = 0.1, ivr: IvrContext | None = None,
                 reconcile_interval: float | None = RECONCILE_SECONDS) -> None:
        self.settings = settings
        self._loop = loop
        self.members = Members(self)   # the one owner of who is where (bot.conference.owner)
        self.talk = TalkDetector()
        self.talkwatch = TalkWatch(self)   # whose voices the talk poll reads
        self.ivr = ivr
        self.clock_rate = settings.sip.clock_rate
        self._stack: SipStack | None = None
        self.run: ServiceRun | None = None
        # the talk poll: a voice is reported Talking the attack time (100 ms) after the first
        # loud sample, so 100..200 ms after it starts at 0.1 s; half the poll's cost of 0.05 s
        self._level_interval = level_interval
        self._reconcile_interval = reconcile_interval
        self.bridge: BridgeWatch | None = None   # keeps the bridge equal to the mixer core
        self._calls: dict[str, CallInfo] = {}
        self.recorders = Recorders(self)
        self._recorders = self.recorders.active   # the same dict (bench/soak.py sizes it)
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
        self.announcer = Announcer(self)
        self.announcements = self.announcer.queue
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
        self.bridge = BridgeWatch(lambda: self.mixer.routes(), self._stack.submit,
                                  interval=self._reconcile_interval)
        self.bridge.start(loop)
        if self.names is not None:
            self.names.sweep()

    async def stop(self) -> None:
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        self.bridge.stop()
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
        self.drivers.clear()
        self.talkwatch.reset()
        self.members = Members(self)   # every call is gone with the stack

    def reconfigure(self, settings: Settings) -> None:
        """A reload: new calls route with the new tables; running calls keep their flows."""
        self.settings = settings
        self.flow_config = FlowConfig.from_settings(settings)
        for r in settings.rooms:      # a standing room's new maximum applies at once
            self.members.conf.set_limit(r.name, r.max_participants)

    # ---- inspection and control -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """Between `start()` and `stop()` (the SIP adapter is up)."""
        return self._stack is not None

    @property
    def mixer(self) -> Mixer:
        """The route engine inside the owner of conference state (read it; change it only
        through `members`)."""
        return self.members.conf.mixer

    def rooms(self) -> dict[str, tuple[str, ...]]:
        """Room name → the calls joined to it (in the bridge), sorted."""
        return self.members.rooms()

    def driver_of(self, call: str) -> CallDriver | None:
        return self.drivers.get(call)

    def room_of(self, call: str) -> str | None:
        seat = self.members.seat_of(call)
        return seat.conference if seat is not None else None

    def calls(self) -> dict[str, CallInfo]:
        return dict(self._calls)

    def subscribe(self, listener: Callable[[SipEvent | TalkEvent], None]) -> None:
        self._listeners.append(listener)

    def watch_talk(self, conference: str | None = None) -> Callable[[], None]:
        """Have `conference`'s (None: every conference's) `Talking` / `Silent` facts reported to
        the subscribers until the returned function is called. Unwatched voices are not polled
        (`bot.service.talkwatch`)."""
        return self.talkwatch.watch(conference)

    def set_muted(self, call: str, muted: bool | None, by: str | None = None) -> bool:
        return self.members.set_muted(call, muted, by)

    def ask(self, op: Callable, args: tuple, by: str) -> ev.AskAnswered:
        """One owner operation on `by`'s behalf (the keypad's `ivr.events.Ask`)."""
        return self.members.ask(op, args, by)

    def roll_call(self, call: str) -> ev.RollCall:
        """`call` (a moderator) asks who is in its conference."""
        return self.members.roll_call(call, self.talk.is_talking)

    def login(self, call: str, pin: str) -> ev.LoginChecked:
        """A personal PIN entered in a conference (`[[moderators]]`)."""
        return self.members.login(call, pin)

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
        """Wait until predicate() is true, re-checked after every event and every 50 ms (a
        driver's step, e.g. a join, changes state outside any SIP event)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.05)
                except TimeoutError:
                    pass

    # ---- the driver's VoicePort -----------------------------------------------------------

    def play_to(self, call: str, source: str, path: str) -> None:
        if self._stack is None or call not in self._calls or not self._is_member(call):
            return
        self.add_source(source, path, member=call, loop=False)

    def stop_source(self, source: str) -> None:
        if self._stack is None:
            return
        if self.mixer.has_source(source):
            self._execute(self.mixer.remove_source(source))
        self._stack.submit(RemovePort(source))   # the mixer may have dropped it with its member

    def announce(self, room: str, path: str, seconds: float, exclude: str | None = None) -> None:
        """Play a WAV into a room once the room's previous announcement has played (see
        `bot.service.announcer`: one at a time per room, duplicates of a burst dropped); not to
        `exclude` (the caller it is about)."""
        self.announcer.announce(room, path, seconds, exclude)

    def join_room(self, call: str, room: str, role: Role, muted: bool, limit: int | None,
                  name: str | None = None, kind: ConferenceKind | None = None) -> ev.JoinResult:
        if call not in self._calls or not self._is_member(call):
            return ev.JoinResult(ev.JoinOutcome.FULL)
        return self.members.join(call, room, role, muted, limit, name, kind)

    def leave_room(self, call: str) -> None:
        """Back to the holding room: the caller still hears its own prompts (a goodbye)."""
        self.members.leave(call)

    def assign_name(self, room: str, position: int, path: str, by: str) -> bool:
        """A moderator (`by`) names the member of `room` in seat `position` (0: the last who
        joined). False when there is nobody such."""
        return self.members.assign_name(room, position, path, by)

    def room_count(self, room: str) -> int:
        return self.members.count(room)

    def start_recording(self, call: str, path: str) -> asyncio.Future:
        return self.recorders.start(call, path)

    def stop_recording(self, call: str) -> None:
        self.recorders.stop(call)

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

    # ---- helpers ---------------------------------------------------------------------------

    def _is_member(self, call: str) -> bool:
        return self.members.conf.knows(call)

    def _now(self):
        return self.ivr.clock() if self.ivr is not None else None

    def _record(self, fn) -> None:
        if self.ivr is not None:
            self.ivr.record(fn)

    def _submit(self, command) -> None:
        if self._stack is not None:
            self._stack.submit(command)

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
