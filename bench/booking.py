"""Booking benchmarks: capacity-check latency with 100,000 stored bookings, and mail-parse
throughput. Prints figures; asserts nothing (tests never assert on wall-clock time).

Run: .venv/bin/python bench/booking.py
"""
from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.booking.domain import Booking, BookingRequest, DialInMode  # noqa: E402
from bot.booking.capacity import Fits  # noqa: E402
from bot.booking.ledger import Full, Reserved  # noqa: E402
from bot.config.settings import CapacitySettings, Settings  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402

UTC = timezone.utc
NOW = datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
ROWS = 100_000
CHECKS = 1_000
CAPACITY = CapacitySettings()  # 200 lines, 50 per room, 15-minute steps, 365 days ahead


def synthetic_bookings(n: int, rng: random.Random) -> list[Booking]:
    """n bookings spread over the year: ~275 a day, 15 min..4 h, 1..8 participants."""
    out = []
    for i in range(n):
        start = NOW + timedelta(minutes=15 * rng.randrange(365 * 96))
        end = start + timedelta(minutes=15 * rng.randint(1, 16))
        out.append(Booking(reference=f"CB-B{i:07d}", organizer="bench@example.com",
                           title=f"bench {i}", start=start, end=end,
                           participants=rng.randint(1, 8),
                           participant_pin=f"{rng.randrange(10**7, 10**8)}",
                           moderator_pin=f"{rng.randrange(10**7, 10**8)}",
                           dial_in_mode=DialInMode.ALL_PREMIUM, created=NOW))
    return out


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def report(label: str, samples: list[float]) -> None:
    ms = [s * 1000 for s in samples]
    print(f"  {label:<44} n={len(ms):>5}  median {statistics.median(ms):7.3f} ms"
          f"  p99 {percentile(ms, 0.99):7.3f} ms  max {max(ms):7.3f} ms")


def bench_capacity() -> None:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.sqlite3")
        t0 = time.perf_counter()
        written = store.import_bookings(synthetic_bookings(ROWS, rng))
        print(f"capacity: {written} bookings imported in {time.perf_counter() - t0:.2f} s")

        windows = []
        for _ in range(CHECKS):
            start = NOW + timedelta(days=1, minutes=15 * rng.randrange(360 * 96))
            windows.append((start, start + timedelta(minutes=15 * rng.randint(2, 8))))

        def timed(participants: int, cap: CapacitySettings) -> tuple[list[float], list]:
            samples, verdicts = [], []
            for start, end in windows:
                t = time.perf_counter()
                verdicts.append(store.availability(start, end, participants, NOW, cap))
                samples.append(time.perf_counter() - t)
            return samples, verdicts

        samples, verdicts = timed(4, CAPACITY)
        report("check, 4 of 200 lines, all outcomes", samples)
        report("check, 4 of 200 lines, fits",
               [s for s, v in zip(samples, verdicts) if isinstance(v, Fits)])

        # A tighter limit makes busy windows full: these checks also search proposals.
        tight = CapacitySettings(total_lines=130, room_max=50)
        samples, verdicts = timed(40, tight)
        full = [s for s, v in zip(samples, verdicts) if isinstance(v, Full)]
        fit = [s for s, v in zip(samples, verdicts) if not isinstance(v, Full)]
        if fit:
            report("check, 40 of 130 lines, fits", fit)
        if full:
            report("check, 40 of 130 lines, full + 3 proposals", full)

        samples = []
        booked = 0
        for start, end in windows[:200]:
            req = BookingRequest(start=start, end=end, participants=2, title="bench",
                                 organizer="bench@example.com")
            t = time.perf_counter()
            result = store.reserve(req, NOW, CAPACITY, 6)
            samples.append(time.perf_counter() - t)
            booked += isinstance(result, Reserved)
        report(f"reserve (BEGIN IMMEDIATE, fsync; {booked} booked)", samples)
        store.close()


SAMPLE_MAILS = (
    b"From: alice@example.com\r\nTo: confbot@localhost\r\nSubject: Conference\r\n"
    b"Date: Mon, 04 Mar 2030 09:00:00 +0100\r\nMessage-ID: <b1@example.com>\r\n\r\n"
    b"Please book a conference tomorrow at 10:00 for 90 minutes, 6 participants.\r\n"
    b"Title: Quarterly review\r\n",
    b"From: bernd@example.de\r\nTo: confbot@localhost\r\nSubject: Telefonkonferenz\r\n"
    b"Date: Mon, 04 Mar 2030 09:00:00 +0100\r\nMessage-ID: <b2@example.de>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Bitte eine Konferenz morgen um 14 Uhr, 1 Stunde, 4 Teilnehmer. Thema: Planung\r\n",
)


def bench_parse() -> None:
    try:
        from mail.parse import parse_booking
    except ImportError as exc:
        print(f"parse: parser not available ({exc})")
        return
    files = sorted((ROOT / "tests" / "data").glob("*.eml"))
    mails = [f.read_bytes() for f in files]
    source = f"{len(mails)} files in tests/data"
    if not mails:
        mails = list(SAMPLE_MAILS)
        source = f"{len(mails)} built-in sample mails (no tests/data/*.eml yet)"
    settings = Settings()
    now = datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
    rounds = max(1, 2000 // len(mails))
    t0 = time.perf_counter()
    for _ in range(rounds):
        for raw in mails:
            parse_booking(raw, now=now, settings=settings)
    elapsed = time.perf_counter() - t0
    count = rounds * len(mails)
    print(f"parse: {count / elapsed:,.0f} mails/s over {source} ({count} parses, "
          f"{elapsed * 1000 / count:.2f} ms each)")


if __name__ == "__main__":
    bench_capacity()
    bench_parse()
