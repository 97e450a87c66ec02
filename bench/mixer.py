"""Benchmark of the mixer core: how long deriving route diffs takes (prints figures, asserts
nothing). Run: .venv/bin/python bench/mixer.py"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.conference.mixer import Mixer  # noqa: E402


def timed(label: str, fn) -> None:
    t0 = time.perf_counter()
    ops, diffs = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<52} {ops:>6} ops {diffs:>8} diffs {dt * 1e3:8.1f} ms "
          f"({dt / ops * 1e6:6.1f} µs/op)")


def rooms_of_ten() -> tuple[int, int]:
    m = Mixer()
    diffs = sum(len(m.join(f"c{i}", f"room{i // 10}")) for i in range(1000))
    return 1000, diffs


def seminar(listeners: bool) -> tuple[int, int]:
    m = Mixer()
    diffs = sum(len(m.join(f"s{i}", "seminar")) for i in range(3))
    for i in range(1000):
        diffs += len(m.add_listener(f"l{i}", "seminar") if listeners
                     else m.join(f"l{i}", "seminar", muted=True))
    return 1003, diffs


def seminar_churn() -> tuple[int, int]:
    """In a full seminar: a speaker mutes/unmutes and a listener leaves/rejoins, 100 times."""
    m = Mixer()
    for i in range(3):
        m.join(f"s{i}", "seminar")
    for i in range(1000):
        m.add_listener(f"l{i}", "seminar")
    diffs = 0
    for k in range(100):
        diffs += len(m.set_muted("s0", True)) + len(m.set_muted("s0", False))
        diffs += len(m.leave(f"l{k}")) + len(m.add_listener(f"l{k}", "seminar"))
    return 400, diffs


def moves() -> tuple[int, int]:
    """100 rooms of 10; move every caller once into a séparée-sized room and back."""
    m = Mixer()
    for i in range(1000):
        m.join(f"c{i}", f"room{i // 10}")
    diffs = 0
    for i in range(1000):
        diffs += len(m.move(f"c{i}", f"sep{i // 2}"))
    for i in range(1000):
        diffs += len(m.move(f"c{i}", f"room{i // 10}"))
    return 2000, diffs


if __name__ == "__main__":
    timed("1,000 joins into rooms of 10", rooms_of_ten)
    timed("seminar: 3 speakers + 1,000 listeners", lambda: seminar(True))
    timed("seminar: 3 speakers + 1,000 muted participants", lambda: seminar(False))
    timed("seminar churn: mute/unmute + leave/rejoin", seminar_churn)
    timed("2,000 moves between rooms of 10 and séparées", moves)
    m = Mixer()
    for i in range(3):
        m.join(f"s{i}", "seminar")
    for i in range(1000):
        m.add_listener(f"l{i}", "seminar")
    t0 = time.perf_counter()
    n = len(m.routes())
    print(f"{'routes() of the 1,000-listener seminar':<52} {n:>6} routes "
          f"{(time.perf_counter() - t0) * 1e3:8.1f} ms")
