"""Brute-force and toll-fraud guards, with explicit times."""
from datetime import datetime, timedelta, timezone

from ivr.guard import (Admission, DialOutGuard, DialOutLimits, DialVerdict, Lockout, PinGuard,
                       PinLimits, Scope)

T = datetime(2025, 3, 4, 10, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def test_fifth_wrong_pin_locks_the_caller_for_fifteen_minutes():
    g = PinGuard()
    for i in range(4):
        assert g.failed("+4917011", T + i * MIN) is None
    lock = g.failed("+4917011", T + 4 * MIN)
    assert lock is not None and lock.scope is Scope.CALLER and lock.failures == 5
    assert lock.until == T + 4 * MIN + 15 * MIN
    assert "+4917011" in lock.message
    assert g.admit("+4917011", T + 18 * MIN) is Admission.CALLER_LOCKED
    assert g.admit("+4917022", T + 18 * MIN) is Admission.ALLOWED
    assert g.admit("+4917011", T + 19 * MIN) is Admission.ALLOWED


def test_failures_slide_out_of_the_window():
    g = PinGuard()
    for i in range(4):
        g.failed("+4917011", T + i * MIN)
    # 16 minutes after the first failure only three remain in the window: no lock yet
    assert g.failed("+4917011", T + 16 * MIN) is None
    assert g.admit("+4917011", T + 16 * MIN) is Admission.ALLOWED


def test_a_good_pin_clears_the_callers_count():
    g = PinGuard()
    for i in range(4):
        g.failed("+4917011", T + i * MIN)
    g.succeeded("+4917011", T + 5 * MIN)
    assert g.failed("+4917011", T + 6 * MIN) is None


def test_global_flood_locks_unknown_callers_but_not_known_good_ones():
    g = PinGuard(PinLimits(global_failures=50))
    g.succeeded("+49301234", T - timedelta(hours=2))
    locks = [g.failed(f"+4915{i:05d}", T + timedelta(seconds=i)) for i in range(50)]
    assert [l.scope for l in locks if l] == [Scope.GLOBAL]
    after = T + timedelta(seconds=55)
    assert g.admit("+4916999", after) is Admission.GLOBAL_LOCKED
    assert g.admit("anonymous", after) is Admission.GLOBAL_LOCKED
    assert g.admit("+49301234", after) is Admission.ALLOWED
    assert g.admit("+4916999", after + 5 * MIN) is Admission.ALLOWED


def test_withheld_numbers_share_one_bucket():
    g = PinGuard(PinLimits(caller_failures=2))
    g.failed("", T)
    assert g.failed("Anonymous", T + MIN) is not None
    assert g.admit("anonymous", T + 2 * MIN) is Admission.CALLER_LOCKED
    assert g.admit("+4917011", T + 2 * MIN) is Admission.ALLOWED


def test_dial_out_limits_per_call_booking_and_caller():
    g = DialOutGuard(DialOutLimits(per_call=2, per_booking=3, per_caller=2))
    assert g.may_dial("a", "CB-1", T, placed_by_call=2) is DialVerdict.CALL_LIMIT
    g.placed("a", "CB-1", T)
    g.placed("b", "CB-1", T)
    g.placed("c", "CB-1", T)
    assert g.may_dial("d", "CB-1", T, 0) is DialVerdict.BOOKING_LIMIT
    assert g.may_dial("d", "CB-2", T, 0) is DialVerdict.ALLOWED
    g.placed("a", None, T + MIN)
    assert g.may_dial("a", None, T + 2 * MIN, 0) is DialVerdict.CALLER_LIMIT
    assert g.may_dial("a", None, T + 2 * MIN + timedelta(hours=1), 0) is DialVerdict.ALLOWED


def test_premium_and_international_numbers_are_refused():
    g = DialOutGuard()
    assert g.number_verdict("030123456") is DialVerdict.ALLOWED
    for bad in ("0900123456", "0044201234", "11833", "12", "1" * 16, "030*1"):
        assert g.number_verdict(bad) is DialVerdict.NUMBER_REFUSED, bad


def test_clearing_a_lock_lets_the_caller_in_with_its_full_tries_again():
    g = PinGuard()
    for i in range(5):
        lock = g.failed("+4917011", T + i * MIN)
    assert lock is not None and g.admit("+4917011", T + 5 * MIN) is Admission.CALLER_LOCKED
    assert g.clear(" +4917011 ") is True           # the same key the guard counts under
    assert g.admit("+4917011", T + 5 * MIN) is Admission.ALLOWED
    # its old failures are gone: four more wrong PINs do not lock it, the fifth does
    for i in range(4):
        assert g.failed("+4917011", T + (6 + i) * MIN) is None
    assert g.failed("+4917011", T + 10 * MIN) is not None
    assert g.clear("+4917022") is False            # nobody such was locked


def test_clearing_the_global_lock_lets_unknown_callers_in():
    g = PinGuard(PinLimits(global_failures=3))
    for i in range(3):
        g.failed(f"+4915{i}", T + timedelta(seconds=i))
    assert g.admit("+4916999", T + MIN) is Admission.GLOBAL_LOCKED
    assert g.clear_global() is True and g.clear_global() is False
    assert g.admit("+4916999", T + MIN) is Admission.ALLOWED
    assert g.failed("+4916999", T + MIN) is None   # the global count starts afresh


def test_a_restored_lock_holds_until_its_end_in_a_fresh_guard():
    first = PinGuard(PinLimits(caller_failures=2))
    first.failed("+4917011", T)
    caller_lock = first.failed("+4917011", T + MIN)
    assert caller_lock is not None and caller_lock.scope is Scope.CALLER
    again = PinGuard(PinLimits(caller_failures=2))   # after a restart
    again.restore(caller_lock)
    assert again.admit("+4917011", caller_lock.until - MIN) is Admission.CALLER_LOCKED
    assert again.admit("+4917011", caller_lock.until) is Admission.ALLOWED
    assert again.admit("+4917033", T + 2 * MIN) is Admission.ALLOWED
    again.restore(Lockout(Scope.GLOBAL, None, 50, T, T + 5 * MIN))
    assert again.admit("+4917033", T + 2 * MIN) is Admission.GLOBAL_LOCKED
    assert again.admit("+4917033", T + 5 * MIN) is Admission.ALLOWED
