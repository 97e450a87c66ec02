"""The talk poll's side of the SIP adapter: which calls' voices are read, and the one batched read.

Runs on the pjsua2 owner thread only (`bot.sip.stack` calls it). The calls read are the watched
ones (`WatchLevels`; none until told) that have a bridge slot. They are read with
`Endpoint.mediaTxLevels` (scripts/pjsua2/0005): one SWIG call and one lock of the bridge per
poll; `getTxLevel` per call took the bridge's mutex, which the clock thread holds while it
mixes, once per call: at 200 calls, 1.6 % of a core more (docs/PERFORMANCE.md).
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import pjsua2 as pj

from bot.sip.events import LevelsSampled


class LevelPoll:
    def __init__(self) -> None:
        self._slots: dict[str, int] = {}       # call → its bridge slot
        self._watched: set[str] = set()        # the calls whose voices someone watches
        # the (calls, slots) batch read at once: the watched calls that have a slot
        self._batch: tuple[tuple[str, ...], "pj.IntVector"] | None = None

    def placed(self, call: str, slot: int) -> None:
        """`call` has (a fresh) bridge port in `slot`."""
        self._slots[call] = slot
        self._batch = None

    def gone(self, call: str) -> None:
        if self._slots.pop(call, None) is not None:
            self._batch = None
        self._watched.discard(call)

    def watch(self, calls: Iterable[str], on: bool, live: Iterable[str]) -> None:
        if on:                          # a call already gone (not in `live`) is not kept
            self._watched.update(set(calls).intersection(live))
        else:
            self._watched.difference_update(calls)
        self._batch = None

    def clear(self) -> None:
        self._slots.clear()
        self._watched.clear()
        self._batch = None

    def sample(self, ep: "pj.Endpoint") -> LevelsSampled | None:
        """The watched calls' levels now (None: nobody watched)."""
        if self._batch is None:         # a port or a watch came or went: rebuild the batch
            calls = tuple(c for c in self._slots if c in self._watched)
            self._batch = (calls, pj.IntVector([self._slots[c] for c in calls]))
        calls, slots = self._batch
        if not calls:
            return None
        levels = ep.mediaTxLevels(slots)
        if -1 in levels:                # a slot whose port is gone (the call is ending)
            kept = [(c, lv) for c, lv in zip(calls, levels) if lv >= 0]
            calls, levels = tuple(c for c, _ in kept), tuple(lv for _, lv in kept)
        return LevelsSampled(int(time.monotonic() * 1000), calls, levels)
