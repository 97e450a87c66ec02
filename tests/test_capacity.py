"""The capacity planner as a specification: rules, line arithmetic, nearest free slots."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from bot.booking import capacity
from bot.booking.capacity import Fits, Hold, Reason, assess, peak, proposal_horizons, propose, search
from bot.booking.ledger import Full, Refused, Slot
from bot.config.settings import CapacitySettings

UTC = timezone.utc
NOW = datetime(2030, 3, 4, 8, 7, tzinfo=UTC)           # deliberately not on a 15-minute step
CAP = CapacitySettings(total_lines=10, room_max=8, max_minutes=240, max_days_ahead=3,
                       slot_step_minutes=15)


def at(hour: int, minute: int = 0, day: int = 4) -> datetime:
    return datetime(2030, 3, day, hour, minute, tzinfo=UTC)


def hold(h1: int, h2: int, lines: int, day: int = 4) -> Hold:
    return Hold(at(h1, day=day), at(h2, day=day), lines)


# -- rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("start, end, participants, reason", [
    (at(10), at(11), 0, Reason.NO_PARTICIPANTS),
    (at(10), at(11), 9, Reason.TOO_MANY_PARTICIPANTS),
    (at(10), at(10, 4), 3, Reason.TOO_SHORT),
    (at(10), at(9), 3, Reason.TOO_SHORT),
    (at(10), at(14, 1), 3, Reason.TOO_LONG),
    (at(8, 1), at(9), 3, Reason.PAST),
    (at(10, day=7) + timedelta(hours=1), at(12, day=7), 3, Reason.TOO_FAR_AHEAD),
])
def test_rule_breaks_are_refused_with_their_reason(start, end, participants, reason):
    verdict = assess(start, end, participants, [], NOW, CAP)
    assert isinstance(verdict, Refused)
    assert verdict.reason == reason
    assert verdict.reason == reason.value          # plain string for bot.booking.ledger users
    assert verdict.detail


@pytest.mark.parametrize("start, end, participants", [
    (at(10), at(10, 5), 1),                        # exactly the minimum length
    (at(10), at(14), 8),                           # exactly max_minutes and room_max
    (NOW - timedelta(minutes=4), at(9), 3),        # "now" mail arriving a little late
    (NOW + timedelta(days=3), NOW + timedelta(days=3, hours=1), 2),  # the last allowed start
])
def test_requests_on_the_boundaries_of_the_rules_fit(start, end, participants):
    assert assess(start, end, participants, [], NOW, CAP) == Fits(CAP.total_lines - participants)


def test_more_participants_than_total_lines_is_refused_not_full():
    cap = CapacitySettings(total_lines=5, room_max=8)
    verdict = assess(at(10), at(11), 6, [], NOW, cap)
    assert isinstance(verdict, Refused) and verdict.reason == Reason.TOO_MANY_PARTICIPANTS


def test_naive_times_are_a_programming_error():
    with pytest.raises(ValueError):
        assess(datetime(2030, 3, 4, 10), datetime(2030, 3, 4, 11), 2, [], NOW, CAP)


# -- lines -------------------------------------------------------------------------------------

def test_back_to_back_bookings_do_not_share_lines():
    holds = [hold(9, 10, 6), hold(11, 12, 6)]
    assert peak(holds, at(10), at(11)) == 0
    assert peak([hold(9, 10, 6), hold(10, 11, 6)], at(9), at(11)) == 6
    assert assess(at(10), at(11), 8, holds, NOW, CAP) == Fits(2)


def test_peak_counts_only_instants_inside_the_window():
    holds = [hold(9, 11, 4), hold(10, 12, 3), hold(11, 13, 5), hold(14, 15, 9)]
    assert peak(holds, at(9), at(10)) == 4
    assert peak(holds, at(10), at(11)) == 7        # 4 + 3 overlap
    assert peak(holds, at(10, 30), at(12)) == 8    # 3 + 5 from 11:00 (the 4 ended)
    assert peak(holds, at(13), at(14)) == 0


def test_the_last_free_lines_fit_and_one_more_is_full():
    holds = [hold(9, 12, 4), hold(10, 11, 3)]
    assert assess(at(10), at(11), 3, holds, NOW, CAP) == Fits(0)
    verdict = assess(at(10), at(11), 4, holds, NOW, CAP)
    assert verdict == Full("lines", 3, ())


def test_a_short_peak_anywhere_in_the_window_makes_it_full():
    holds = [hold(9, 13, 2), Hold(at(12, 50), at(12, 55), 6)]
    assert isinstance(assess(at(10), at(13), 3, holds, NOW, CAP), Full)
    assert isinstance(assess(at(10), at(12, 50), 3, holds, NOW, CAP), Fits)


# -- proposals -----------------------------------------------------------------------------

def test_full_slot_gets_the_three_nearest_aligned_free_slots_in_time_order():
    # 10:00-12:00 is full; a one-hour request at 10:30 fits at 9:00 (ends as the block
    # begins) and from 12:00 on. Nearest to 10:30: 9:00 and 12:00 (90 min each), then
    # 8:45 and 12:15 tie at 105 minutes and the earlier one wins.
    holds = [hold(10, 12, 10)]
    window = proposal_horizons(at(10, 30), at(11, 30), NOW, CAP)[0]
    slots = propose(holds, at(10, 30), at(11, 30), 2, NOW, CAP, window)
    assert slots == (Slot(at(8, 45), at(9, 45)), Slot(at(9), at(10)), Slot(at(12), at(13)))


def test_proposals_are_never_in_the_past():
    holds = [Hold(NOW - timedelta(hours=1), at(10), 10)]
    window = proposal_horizons(at(8, 30), at(9, 30), NOW, CAP)[0]
    slots = propose(holds, at(8, 30), at(9, 30), 1, NOW, CAP, window)
    assert slots == (Slot(at(10), at(11)), Slot(at(10, 15), at(11, 15)),
                     Slot(at(10, 30), at(11, 30)))


def test_proposals_never_start_beyond_max_days_ahead():
    last = NOW + timedelta(days=CAP.max_days_ahead)           # 7 March 08:07
    start = last - timedelta(minutes=30)
    holds = [Hold(start - timedelta(hours=2), last + timedelta(hours=1), 10)]
    slots = search(lambda w: holds, start, start + timedelta(hours=1), 1, NOW, CAP)
    assert len(slots) == 3
    assert all(s.start <= last for s in slots)
    assert all(s.end <= start - timedelta(hours=2) for s in slots)     # only the earlier side


def test_search_fetches_one_day_when_that_is_enough_and_widens_when_not():
    fetched: list[Slot] = []

    def fetch(window: Slot) -> list[Hold]:
        fetched.append(window)
        return holds

    holds = [hold(10, 12, 10)]
    search(fetch, at(10), at(11), 5, NOW, CAP)
    assert len(fetched) == 1 and fetched[0].end - fetched[0].start <= timedelta(days=2, hours=1)

    fetched.clear()
    blocked_until = at(10, day=6)                              # two days blocked solid
    holds = [Hold(NOW - timedelta(hours=1), blocked_until, 10)]
    slots = search(fetch, at(10), at(11), 5, NOW, CAP)
    assert len(fetched) == 2
    assert slots[0] == Slot(blocked_until, blocked_until + timedelta(hours=1))


def test_no_proposals_when_nothing_is_free_within_the_horizon():
    holds = [Hold(NOW - timedelta(days=1), NOW + timedelta(days=5), 9)]
    assert search(lambda w: holds, at(10), at(11), 2, NOW, CAP) == ()


def test_last_horizon_covers_every_allowed_start():
    windows = proposal_horizons(at(10), at(11), NOW, CAP)
    first_start, last_start = capacity._start_bounds(NOW, CAP)
    assert windows[-1] == Slot(first_start, last_start + timedelta(hours=1))
    assert windows[0].start >= at(10) - capacity.HORIZONS[0]


# -- properties ----------------------------------------------------------------------------

def usage_at(holds: list[Hold], t: datetime) -> int:
    return sum(h.lines for h in holds if h.start <= t < h.end)


def fits_brute_force(holds: list[Hold], start: datetime, end: datetime, n: int) -> bool:
    points = {start} | {h.start for h in holds if start < h.start < end}
    return all(usage_at(holds, t) + n <= CAP.total_lines for t in points)


requests = st.tuples(st.integers(0, 4 * 24 * 4),        # start, in quarter hours after NOW
                     st.integers(1, 16),                 # length, in quarter hours
                     st.integers(0, 9))                  # participants (0 and 9 are refused)


@settings(max_examples=150, deadline=None)
@given(st.lists(requests, min_size=1, max_size=40))
def test_no_instant_is_ever_oversubscribed(sequence):
    held: list[Hold] = []
    for q, length, n in sequence:
        start = NOW + timedelta(minutes=15 * q)
        end = start + timedelta(minutes=15 * length)
        verdict = assess(start, end, n, held, NOW, CAP)
        if isinstance(verdict, Fits):
            assert fits_brute_force(held, start, end, n)
            held.append(Hold(start, end, n))
        elif isinstance(verdict, Full):
            assert not fits_brute_force(held, start, end, n)
            assert verdict.free_lines == CAP.total_lines - max(
                usage_at(held, t) for t in {start} | {h.start for h in held if start < h.start < end})
    for t in {h.start for h in held}:
        assert usage_at(held, t) <= CAP.total_lines


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-8, 3 * 24 * 4), st.integers(1, 24), st.integers(1, 10)),
                max_size=25),
       requests.filter(lambda r: 1 <= r[2] <= 8))
def test_proposals_are_exactly_the_nearest_free_aligned_slots(blocks, request):
    holds = [Hold(NOW + timedelta(minutes=15 * q + 7), NOW + timedelta(minutes=15 * (q + k) + 7), n)
             for q, k, n in blocks]
    q, length, n = request
    start = NOW + timedelta(minutes=15 * q)
    duration = timedelta(minutes=15 * length)
    slots = search(lambda w: holds, start, start + duration, n, NOW, CAP)

    first, last = capacity._start_bounds(NOW, CAP)
    candidates = []
    t = first
    while t <= last:
        if fits_brute_force(holds, t, t + duration, n):
            candidates.append(t)
        t += timedelta(minutes=15)
    nearest = sorted(candidates, key=lambda c: (abs(c - start), c))[:3]
    assert [s.start for s in slots] == sorted(nearest)
    assert all(s.end - s.start == duration for s in slots)
