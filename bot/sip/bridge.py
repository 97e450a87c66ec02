"""The conference-bridge half of the SIP adapter: applies the mixer core's route diffs to
pjmedia's bridge with `startTransmit2` / `stopTransmit`, reads the bridge's actual routes back,
and repairs them to what the core wants. Runs only on the pjsua2 owner thread (`bot.sip.stack` calls
it between pumps). Must not decide routes: the core (`bot.conference.mixer`) decides them, the repair and
the order of a batch are pure (`bot.conference.reconcile`), when to reconcile is `bot.service.bridgewatch`'s call.

pjsua2 facts this relies on (pjproject 2.12.1):
  * a level change is stop-then-start: re-calling `startTransmit2` keeps the old level.
  * `stopTransmit` of a route that does not exist is no error; a port that is gone (its call
    disconnected) took its routes with it, so a Disconnect touching it is done.
  * `ConfPortInfo` lists a port's listeners (slots), not their levels: the level of a route is
    the one we last set (`reconcile.Ledger`); a route we did not lay has an unknown level.
  * keep `info = port.getPortInfo()` in a variable: a temporary's `listeners` vector is freed.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

import pjsua2 as pj

from bot.conference import reconcile
from bot.conference.mixer import Connect, Diff, Disconnect, Relevel, Route
from bot.sip.events import BridgeReconciled

log = logging.getLogger("confbot.sip")

Failed = tuple[tuple[Diff, str], ...]


def transmit(src: "pj.AudioMedia", dst: "pj.AudioMedia", level: float) -> None:
    prm = pj.AudioMediaTransmitParam()
    prm.level = level
    src.startTransmit2(dst, prm)


class Bridge:
    """Routes between the ports of `ports` (port id → AudioMedia, owned by the stack)."""

    def __init__(self, ports: dict[str, "pj.AudioMedia"]) -> None:
        self._ports = ports
        self._ledger = reconcile.Ledger()
        self.failures = 0            # route diffs the bridge refused, since start

    def apply(self, diffs: Iterable[Diff]) -> Failed:
        """Apply a batch as its net change, disconnects → re-levels → connects; a diff that
        fails is kept with its error and the rest still applied (a batch never stops half-way)."""
        failed = []
        for d in reconcile.net(diffs):
            try:
                self._apply_one(d)
            except pj.Error as exc:
                failed.append((d, exc.info()))
            except RuntimeError as exc:
                failed.append((d, str(exc)))
        if failed:
            self.failures += len(failed)
            log.warning("%d route change(s) failed, e.g. %s: %s", len(failed), *failed[0])
        return tuple(failed)

    def reconcile(self, desired: frozenset[Route]) -> BridgeReconciled:
        """Read the bridge and repair it to `desired` in one step (no command runs between)."""
        plan = reconcile.repair(desired, self.read(), self._ports.keys())
        return BridgeReconciled(plan.diffs, self.apply(plan.diffs), plan.unreachable)

    def forget_port(self, port: str) -> None:
        """`port` left the bridge or was replaced by a fresh one (no routes)."""
        self._ledger.forget_port(port)

    def read(self) -> dict[tuple[str, str], float | None]:
        """The bridge's connections between our ports: (src, dst) → the level we last set."""
        by_slot = {}
        for pid, m in self._ports.items():
            try:
                by_slot[m.getPortId()] = pid
            except pj.Error:
                pass   # a port whose media just went: its routes went with it
        out = {}
        for slot, src in by_slot.items():
            try:
                info = self._ports[src].getPortInfo()
            except pj.Error:
                continue
            for dst_slot in info.listeners:
                dst = by_slot.get(dst_slot)
                if dst is not None:
                    out[(src, dst)] = self._ledger.level(src, dst)
        return out

    def _apply_one(self, d: Diff) -> None:
        src, dst = self._ports.get(d.src), self._ports.get(d.dst)
        if src is None or dst is None:
            if isinstance(d, Disconnect):
                return
            raise RuntimeError(f"no port {d.src if src is None else d.dst} in the bridge")
        match d:
            case Connect(level=level):
                transmit(src, dst, level)
                self._ledger.set(d.src, d.dst, level)
            case Disconnect():
                src.stopTransmit(dst)
                self._ledger.drop(d.src, d.dst)
            case Relevel(level=level):
                src.stopTransmit(dst)
                self._ledger.drop(d.src, d.dst)    # a failing restart leaves the route gone
                transmit(src, dst, level)
                self._ledger.set(d.src, d.dst, level)
