"""Bridge reconciliation, pure (milliseconds): a batch's net order and the repair of a drifted
bridge, by example and as properties over random desired/actual route sets.

The bridge model used as the oracle is pjmedia's: a connect of an existing route keeps its level,
a disconnect of a missing one does nothing; a relevel is stop-then-start."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.conference.mixer import Connect, Disconnect, Relevel, Route
from bot.conference.reconcile import Ledger, net, repair

IDS = "abcde"
LEVELS = (0.0, 0.5, 1.0, 1.41)
pairs_st = st.tuples(st.sampled_from(IDS), st.sampled_from(IDS)).filter(lambda p: p[0] != p[1])


def bridge_steps(start: dict, diffs) -> list[dict]:
    """Every state a pjmedia bridge passes through applying `diffs` (a relevel is two steps)."""
    state, out = dict(start), [dict(start)]
    for d in diffs:
        key = (d.src, d.dst)
        if isinstance(d, (Disconnect, Relevel)):
            state.pop(key, None)
            out.append(dict(state))
        if isinstance(d, (Connect, Relevel)):
            state.setdefault(key, d.level)
            out.append(dict(state))
    return out


def kinds_in_order(diffs) -> bool:
    rank = [{Disconnect: 0, Relevel: 1, Connect: 2}[type(d)] for d in diffs]
    return rank == sorted(rank)


# ---- net ---------------------------------------------------------------------------------

def test_a_batch_is_reordered_disconnects_then_relevels_then_connects():
    batch = [Connect("c", "a", 1.0), Relevel("b", "a", 0.5), Disconnect("b", "c"),
             Connect("a", "c", 1.0), Disconnect("c", "b")]
    assert net(batch) == (Disconnect("b", "c"), Disconnect("c", "b"), Relevel("b", "a", 0.5),
                          Connect("c", "a", 1.0), Connect("a", "c", 1.0))


def test_join_then_mute_concatenated_never_connects_the_muted_talker():
    # join(a) then set_muted(a) as two diffs in one batch: a → b must never be laid
    batch = [Connect("a", "b", 1.0), Connect("b", "a", 1.0), Disconnect("a", "b")]
    assert net(batch) == (Connect("b", "a", 1.0),)
    assert all(("a", "b") not in s for s in bridge_steps({}, net(batch)))


def test_a_route_disconnected_then_connected_again_is_one_relevel():
    assert net([Disconnect("a", "b"), Connect("a", "b", 0.5)]) == (Relevel("a", "b", 0.5),)
    assert net([Relevel("a", "b", 0.5), Relevel("a", "b", 1.0)]) == (Relevel("a", "b", 1.0),)


@st.composite
def start_and_batch(draw):
    """A bridge state and a strictly valid diff sequence from it (several operations'
    diffs concatenated)."""
    state = draw(st.dictionaries(pairs_st, st.sampled_from(LEVELS), max_size=10))
    start, batch = dict(state), []
    for key in draw(st.lists(pairs_st, max_size=25)):
        level = draw(st.sampled_from(LEVELS))
        if key in state:
            d = draw(st.sampled_from([Disconnect(*key), Relevel(*key, level)]))
        else:
            d = Connect(*key, level)
        if isinstance(d, Disconnect):
            del state[key]
        else:
            state[key] = d.level
        batch.append(d)
    return start, batch, state


@settings(max_examples=300, deadline=None)
@given(start_and_batch())
def test_net_reaches_the_same_end_through_states_of_only_before_or_after_routes(case):
    start, batch, end = case
    out = net(batch)
    steps = bridge_steps(start, out)
    assert steps[-1] == end
    assert kinds_in_order(out)
    assert len({(d.src, d.dst) for d in out}) == len(out)          # one diff per route
    allowed = start.keys() | end.keys()
    for state in steps:
        assert state.keys() <= allowed                          # nobody hears a stranger
        assert len(state) <= max(len(start), len(end))          # disconnects came first


# ---- repair ------------------------------------------------------------------------------

def test_repair_disconnects_extras_relevels_wrong_and_unknown_levels_connects_missing():
    desired = {Route("a", "b", 1.0), Route("b", "a", 0.5), Route("c", "a", 1.0),
               Route("a", "x", 1.0)}
    actual = {("a", "b"): None, ("b", "a"): 1.0, ("a", "c"): 1.0}
    r = repair(desired, actual, {"a", "b", "c"})
    assert r.diffs == (Disconnect("a", "c"), Relevel("a", "b", 1.0), Relevel("b", "a", 0.5),
                       Connect("c", "a", 1.0))
    assert r.unreachable == (Route("a", "x", 1.0),)


def test_a_bridge_equal_to_the_core_needs_no_repair():
    desired = {Route("a", "b", 1.0), Route("b", "a", 0.5)}
    assert repair(desired, {("a", "b"): 1.0, ("b", "a"): 0.5}, "ab").diffs == ()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(pairs_st, st.sampled_from(LEVELS), max_size=12),
       st.dictionaries(pairs_st, st.sampled_from(LEVELS + (None,)), max_size=12),
       st.sets(st.sampled_from(IDS), min_size=2))
def test_repair_makes_the_bridge_equal_to_the_core_where_the_ports_exist(want, actual, ports):
    # what the bridge holds can only be between ports it has
    actual = {k: v for k, v in actual.items() if set(k) <= ports}
    desired = {Route(s, d, lv) for (s, d), lv in want.items()}
    r = repair(desired, actual, ports)
    steps = bridge_steps(actual, r.diffs)
    reachable = {k: v for k, v in want.items() if set(k) <= ports}
    assert steps[-1] == reachable
    assert {(u.src, u.dst) for u in r.unreachable} == want.keys() - reachable.keys()
    assert kinds_in_order(r.diffs)
    for state in steps:
        assert state.keys() <= actual.keys() | want.keys()
    # minimal: a route already right is left alone
    touched = {(d.src, d.dst) for d in r.diffs}
    assert not {k for k, v in reachable.items() if actual.get(k, "none") == v} & touched


def test_the_ledger_forgets_a_port_with_its_routes():
    led = Ledger()
    led.set("a", "b", 1.0)
    led.set("b", "a", 0.5)
    led.set("b", "c", 1.0)
    led.forget_port("a")
    assert (led.level("a", "b"), led.level("b", "a"), led.level("b", "c")) == (None, None, 1.0)
    led.drop("b", "c")
    assert len(led) == 0 and not led._by_port
