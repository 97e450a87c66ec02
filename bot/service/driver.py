"""The IVR driver: one per call, it executes a call flow's actions and feeds the answers back.

Owns `CallDriver` (the driver contract of `ivr.events`: prompts queued per caller and reported
finished when their audio has played, actions that wait for the queue to drain, asyncio timers,
PIN look-ups and call records on the store's own worker thread, name recordings trimmed off the
loop, one exception barrier per call) and `VoicePort`, the few operations it needs from the
voice service. What the drivers share is `bot.service.context.IvrContext`; prompts become WAVs
in `bot.service.prompts` (`Prompts`, `trim_name`). Must not import pjsua2 or touch the bridge:
`bot.service.voice` owns calls, rooms and the SIP adapter; the flows (`ivr.flow`, `ivr.invitee`)
decide.

Speech input (when the context has a model): each driver owns an `ivr.speech.tap.SpeechInput`, shown
every action list after it ran; it listens with the grammar of the menu asked (from
`IvrContext.grammars`, in the call's current language) and its results are fed to the flow like
keys. A name recording first pauses it (the voice service has one recorder per call).

End of a prompt: the player is removed and `PromptFinished` fed when the WAV's known duration has
elapsed (pjsua2's onEof2 runs on the media clock thread; see `bot.sip.stack`).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.conference.owner import ConferenceKind
from bot.conference.rooms import Role
from bot.service.context import IvrContext
from bot.service.prompts import Prompts, trim_name  # noqa: F401 - Prompts: re-exported
from ivr import events as ev
from ivr.speech.tap import SpeechInput

log = logging.getLogger("confbot.ivr")

PIN_MARGIN = timedelta(hours=24)     # PinChecked wants bookings near the window, not only inside
_LOG_LEVELS = {ev.Level.DEBUG: logging.DEBUG, ev.Level.INFO: logging.INFO,
               ev.Level.WARNING: logging.WARNING, ev.Level.ERROR: logging.ERROR}


class VoicePort(Protocol):
    """What a driver asks of the voice service (all on the event loop, none blocking)."""
    clock_rate: int

    def play_to(self, call: str, source: str, path: str) -> None: ...
    def stop_source(self, source: str) -> None: ...
    def announce(self, room: str, path: str, seconds: float, exclude: str | None = None) -> None: ...
    def join_room(self, call: str, room: str, role: Role, muted: bool, limit: int | None,
                  name: str | None = None, kind: ConferenceKind | None = None
                  ) -> ev.JoinResult: ...
    def assign_name(self, room: str, position: int, path: str, by: str) -> bool: ...
    def leave_room(self, call: str) -> None: ...
    def ask(self, op: Callable, args: tuple, by: str) -> ev.AskAnswered: ...
    def login(self, call: str, pin: str) -> ev.LoginChecked: ...
    def roll_call(self, call: str) -> ev.RollCall: ...
    def room_count(self, room: str) -> int: ...
    def start_recording(self, call: str, path: str) -> "asyncio.Future[str]": ...
    def stop_recording(self, call: str) -> None: ...
    def dial_out(self, driver: "CallDriver", action: ev.DialOut) -> None: ...
    def bridge_invitee(self, call: str, room: str) -> None: ...
    def notify_inviter(self, driver: "CallDriver", outcome: ev.DialOutcome) -> None: ...
    def transfer_to_operator(self, driver: "CallDriver", uri: str) -> None: ...
    def hangup(self, call: str, code: int = 603, cause: str | None = None) -> None: ...


@dataclass
class _Audio:
    token: int
    barge_in: bool
    task: asyncio.Future
    waiting: bool = False


@dataclass
class _Deferred:
    action: object


_ids = itertools.count(1)


class CallDriver:
    """Runs one flow (`CallFlow` or `InviteeFlow`) on one call. `feed(event)` is the only entry."""

    def __init__(self, call: str, flow, voice: VoicePort, ctx: IvrContext) -> None:
        self.call, self.flow, self.voice, self.ctx = call, flow, voice, ctx
        self.lang = ctx.default_language
        self.closed = False          # the flow reached its end, or the barrier ended the call
        self.failed = False
        self._queue: deque[_Audio | _Deferred] = deque()
        self._current: tuple[int, str, asyncio.TimerHandle] | None = None
        self._timers: dict[ev.Timer, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Future] = set()
        self._recording = False
        self._recording_ended: asyncio.Event | None = None    # set by EndRecording ('#')
        self.on_closed: Callable[[CallDriver], None] | None = None
        self.history: list[object] = []      # actions executed, bounded (for views and tests)
        self.recordings: list[str] = []      # name recordings this call made (bot.service.namefiles)
        self.speech: SpeechInput | None = None
        if ctx.speech is not None:
            self.speech = SpeechInput(
                call, voice, lambda menu: ctx.recognizer(menu, self.lang, voice.clock_rate),
                self._heard, sample_rate=voice.clock_rate, directory=ctx.speech_dir)

    # ---- the entry point and the barrier ------------------------------------------------

    def feed(self, event) -> None:
        if self.closed:
            return
        try:
            actions = self.flow.handle(event)
            self._execute(actions)
            if self.speech is not None:
                self.speech.after(actions)
        except Exception as exc:   # STYLE lesson 9: a bug ends this call, never the service
            self._fail(exc, event)
        if getattr(self.flow.state, "value", "") == "ended":
            self._close()

    def _heard(self, event: ev.SpeechRecognized) -> None:
        """The tap's result: spoken keys go to the flow exactly like pressed ones."""
        if event.keyword is None:
            log.info("call %s: heard %r, which is no choice here", self.call, event.text)
        self.feed(event)

    def feed_soon(self, event) -> None:
        """Answers are fed after the current action list has run, never re-entrantly."""
        asyncio.get_running_loop().call_soon(self.feed, event)

    def _fail(self, exc: BaseException, where: object) -> None:
        log.error("call %s: %s: %s (while handling %r)", self.call, type(exc).__name__, exc, where,
                  exc_info=exc)
        if self.failed:
            self.voice.hangup(self.call, cause="error")
            return
        self.failed = self.closed = True
        self._stop_speech()
        self._stop_audio()
        self._cancel_timers()
        try:
            self.voice.leave_room(self.call)
        except Exception:   # noqa: BLE001 - the call ends regardless
            log.exception("call %s: leaving the room after a failure", self.call)
        task = asyncio.ensure_future(self.ctx.prompts.wav(ev.PromptId.ERROR_APOLOGY, (), self.lang))

        def apologise(t: asyncio.Future) -> None:
            if t.cancelled() or t.exception() is not None:
                self.voice.hangup(self.call, cause="error")
                return
            path, seconds = t.result()
            source = f"p{next(_ids)}-{self.call}"
            self.voice.play_to(self.call, source, path)
            asyncio.get_running_loop().call_later(seconds + 0.1,
                                                lambda: self.voice.hangup(self.call, cause="error"))
        task.add_done_callback(apologise)

    def _guard(self, fn: Callable[[], None], where: object) -> None:
        try:
            fn()
        except Exception as exc:
            self._fail(exc, where)

    def _spawn(self, coro, where: object) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Future) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                self._fail(t.exception(), where)
        task.add_done_callback(done)

    def ended(self, reason: str) -> None:
        """The SIP call is gone: tell the flow, drop audio and timers."""
        if not self.closed:
            self.feed(ev.CallEnded(reason))
        self._close()

    def _close(self) -> None:
        self.closed = True
        self._stop_speech()
        self._stop_audio()
        self._cancel_timers()
        for t in list(self._tasks):
            t.cancel()
        if self._recording:
            self._recording = False
            self.voice.stop_recording(self.call)
        if self.on_closed is not None:
            cb, self.on_closed = self.on_closed, None
            cb(self)

    # ---- actions --------------------------------------------------------------------------

    def _execute(self, actions: list) -> None:
        for a in actions:
            if len(self.history) < 500:
                self.history.append(a)
            if getattr(a, "waits_for_prompts", False) and self._queue_busy():
                self._queue.append(_Deferred(a))
                continue
            self._do(a)

    def _queue_busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def _do(self, a) -> None:
        match a:
            case ev.Play(prompt, params, barge_in, token):
                self._enqueue(token, barge_in, self.ctx.prompts.wav(prompt, params, self.lang))
            case ev.PlayFile(path, barge_in, token):
                self._enqueue(token, barge_in, self.ctx.prompts.file(path))
            case ev.StopPlayback():
                self._stop_audio()
            case ev.CollectDigits():
                pass    # digits arrive one by one; the declaration is for the speech grammar
            case ev.StartTimer(name, ms):
                self._cancel_timer(name)
                self._timers[name] = asyncio.get_running_loop().call_later(
                    ms / 1000, self._timer_fired, name)
            case ev.CancelTimer(name):
                self._cancel_timer(name)
            case ev.SetLanguage(language):
                self.lang = language
            case ev.Log(level, message):
                log.log(_LOG_LEVELS[level], "%s", message)
            case ev.CheckPin(pin):
                self._spawn(self._check_pin(pin), a)
            case ev.RecordCdr():
                self.ctx.record(lambda s: s.call_admitted(
                    a.call_id, tariff=a.tariff.value if a.tariff else None, booking=a.booking,
                    role=a.role.value))
            case ev.JoinRoom(room, role, muted, name):
                result = self.voice.join_room(self.call, room, role, muted, self._limit(room),
                                              name=name, kind=self._kind(room))
                self.feed_soon(result)
            case ev.AssignName(room, position, path):
                self.feed_soon(ev.NameAssigned(self.voice.assign_name(room, position, path,
                                                                      self.call)))
            case ev.LeaveRoom():
                self.voice.leave_room(self.call)
            case ev.Ask(op, args):
                self.feed_soon(self.voice.ask(op, args, by=self.call))
            case ev.CheckLogin(pin):
                self.feed_soon(self.voice.login(self.call, pin))
            case ev.QueryRoll():
                self.feed_soon(self.voice.roll_call(self.call))
            case ev.QueryRoomCount(room):
                self.feed_soon(ev.RoomCount(self.voice.room_count(room)))
            case ev.AnnounceToRoom(room, prompt, params):
                # the room's, not this call's: a leave announcement is rendered and played
                # after the call is gone, so closing the call must not cancel it
                self.ctx.keep(asyncio.ensure_future(self._announce(room, prompt, params)))
            case ev.RecordName(max_ms):
                self._spawn(self._record(max_ms), a)
            case ev.EndRecording():
                if self._recording_ended is not None:
                    self._recording_ended.set()
            case ev.DialOut():
                self.voice.dial_out(self, a)
            case ev.BridgeInvitee(call_id, room):
                self.voice.bridge_invitee(call_id, room)
            case ev.NotifyInviter(outcome):
                self.voice.notify_inviter(self, outcome)
            case ev.TransferToOperator(uri):
                self.voice.transfer_to_operator(self, uri)
            case ev.Hangup(reason):
                self.voice.hangup(self.call, cause=reason)
            case _:
                raise TypeError(f"unknown action {a!r}")

    def _kind(self, room: str) -> ConferenceKind | None:
        booking = getattr(self.flow, "booking", None)
        if booking is not None and booking.reference == room:
            return ConferenceKind.BOOKED
        if getattr(self.flow, "threeway", False):
            return ConferenceKind.ADHOC
        return None          # a [[rooms]] room (or, unknown there, an ad-hoc one)

    def _limit(self, room: str) -> int | None:
        booking = getattr(self.flow, "booking", None)
        if booking is not None and booking.reference == room:
            return booking.participants
        if getattr(self.flow, "threeway", False):
            return self.ctx.threeway_parties
        return None

    async def _check_pin(self, pin: str) -> None:
        at = self.ctx.clock()
        store = self.ctx.store
        hit = None
        if store is not None:
            loop = asyncio.get_running_loop()
            hit = await loop.run_in_executor(self.ctx.pin_executor, store.lookup_pin, pin, at,
                                             PIN_MARGIN)
        booking, moderator = hit if hit is not None else (None, False)
        self.feed(ev.PinChecked(booking, moderator, at))

    async def _announce(self, room: str, prompt: ev.PromptId, params: ev.Params) -> None:
        """Into the room for the others (the joiner hears its welcome, not its own name)."""
        try:
            path, seconds = await self.ctx.prompts.wav(prompt, params, self.lang)
            self.voice.announce(room, path, seconds, exclude=self.call)
        except Exception:   # noqa: BLE001 - a lost announcement must not end anyone's call
            log.exception("call %s: announcement %s into %r failed", self.call, prompt.value, room)

    def _stop_speech(self) -> None:
        if self.speech is not None and not self.speech.closed:
            self.ctx.keep(self.speech.close())

    async def _record(self, max_ms: int) -> None:
        if self.speech is not None:
            await self.speech.pause()       # one recorder per call: the speech one goes first
        self.ctx.names_dir.mkdir(parents=True, exist_ok=True)
        path = str(self.ctx.names_dir / f"{self.call}-{next(_ids)}.wav")
        self.recordings.append(path)
        done = self.voice.start_recording(self.call, path)
        self._recording = True
        ended = self._recording_ended = asyncio.Event()
        try:
            await asyncio.wait_for(ended.wait(), max_ms / 1000)    # '#' or the time limit
        except TimeoutError:
            pass
        self._recording_ended = None
        self._recording = False
        self.voice.stop_recording(self.call)
        written = await done
        result: tuple[str | None, int] = (None, 0)
        if written:
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(None, trim_name, written, self.voice.clock_rate)
            except (OSError, ValueError, EOFError) as exc:   # a broken file is a failed recording
                log.warning("call %s: name recording unusable: %s", self.call, exc)
        self.feed(ev.RecordingDone(*result))

    # ---- the per-caller audio queue --------------------------------------------------------

    def _enqueue(self, token: int, barge_in: bool, coro) -> None:
        self._queue.append(_Audio(token, barge_in, asyncio.ensure_future(coro)))
        self._pump()

    def _pump(self) -> None:
        while self._current is None and self._queue and not self.closed:
            item = self._queue[0]
            if isinstance(item, _Deferred):
                self._queue.popleft()
                self._do(item.action)
                continue
            if not item.task.done():
                if not item.waiting:
                    item.waiting = True
                    item.task.add_done_callback(lambda _t: self._guard(self._pump, "prompt"))
                return
            self._queue.popleft()
            path, seconds = item.task.result()      # a render error → the barrier
            source = f"p{next(_ids)}-{self.call}"
            self.voice.play_to(self.call, source, path)
            handle = asyncio.get_running_loop().call_later(seconds, self._played, item.token, source)
            self._current = (item.token, source, handle)

    def _played(self, token: int, source: str) -> None:
        self._current = None
        self.voice.stop_source(source)
        self.feed(ev.PromptFinished(token))
        self._guard(self._pump, "prompt")

    def _stop_audio(self) -> None:
        """StopPlayback: the playing and queued audio go (no PromptFinished for them); actions
        that were waiting for the audio to drain run now, in order."""
        if self._current is not None:
            _token, source, handle = self._current
            self._current = None
            handle.cancel()
            self.voice.stop_source(source)
        queued, self._queue = self._queue, deque()
        for item in queued:
            if isinstance(item, _Audio):
                item.task.cancel()
            elif not self.closed:
                self._do(item.action)

    # ---- timers ----------------------------------------------------------------------------

    def _timer_fired(self, name: ev.Timer) -> None:
        self._timers.pop(name, None)
        self.feed(ev.TimerFired(name))

    def _cancel_timer(self, name: ev.Timer) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
