"""The SIP adapter's route path against a fake pjmedia bridge that fails chosen operations, and
the service's reconcile loop (`bot.service.bridgewatch`) driving it: a batch never stops half-way, every
failure is reported and counted, and the reconcile repairs what failed (milliseconds; the real
bridge with real phones is tests/test_sip_reconcile.py).

The fake ports behave like pjsua2's AudioMedia on the points the adapter relies on:
`startTransmit2` on an existing route keeps its level, `stopTransmit` of a missing route is no
error, `getPortInfo().listeners` lists the sinks' slots."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pj = pytest.importorskip("pjsua2", reason="run scripts/build-pjsua2.sh --install")

from bot.service.bridgewatch import BridgeWatch  # noqa: E402
from bot.conference.mixer import (Connect, Direction, Disconnect, Mixer, MixerError,  # noqa: E402
                       Relevel, Route)
from bot.config.settings import SipSettings  # noqa: E402
from bot.sip.stack import SipStack  # noqa: E402
from bot.sip.events import (ApplyRoutes, BridgeReconciled, Reconcile,  # noqa: E402
                           RoutesFailed)


class FakeConf:
    """A conference bridge: routes by slot, a history of states, operations that fail."""

    def __init__(self) -> None:
        self.routes: dict[tuple[int, int], float] = {}
        self.history: list[dict[tuple[str, str], float]] = []
        self.fail: set[tuple[str, str, str]] = set()    # (op, src, dst) that raise, once each
        self.names: dict[int, str] = {}

    def check(self, op: str, src: FakePort, dst: FakePort) -> None:
        key = (op, src.name, dst.name)
        if key in self.fail:
            self.fail.discard(key)
            err = pj.Error()
            err.status, err.title, err.reason = 70004, op, f"injected {op} failure"
            raise err

    def state(self) -> dict[tuple[str, str], float]:
        return {(self.names[s], self.names[d]): lv for (s, d), lv in self.routes.items()}

    def record(self) -> None:
        self.history.append(self.state())


class FakePort:
    def __init__(self, conf: FakeConf, slot: int, name: str) -> None:
        self.conf, self.slot, self.name = conf, slot, name
        conf.names[slot] = name

    def getPortId(self) -> int:
        return self.slot

    def getPortInfo(self):
        return SimpleNamespace(listeners=[d for (s, d) in self.conf.routes if s == self.slot])

    def startTransmit2(self, dst: FakePort, prm) -> None:
        self.conf.check("start", self, dst)
        self.conf.routes.setdefault((self.slot, dst.slot), prm.level)
        self.conf.record()

    def stopTransmit(self, dst: FakePort) -> None:
        self.conf.check("stop", self, dst)
        self.conf.routes.pop((self.slot, dst.slot), None)
        self.conf.record()


def fake_stack(names: str = "abc") -> tuple[SipStack, FakeConf, list]:
    """A SipStack that is never started: its owner-thread half runs here, on fake ports."""
    events: list = []
    stack = SipStack(SipSettings(), events.append)
    conf = FakeConf()
    for slot, n in enumerate(names, 1):
        stack._ports[n] = FakePort(conf, slot, n)
    return stack, conf, events


def levels(routes) -> dict[tuple[str, str], float]:
    return {(r.src, r.dst): r.level for r in routes}


def test_a_failing_diff_does_not_stop_the_batch_and_every_failure_is_reported():
    stack, conf, events = fake_stack()
    conf.fail |= {("start", "a", "b"), ("start", "b", "c")}
    stack._execute(ApplyRoutes((Connect("a", "b", 1.0), Connect("a", "c", 1.0),
                                Connect("b", "c", 1.0), Connect("c", "a", 0.5))))
    assert conf.state() == {("a", "c"): 1.0, ("c", "a"): 0.5}     # the rest was applied
    [report] = events
    assert isinstance(report, RoutesFailed)
    assert [d for d, _err in report.failed] == [Connect("a", "b", 1.0), Connect("b", "c", 1.0)]
    assert all("injected start failure" in err for _d, err in report.failed)
    assert stack.route_failures == 2


def test_a_connect_to_a_port_the_bridge_lacks_is_reported_not_skipped():
    stack, conf, events = fake_stack("ab")
    stack._execute(ApplyRoutes((Connect("a", "x", 1.0), Connect("a", "b", 1.0),
                                Disconnect("x", "b"))))
    assert conf.state() == {("a", "b"): 1.0}
    [report] = events
    assert report.failed == ((Connect("a", "x", 1.0), "no port x in the bridge"),)


def test_a_concatenated_batch_never_lays_a_route_of_neither_state():
    # a join and a mute as two operations' diffs in one batch, connects listed first
    stack, conf, events = fake_stack()
    m = Mixer()
    stack._execute(ApplyRoutes(tuple(m.join("b", "r") + m.join("c", "r"))))
    before = conf.state()
    assert before == {("b", "c"): 1.0, ("c", "b"): 1.0}
    batch = (m.join("a", "r") + m.set_muted("a", True) + m.move("c", "s"))
    after = levels(m.routes())
    conf.history.clear()
    stack._execute(ApplyRoutes(tuple(batch)))
    assert conf.state() == after and not events
    for state in conf.history:
        assert state.keys() <= before.keys() | after.keys()   # a → b (muted) never laid
        assert len(state) <= max(len(before), len(after))     # disconnects went first


def test_a_failed_restart_inside_a_relevel_leaves_the_route_gone_until_the_reconcile():
    stack, conf, events = fake_stack()
    stack._execute(ApplyRoutes((Connect("a", "b", 1.0), Connect("b", "a", 1.0))))
    conf.fail.add(("start", "a", "b"))
    stack._execute(ApplyRoutes((Relevel("a", "b", 0.5), Relevel("b", "a", 0.5))))
    assert conf.state() == {("b", "a"): 0.5}
    assert isinstance(events[-1], RoutesFailed)
    desired = frozenset({Route("a", "b", 0.5), Route("b", "a", 0.5)})
    stack._execute(Reconcile(desired))
    assert conf.state() == {("a", "b"): 0.5, ("b", "a"): 0.5}
    assert events[-1] == BridgeReconciled((Connect("a", "b", 0.5),), (), ())


def test_the_reconcile_relevels_a_route_whose_stop_failed_and_drops_one_laid_behind_its_back():
    stack, conf, events = fake_stack()
    stack._execute(ApplyRoutes((Connect("a", "b", 1.0),)))
    conf.fail.add(("stop", "a", "b"))
    stack._execute(ApplyRoutes((Relevel("a", "b", 0.5),)))       # level still 1.0
    stack._ports["c"].startTransmit2(stack._ports["a"], SimpleNamespace(level=1.0))
    stack._execute(Reconcile(frozenset({Route("a", "b", 0.5), Route("x", "a", 1.0)})))
    assert conf.state() == {("a", "b"): 0.5}
    assert events[-1] == BridgeReconciled((Disconnect("c", "a"), Relevel("a", "b", 0.5)), (),
                                          (Route("x", "a", 1.0),))


class OwnerThread:
    """Runs the fake stack's commands soon after submission and posts its events back to the
    watch, in order — as bot.service.voice does with the real owner thread."""

    def __init__(self, stack: SipStack, events: list, watch_of) -> None:
        self.stack, self.events, self.watch_of = stack, events, watch_of

    def submit(self, cmd) -> None:
        asyncio.get_running_loop().call_soon(self._run, cmd)

    def _run(self, cmd) -> None:
        n = len(self.events)
        self.stack._execute(cmd)
        for e in self.events[n:]:
            if isinstance(e, (RoutesFailed, BridgeReconciled)):
                self.watch_of().on_event(e)


def test_the_watch_reconciles_after_a_failure_report_and_periodically():
    stack, conf, events = fake_stack()
    m = Mixer()
    for x in "abc":
        m.join(x, "r")
    owner = OwnerThread(stack, events, lambda: watch)
    watch = BridgeWatch(m.routes, owner.submit, interval=0.2, retry=0.02)

    async def run():
        watch.start(asyncio.get_running_loop())
        try:
            conf.fail |= {("start", "a", "b"), ("start", "c", "a")}
            owner.submit(ApplyRoutes(tuple(Connect(r.src, r.dst, r.level) for r in m.routes())))
            await asyncio.sleep(0.1)              # the failure's retry fired, not the period
            after_failure = (watch.failed_ops, watch.reconciles, watch.repaired, conf.state())
            # a route stopped behind the core's back: only the periodic check can see it
            stack._ports["b"].stopTransmit(stack._ports["c"])
            await asyncio.sleep(0.3)
            return after_failure
        finally:
            watch.stop()

    failed_ops, reconciles, repaired, state = asyncio.run(run())
    assert failed_ops == 2 and reconciles == 1 and repaired == 2
    assert state == levels(m.routes())
    assert conf.state() == levels(m.routes())
    assert watch.reconciles >= 2 and watch.repaired == 3
    assert stack.route_failures == 2


def test_a_repair_that_keeps_failing_is_retried_ever_less_often():
    stack, conf, events = fake_stack("ab")
    owner = OwnerThread(stack, events, lambda: watch)
    desired = frozenset({Route("a", "x", 1.0), Route("a", "b", 1.0)})
    watch = BridgeWatch(lambda: desired, owner.submit, interval=None, retry=0.01)

    class AlwaysFails(set):
        def __contains__(self, key):
            return key == ("start", "a", "b")

        def discard(self, key):
            pass
    conf.fail = AlwaysFails()

    async def run():
        watch.start(asyncio.get_running_loop())
        watch.check()
        await asyncio.sleep(0.5)
        watch.stop()

    asyncio.run(run())
    # delays 0.01, 0.02, 0.04, ... 0.32: about 6 in 0.5 s, not 50
    assert 3 <= watch.reconciles <= 8
    assert watch.unreachable == watch.reconciles      # a → x: no port x, reported each time
    assert watch.failed_ops == watch.reconciles and watch.repaired == 0


OPS = st.one_of(
    st.tuples(st.just("join"), st.sampled_from("abcde"), st.sampled_from("rs")),
    st.tuples(st.just("move"), st.sampled_from("abcde"), st.sampled_from("rs")),
    st.tuples(st.just("leave"), st.sampled_from("abcde")),
    st.tuples(st.just("mute"), st.sampled_from("abcde"), st.booleans()),
    st.tuples(st.just("listen"), st.sampled_from("abcde"), st.booleans()),
    st.tuples(st.just("deaf"), st.sampled_from("abcde"), st.booleans()),
    st.tuples(st.just("volume"), st.sampled_from("abcde"), st.integers(-3, 3),
              st.sampled_from(list(Direction))),
    st.tuples(st.just("whisper"), st.sampled_from("abcde"), st.sampled_from("abcde")),
)


def run_op(m: Mixer, op: tuple) -> list:
    match op:
        case ("join", x, room):
            return m.join(x, room)
        case ("move", x, room):
            return m.move(x, room)
        case ("leave", x):
            return m.leave(x)
        case ("mute", x, on):
            return m.set_muted(x, on)
        case ("listen", x, on):
            return m.set_listening(x, on)
        case ("deaf", x, on):
            return m.set_deaf(x, on)
        case ("volume", x, steps, direction):
            return m.set_volume(x, steps, direction)
        case ("whisper", x, y):
            return m.whisper(x, y)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(OPS, min_size=1, max_size=4), max_size=12))
def test_random_operations_batched_reach_the_core_through_only_before_or_after_routes(batches):
    """Several mixer operations' diffs per batch (what a compound operation was before it had
    one net diff): after every batch the bridge holds exactly the core's routes, and no state in
    between holds a route of neither the state before the batch nor after it."""
    stack, conf, events = fake_stack("abcde")
    m = Mixer()
    for batch_ops in batches:
        before = conf.state()
        diffs = []
        for op in batch_ops:
            try:
                diffs += run_op(m, op)
            except MixerError:
                pass
        after = levels(m.routes())
        conf.history.clear()
        stack._execute(ApplyRoutes(tuple(diffs)))
        state = conf.state()      # levels as pjsua2 holds them: C floats
        assert state.keys() == after.keys() and not events
        assert all(abs(state[k] - after[k]) < 1e-6 for k in after)
        for state in conf.history:
            assert state.keys() <= before.keys() | after.keys()
