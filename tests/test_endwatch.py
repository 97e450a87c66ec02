"""The end of booked conferences (pure core `bot.conference.endwatch`): warn, extend while allowed, close
at the end, close at once when cancelled, and decide again when the end moves."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.booking.domain import BookingStatus
from bot.conference.endwatch import Close, Closing, EndWatch, Extended, TryExtend, Warn
from bot.config.settings import ConferenceSettings
from flow_fixtures import BOOKING, T0

REF = BOOKING.reference
END = BOOKING.end
MIN = timedelta(minutes=1)


def watch(**kw) -> EndWatch:
    return EndWatch(ConferenceSettings(**{"warn_minutes": 5, "extend_minutes": 15,
                                          "extend_max_minutes": 0, **kw}))


def test_nothing_happens_well_before_the_end():
    assert watch().tick({REF: BOOKING}, END - 6 * MIN) == []


def test_callers_are_warned_once_and_the_conference_closes_at_the_end():
    w = watch()
    assert w.tick({REF: BOOKING}, END - 5 * MIN) == [Warn(REF, 5)]
    assert w.tick({REF: BOOKING}, END - 2 * MIN) == []
    assert w.tick({REF: BOOKING}, END) == [Close(REF, Closing.ENDED)]
    assert w.tick({REF: BOOKING}, END + MIN) == []


def test_no_warning_when_warn_minutes_is_zero():
    w = watch(warn_minutes=0)
    assert w.tick({REF: BOOKING}, END - MIN) == []
    assert w.tick({REF: BOOKING}, END) == [Close(REF, Closing.ENDED)]


def test_a_cancelled_booking_closes_at_once():
    w = watch()
    cancelled = replace(BOOKING, status=BookingStatus.CANCELLED)
    assert w.tick({REF: cancelled}, T0 + 10 * MIN) == [Close(REF, Closing.CANCELLED)]
    assert w.tick({REF: cancelled}, T0 + 11 * MIN) == []
    assert watch().tick({REF: None}, T0) == [Close(REF, Closing.CANCELLED)]


def test_extensions_while_the_lines_are_free_up_to_the_limit():
    w = watch(extend_max_minutes=30)
    attempt = w.tick({REF: BOOKING}, END - 5 * MIN)
    assert attempt == [TryExtend(REF, END + 15 * MIN, 15)]
    assert w.tick({REF: BOOKING}, END) == []                # pending: no close meanwhile
    assert w.extension_done(attempt[0], True, END - 5 * MIN) == [Extended(REF, 15)]
    longer = replace(BOOKING, end=END + 15 * MIN)
    second = w.tick({REF: longer}, longer.end - 5 * MIN)
    assert second == [TryExtend(REF, END + 30 * MIN, 15)]
    assert w.extension_done(second[0], True, longer.end - 5 * MIN) == [Extended(REF, 15)]
    longest = replace(BOOKING, end=END + 30 * MIN)
    assert w.tick({REF: longest}, longest.end - 5 * MIN) == [Warn(REF, 5)]     # limit reached
    assert w.tick({REF: longest}, longest.end) == [Close(REF, Closing.ENDED)]


def test_a_refused_extension_warns_and_the_conference_ends_on_time():
    w = watch(extend_max_minutes=60)
    attempt = w.tick({REF: BOOKING}, END - 5 * MIN)[0]
    assert w.extension_done(attempt, False, END - 4 * MIN, END) == [Warn(REF, 4)]
    assert w.tick({REF: BOOKING}, END) == [Close(REF, Closing.ENDED)]


def test_an_end_moved_by_mail_is_decided_again():
    w = watch()
    assert w.tick({REF: BOOKING}, END - 5 * MIN) == [Warn(REF, 5)]
    later = replace(BOOKING, end=END + 30 * MIN)
    assert w.tick({REF: later}, END) == []
    assert w.tick({REF: later}, later.end - 5 * MIN) == [Warn(REF, 5)]


def test_a_conference_that_emptied_starts_afresh():
    w = watch()
    assert w.tick({REF: BOOKING}, END - 5 * MIN) == [Warn(REF, 5)]
    assert w.tick({}, END - 4 * MIN) == []
    assert w.tick({REF: BOOKING}, END - 3 * MIN) == [Warn(REF, 3)]


def test_an_extension_the_store_could_not_answer_still_ends_on_time():
    w = watch(extend_max_minutes=60)
    attempt = w.tick({REF: BOOKING}, END - 5 * MIN)[0]
    assert w.extension_done(attempt, False, END - 5 * MIN) == []     # no answer: no warning
    assert w.tick({REF: BOOKING}, END) == [Close(REF, Closing.ENDED)]
