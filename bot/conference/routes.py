"""Routes and route diffs (pure): the vocabulary the mixer core, the owner of conference state,
the SIP adapter and the reconciler speak.

Owns `Route` (`src → dst @ level`), the diffs `Connect` / `Disconnect` / `Relevel` (`Diff`), the
strict `apply` (a diff stream that passes it is valid and minimal; the property tests' check),
and `net_diff`, the one place that orders a change: disconnects first, then re-levels, then
connects, so the bridge never holds a route that is in neither the before nor the after state.
`bot.conference.mixer` imports (and re-exports) all of them.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

@dataclass(frozen=True, slots=True)
class Route:
    src: str
    dst: str
    level: float


@dataclass(frozen=True, slots=True)
class Connect:
    src: str
    dst: str
    level: float


@dataclass(frozen=True, slots=True)
class Disconnect:
    src: str
    dst: str


@dataclass(frozen=True, slots=True)
class Relevel:
    src: str
    dst: str
    level: float


Diff = Connect | Disconnect | Relevel


def apply(routes: Iterable[Route], diffs: Iterable[Diff]) -> frozenset[Route]:
    """Apply diffs to a route set, strictly: connecting an existing pair, disconnecting or
    relevelling a missing one, or relevelling to the same level raises ValueError. (A diff
    stream that passes is therefore also minimal.)"""
    table = {(r.src, r.dst): r.level for r in routes}
    for d in diffs:
        key = (d.src, d.dst)
        match d:
            case Connect():
                if key in table:
                    raise ValueError(f"connect of existing route {key}")
                table[key] = d.level
            case Disconnect():
                if key not in table:
                    raise ValueError(f"disconnect of missing route {key}")
                del table[key]
            case Relevel():
                if table.get(key, d.level) == d.level:
                    raise ValueError(f"relevel of missing or unchanged route {key}")
                table[key] = d.level
    return frozenset(Route(s, t, lv) for (s, t), lv in table.items())


Pairs = dict[tuple[str, str], float]


def net_diff(before: Pairs, after: Pairs) -> list[Diff]:
    """The diffs from `before` to `after` (pair → level), in a safe order."""
    gone = sorted(before.keys() - after.keys())
    new = sorted(after.keys() - before.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    # Disconnect first: the bridge never holds more connections than either end state.
    return ([Disconnect(s, d) for s, d in gone]
            + [Relevel(s, d, after[(s, d)]) for s, d in changed]
            + [Connect(s, d, after[(s, d)]) for s, d in new])
