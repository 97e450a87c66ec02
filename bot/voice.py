"""The voice-side service: runs the SIP adapter, feeds its events into the mixer core and
executes the route diffs the core returns.

Owns: the direct-access route (a dialled user part from `settings.dialin` with `Route.DIRECT`
→ a room; a full room → 486 Busy Here), the call → member bookkeeping, and the per-call event
fan-out (DTMF and talk events to subscribers such as the IVR driver). It runs on the asyncio
loop; the SIP adapter's owner thread reaches it only through `loop.call_soon_threadsafe`.
Must not import pjsua2 (that is `bot.sip`), decide routes (that is `bot.mixer`) or interpret
digits (that is `ivr`).
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.mixer import Diff, Mixer, Role
from bot.settings import Route, Settings
from bot.sip import (AddPlayer, Answer, CallEnded, CallMediaReady, CallOffered, CommandFailed,
                     DtmfReceived, Hangup, LevelsSampled, RemovePort, SipEvent, SipStack,
                     StreamStats)
from bot.talk import TalkDetector, TalkEvent

log = logging.getLogger("confbot.voice")

BUSY, NOT_FOUND = 486, 404
EVENT_HISTORY = 10_000


@dataclass(frozen=True, slots=True)
class CallInfo:
    call: str
    dialled: str
    caller: str
    room: str | None       # the room it is in (or answered for); None before routing


class VoiceService:
    """`start()` brings up SIP on settings.sip; `stop()` hangs up everyone and exits cleanly."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop | None = None, *,
                 level_interval: float | None = 0.05) -> None:
        self.settings = settings
        self._loop = loop
        self.mixer = Mixer()
        self.talk = TalkDetector()
        self._stack: SipStack | None = None
        self._level_interval = level_interval
        self._calls: dict[str, CallInfo] = {}
        self._joined: set[str] = set()
        self._listeners: list[Callable[[SipEvent | TalkEvent], None]] = []
        # the recent events (bounded: a long-running service must not grow), for views and tests
        self.events: deque[SipEvent | TalkEvent] = deque(maxlen=EVENT_HISTORY)
        self._changed = asyncio.Event()

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self._stack = SipStack(self.settings.sip, self._post_threadsafe,
                               level_interval=self._level_interval)
        await loop.run_in_executor(None, self._stack.start)

    async def stop(self) -> None:
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        await self._loop.run_in_executor(None, stack.stop)
        self._calls.clear()
        self._joined.clear()
        self.mixer = Mixer()   # every call is gone with the stack

    def reconfigure(self, settings: Settings) -> None:
        """A reload: new calls route with the new tables; running calls keep their rooms."""
        self.settings = settings

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
        self._execute(self.mixer.set_muted(call, muted))

    def apply(self, diffs: list[Diff]) -> None:
        """Execute the diffs a mixer operation returned: `v.apply(v.mixer.whisper(a, b))`.
        Call it right after the operation, on the loop, so the bridge never lags the core."""
        self._execute(diffs)

    def add_source(self, source_id: str, wav_path: str, *, room: str | None = None,
                   member: str | None = None, loop: bool = True) -> None:
        """A player (announcement into a room, or a prompt / hold music for one member)."""
        diffs = self.mixer.add_source(source_id, room=room, member=member)  # validates first
        self._stack.submit(AddPlayer(source_id, wav_path, loop))
        self._execute(diffs)

    def remove_source(self, source_id: str) -> None:
        diffs = self.mixer.remove_source(source_id)
        self._execute(diffs)
        self._stack.submit(RemovePort(source_id))

    def hangup(self, call: str, code: int = 603) -> None:
        if self._stack is not None:
            self._stack.submit(Hangup(call, code))

    async def stream_stats(self) -> dict[str, StreamStats]:
        """Per call: pjsua2's receive statistics (packets, loss, jitter, jitter-buffer delay)."""
        return await asyncio.wrap_future(self._stack.stream_stats())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until predicate() is true, re-checked after every event."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

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
                self.hangup(call, 500)
        self._changed.set()

    def _dispatch(self, event: SipEvent) -> None:
        if not isinstance(event, LevelsSampled):
            self.events.append(event)
        match event:
            case CallOffered(call, dialled, caller):
                self._offered(call, dialled, caller)
            case CallMediaReady(call):
                info = self._calls.get(call)
                if info is not None and info.room is not None and call not in self._joined:
                    self._joined.add(call)
                    self._execute(self.mixer.join(call, info.room, Role.PARTICIPANT))
            case CallEnded(call):
                self._calls.pop(call, None)
                if call in self._joined:
                    self._joined.discard(call)
                    self._execute(self.mixer.leave(call))
                self._fan_out_all(self.talk.forget(call))
            case LevelsSampled(at_ms, levels):
                joined = {c: lv for c, lv in levels if c in self._joined}
                self._fan_out_all(self.talk.feed_all(joined, at_ms))
                return
            case CommandFailed():
                pass
            case DtmfReceived():
                pass
        self._fan_out(event)

    def _offered(self, call: str, dialled: str, caller: str) -> None:
        entry = self.settings.dialin_by_user(dialled)
        if entry is None or entry.route is not Route.DIRECT or entry.room is None:
            # PIN, menu and operator routes belong to the IVR (next issue)
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
