"""Bridge reconciliation (pure): the order a diff batch is applied in, what the adapter last set
on each route, and the repair that makes the bridge equal to the mixer core again.

Owns `net` (a batch as one net change per route, ordered disconnects → re-levels → connects),
`Ledger` (the level the adapter last set on each route: pjmedia 2.12's `ConfPortInfo` lists a
port's listeners but not the level of each, so the bridge cannot report it) and `repair`
(desired routes from the core + actual routes from the bridge → the diffs that repair the
bridge). Must not touch pjsua2, threads or clocks: `bot.sip.stack` reads the bridge and applies the
repair on its owner thread, `bot.service.bridgewatch` decides when to ask for one.

Why the order matters (STYLE.md lesson 14): pjmedia's clock thread mixes while the owner thread
applies a batch, so every intermediate bridge state is heard. Applying all disconnects first,
then re-levels, then connects means each intermediate state holds only routes of the before
state (minus some) or of the after state (plus some): nobody ever hears anyone they hear in
neither. A batch that names a route twice (two operations concatenated) is first folded into
its net change, or reordering could drop a route the batch connects after disconnecting it.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from bot.conference.mixer import Connect, Diff, Disconnect, Relevel, Route

Pair = tuple[str, str]
_RANK = {Disconnect: 0, Relevel: 1, Connect: 2}


def net(diffs: Iterable[Diff]) -> tuple[Diff, ...]:
    """One diff per route, the batch's net effect, disconnects first, then re-levels, then
    connects (stable within each kind). The route's state before the batch is read from its
    first diff: a Connect finds it absent, a Disconnect or Relevel finds it present."""
    first: dict[Pair, Diff] = {}
    last: dict[Pair, Diff] = {}
    for d in diffs:
        key = (d.src, d.dst)
        first.setdefault(key, d)
        last[key] = d
    out: list[Diff] = []
    for key, d in last.items():
        was_there = not isinstance(first[key], Connect)
        match d:
            case Disconnect():
                if was_there:
                    out.append(d)
            case Connect(level=level) | Relevel(level=level):
                out.append(Relevel(*key, level) if was_there else Connect(*key, level))
    out.sort(key=lambda d: _RANK[type(d)])     # sort is stable: batch order within a kind
    return tuple(out)


class Ledger:
    """The level the adapter last set on each route it laid, per (src, dst) port ids; a port's
    entries go with the port, so it holds no more than the bridge does."""

    def __init__(self) -> None:
        self._levels: dict[Pair, float] = {}
        self._by_port: dict[str, set[Pair]] = {}

    def set(self, src: str, dst: str, level: float) -> None:
        key = (src, dst)
        self._levels[key] = level
        self._by_port.setdefault(src, set()).add(key)
        self._by_port.setdefault(dst, set()).add(key)

    def drop(self, src: str, dst: str) -> None:
        key = (src, dst)
        if self._levels.pop(key, None) is not None:
            for port in key:
                pairs = self._by_port.get(port)
                if pairs is not None:
                    pairs.discard(key)
                    if not pairs:
                        del self._by_port[port]

    def forget_port(self, port: str) -> None:
        for key in self._by_port.pop(port, ()):
            self._levels.pop(key, None)
            other = key[1] if key[0] == port else key[0]
            pairs = self._by_port.get(other)
            if pairs is not None:
                pairs.discard(key)
                if not pairs:
                    del self._by_port[other]

    def level(self, src: str, dst: str) -> float | None:
        return self._levels.get((src, dst))

    def __len__(self) -> int:
        return len(self._levels)


@dataclass(frozen=True, slots=True)
class Repair:
    diffs: tuple[Diff, ...]          # ordered disconnects → re-levels → connects
    unreachable: tuple[Route, ...]   # desired routes with an end the bridge has no port for


def repair(desired: Iterable[Route], actual: Mapping[Pair, float | None],
           ports: Collection[str]) -> Repair:
    """The diffs that turn the bridge's `actual` routes (pair → level, None where the level is
    unknown) into `desired`: extra routes are disconnected, wrong or unknown levels re-levelled,
    missing routes connected where both ports exist (`ports`); a missing route with an end the
    bridge lacks cannot be laid and is returned as unreachable (the core and the bridge disagree
    about a port: the caller logs it, nothing here guesses)."""
    want = {(r.src, r.dst): r.level for r in desired}
    gone = [Disconnect(s, d) for (s, d) in sorted(actual.keys() - want.keys())]
    relevel, connect, unreachable = [], [], []
    for (s, d), level in sorted(want.items()):
        if (s, d) in actual:
            if actual[(s, d)] != level:
                relevel.append(Relevel(s, d, level))
        elif s in ports and d in ports:
            connect.append(Connect(s, d, level))
        else:
            unreachable.append(Route(s, d, level))
    return Repair(tuple(gone + relevel + connect), tuple(unreachable))
