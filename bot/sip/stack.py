"""The SIP adapter: the only module that imports pjsua2.

Owns the pjsua2 owner thread (it calls `libCreate`, pumps `libHandleEvents` and is the only
thread that touches a pjsua2 object), the endpoint, transports, the one local account, calls,
player ports and the conference-bridge adapter that applies the mixer core's route diffs with
`startTransmit2` / `stopTransmit`. pjsua2 callbacks become frozen event values handed to `post`
(the composition side wraps it with `loop.call_soon_threadsafe`); commands come back through a
queue that the owner thread drains between pumps. It must not decide anything: who is answered,
who hears whom and what a digit means belong to `bot.service.voice`, `bot.conference.mixer` and `ivr`.

The pjsua2 facts this relies on are listed in `bot.sip` (the package's doc).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import pjsua2 as pj

from bot.conference.mixer import Connect, Disconnect, Relevel
from bot.config.settings import SipSettings
from bot.sip.bridge import Bridge, transmit
from bot.sip import endpoint
from bot.sip.call import LogWriter, PjAccount, PjCall
from bot.sip.levels import LevelPoll
from bot.sip.events import (AddPlayer, Answer, ApplyRoutes, BridgeReconciled,  # noqa: F401
                           CallConfirmed, CallEnded, CallMediaChanged, CallMediaReady,
                           CallOffered, CallRinging, Command, CommandFailed, DtmfMethod,
                           DtmfReceived, Hangup, LevelsSampled, MakeCall, Reconcile,
                           RecorderStopped, RemovePort, RoutesFailed, RunOnOwner, SipEvent,
                           StartRecorder, StopRecorder, StreamStats, TransferRequested, WatchLevels,
                           request_user, time_prefix)

log = logging.getLogger("confbot.sip")

PUMP_MS = 10
SWEEP_S = 2.0      # how often calls are checked for a dialog that ended unreported
# the bridge's port table: PJSUA_MAX_CONF_PORTS of scripts/pjsua2/config_site.h. pjmedia asserts
# (aborting the process) when a port is added to a full bridge, so players and recorders are
# only created while every call that may still come (sip.max_calls) keeps a port in reserve
MAX_CONF_PORTS = 1100
T = TypeVar("T")


# ---- the stack ---------------------------------------------------------------------------

class SipStack:
    """pjsua2 on its own owner thread. `post(event)` is called on that thread; `submit(cmd)` may
    be called from any thread. `start()` blocks until the stack listens (or raises)."""

    def __init__(self, settings: SipSettings, post: Callable[[SipEvent], None], *,
                 level_interval: float | None = None, conf_ports: int = MAX_CONF_PORTS,
                 call_prefix: str | None = None) -> None:
        self.settings = settings
        # call ids are "call-<prefix>-<n>": the prefix is the service run's number in the store
        # (unique across restarts: call records are keyed by call id) or, without a store,
        # the start time; n counts up within the run
        self.call_prefix = call_prefix if call_prefix is not None else time_prefix(time.time())
        self._conf_ports = conf_ports      # the bridge's size (smaller only in tests)
        self._sink = post
        self._level_interval = level_interval
        self._commands: queue.SimpleQueue[Command | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._ids = itertools.count(1)
        # strong references to every live pjsua2 object, owned by the owner thread
        self._ep: pj.Endpoint | None = None
        self._account: PjAccount | None = None
        self._writer: LogWriter | None = None
        self._calls: dict[str, PjCall] = {}
        self._ports: dict[str, pj.AudioMedia] = {}
        self._levels = LevelPoll()
        # recorder port id → (recorder, WAV path, the call it records)
        self._recorders: dict[str, tuple[pj.AudioMediaRecorder, str, str]] = {}
        self._graveyard: list[object] = []
        self._bridge = Bridge(self._ports)

    @property
    def route_failures(self) -> int:
        """Route diffs the bridge refused since start (any thread may read it)."""
        return self._bridge.failures

    # -- any thread --
    def _post(self, event: SipEvent) -> None:
        try:
            self._sink(event)
        except Exception:   # noqa: BLE001 - e.g. the asyncio loop is already closed
            log.debug("event dropped: %s", event, exc_info=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="pjsua2-owner", daemon=True)
        self._thread.start()
        # an interpreter exiting with the stack up would kill the owner thread inside C++ and abort
        atexit.register(self.stop)
        if not self._ready.wait(timeout):
            raise TimeoutError("pjsua2 did not start")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            atexit.unregister(self.stop)
            raise RuntimeError(f"SIP stack failed to start: {self._error}")

    def submit(self, command: Command) -> None:
        self._commands.put(command)

    def apply(self, diffs: Iterable[Connect | Disconnect | Relevel]) -> None:
        diffs = tuple(diffs)
        if diffs:
            self._commands.put(ApplyRoutes(diffs))

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        atexit.unregister(self.stop)
        self._commands.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("pjsua2 owner thread did not stop")
        self._thread = None

    # -- owner thread --
    def _run(self) -> None:
        try:
            self._create()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            # keep only the text: the traceback's frames would keep the Endpoint alive, and
            # pjsua2 refuses a new Endpoint while an old one exists
            self._error = exc.info() if isinstance(exc, pj.Error) else repr(exc)
            del exc
            self._destroy()
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop()
        finally:
            self._shutdown()

    def _create(self) -> None:
        self._writer = LogWriter()
        self._ep = pj.Endpoint()      # kept before it starts, so a failed start is torn down
        endpoint.start(self._ep, self.settings, self._writer, self._conf_ports)
        self._account = PjAccount(self)
        self._account.create(endpoint.account_config(self.settings), True)

    def _loop(self) -> None:
        ep = self._ep
        next_levels = next_sweep = time.monotonic()
        while True:
            ep.libHandleEvents(PUMP_MS)
            self._graveyard.clear()
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_S
                self._sweep()
            while True:
                try:
                    cmd = self._commands.get_nowait()
                except queue.Empty:
                    break
                if cmd is None:
                    return
                self._execute(cmd)
            if self._level_interval and time.monotonic() >= next_levels:
                next_levels = time.monotonic() + self._level_interval
                sampled = self._levels.sample(ep)
                if sampled is not None:
                    self._post(sampled)

    def _execute(self, cmd: Command) -> None:
        try:
            match cmd:
                case ApplyRoutes(diffs):
                    failed = self._bridge.apply(diffs)
                    if failed:
                        self._post(RoutesFailed(failed))
                case Reconcile(desired):
                    self._post(self._bridge.reconcile(desired))
                case Answer(call, code):
                    c = self._calls.get(call)
                    if c is not None:
                        op = pj.CallOpParam()
                        op.statusCode = code
                        c.answer(op)
                case Hangup(call, code):
                    c = self._calls.get(call)
                    if c is not None:
                        op = pj.CallOpParam()
                        op.statusCode = code
                        c.hangup(op)
                case MakeCall(call, uri):
                    self._make_call(call, uri)
                case AddPlayer(port, path, loop):
                    self._claim_port(f"player {port}")
                    player = pj.AudioMediaPlayer()
                    player.createPlayer(path, 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
                    self._ports[port] = player
                case StartRecorder(port, call, path):
                    self._start_recorder(port, call, path)
                case StopRecorder(port):
                    recorder, path, _call = self._recorders.pop(port, (None, "", ""))
                    del recorder   # destroying the port writes the WAV header
                    self._post(RecorderStopped(port, path))   # "" = there was no recorder
                case WatchLevels(calls, on):
                    self._levels.watch(calls, on, self._calls)
                case RemovePort(port):
                    self._graveyard.append(self._ports.pop(port, None))
                    self._bridge.forget_port(port)
                case RunOnOwner(fn):
                    fn()
        except pj.Error as exc:
            log.warning("%s failed: %s", cmd, exc.info())
            self._post(CommandFailed(cmd, exc.info()))
            self._sweep((getattr(cmd, "call", None),))   # e.g. answering a call CANCELled meanwhile
        except RuntimeError as exc:
            log.warning("%s failed: %s", cmd, exc)
            self._post(CommandFailed(cmd, str(exc)))

    def _claim_port(self, what: str) -> None:
        """Raise (→ CommandFailed) unless the bridge has a port for `what` beyond the ones
        owed to calls that may still arrive."""
        ep = self._ep
        owed = max(self.settings.max_calls - sum(1 for c in self._calls if c in self._ports), 0)
        free = ep.mediaMaxPorts() - ep.mediaActivePorts()
        if free - owed < 1:
            raise RuntimeError(f"conference bridge full ({ep.mediaActivePorts()} ports, "
                               f"{owed} kept for calls): no port for {what}")

    def new_call_id(self) -> str:
        """A fresh call id for `MakeCall` (any thread; ids are never reused)."""
        return f"call-{self.call_prefix}-{next(self._ids)}"

    def _make_call(self, call_id: str, uri: str) -> None:
        call = PjCall(self, self._account, pj.PJSUA_INVALID_ID, call_id)
        self._calls[call_id] = call
        prm = pj.CallOpParam(True)
        try:
            call.makeCall(uri, prm)
        except pj.Error as exc:
            self._calls.pop(call_id, None)
            self._graveyard.append(call)
            self._post(CallEnded(call_id, 500, exc.info()))

    def _transfer(self, call: PjCall, prm) -> None:
        new_id = self.new_call_id()
        new = PjCall(self, self._account, pj.PJSUA_INVALID_ID, new_id)
        self._calls[new_id] = new
        prm.newCall = new
        self._post(TransferRequested(call.call_id, new_id, prm.dstUri))

    def _start_recorder(self, port: str, call: str, path: str) -> None:
        media = self._ports.get(call)
        if media is None:
            raise RuntimeError(f"{call} has no audio port")
        self._claim_port(f"recorder {port}")
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(path)
        media.startTransmit(recorder)
        self._recorders[port] = (recorder, path, call)

    def _incoming(self, account: PjAccount, pj_id: int, whole_msg: str) -> None:
        call_id = self.new_call_id()
        call = PjCall(self, account, pj_id, call_id)
        self._calls[call_id] = call
        ci = call.getInfo()
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        self._post(CallOffered(call_id, request_user(whole_msg), ci.remoteUri))

    def _media_active(self, call: PjCall, media: "pj.AudioMedia") -> None:
        self._ports[call.call_id] = media
        self._bridge.forget_port(call.call_id)   # a fresh port carries no routes
        self._levels.placed(call.call_id, media.getPortId())
        # pjmedia reads (and measures) a port only while it transmits somewhere; a muted or
        # lone caller has no routes, so a silent tap into the null device (level 0) keeps its
        # getTxLevel alive for talk detection
        transmit(media, self._ep.audDevManager().getPlaybackDevMedia(), 0.0)
        if not call.media_ready:
            call.media_ready = True
            self._post(CallMediaReady(call.call_id))
            return
        # renegotiated media (re-INVITE): a fresh port, whatever its slot number says
        for recorder, _path, owner in self._recorders.values():
            if owner == call.call_id:
                media.startTransmit(recorder)
        self._post(CallMediaChanged(call.call_id))

    def _sweep(self, ids=None) -> None:
        """End each call (of `ids`, or all) whose dialog pjsua ended without a DISCONNECTED
        callback — seen in a 20,000-call soak: 7 callers CANCELled as they were answered never
        had one, and their calls outlived them — so no call outlives its SIP dialog."""
        for c in [self._calls[i] for i in (ids or self._calls) if i in self._calls]:
            if c.getId() != pj.PJSUA_INVALID_ID and not c.isActive():
                log.warning("%s: its dialog ended unreported; ended now", c.call_id)
                self._ended(c, 487, "Request Terminated")

    def _ended(self, call: PjCall, status: int, reason: str) -> None:
        self._ports.pop(call.call_id, None)
        self._bridge.forget_port(call.call_id)
        self._levels.gone(call.call_id)
        if self._calls.pop(call.call_id, None) is not None:
            self._graveyard.append(call)  # deleted after the callback returns, never inside it
            self._post(CallEnded(call.call_id, status, reason))

    def _shutdown(self) -> None:
        ep = self._ep
        try:
            ep.hangupAllCalls()
            deadline = time.monotonic() + 3.0
            while self._calls and time.monotonic() < deadline:
                ep.libHandleEvents(PUMP_MS)
        except pj.Error as exc:
            log.warning("hanging up at shutdown: %s", exc.info())
        self._calls.clear()
        self._ports.clear()
        self._bridge = Bridge(self._ports)
        self._levels.clear()
        self._recorders.clear()
        self._graveyard.clear()
        self._destroy()

    def _destroy(self) -> None:
        ep = self._ep
        if ep is None:
            return
        if self._account is not None:
            try:
                self._account.shutdown()
            except pj.Error:
                pass
            self._account = None
            for _ in range(5):
                ep.libHandleEvents(PUMP_MS)
        try:
            ep.libDestroy()
        except pj.Error as exc:
            log.warning("libDestroy: %s", exc.info())
        self._ep = None
        self._writer = None

    # -- inspection: runs on the owner thread, answers through a Future --
    def query(self, fn: Callable[[], T]) -> "concurrent.futures.Future[T]":
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                fut.set_exception(exc)
        self._commands.put(RunOnOwner(run))
        return fut

    def bridge_routes(self) -> "concurrent.futures.Future[frozenset[tuple[str, str]]]":
        """The conference bridge's actual connections between our ports, as (src, dst) port
        ids — what pjmedia mixes, to hold against what the mixer core decided."""
        return self.query(self._collect_routes)

    def _collect_routes(self) -> frozenset[tuple[str, str]]:
        return frozenset(self._bridge.read())

    def bridge_state(self) -> "concurrent.futures.Future[dict[tuple[str, str], float | None]]":
        """The bridge's connections as (src, dst) → the level we last set on it (pjmedia 2.12
        cannot report a connection's level; None: a connection we did not lay)."""
        return self.query(self._bridge.read)

    def stream_stats(self) -> "concurrent.futures.Future[dict[str, StreamStats]]":
        return self.query(self._collect_stats)

    def _collect_stats(self) -> dict[str, StreamStats]:
        out = {}
        for cid, call in self._calls.items():
            if not call.media_ready:
                continue
            try:
                st = call.getStreamStat(0)
            except pj.Error:
                continue
            rx = st.rtcp.rxStat
            out[cid] = StreamStats(rx.pkt, rx.loss, rx.jitterUsec.mean / 1000.0,
                                   float(st.jbuf.avgDelayMsec))
        return out
