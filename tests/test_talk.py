"""Talk detection: polled 0..255 levels in, Talking / Silent facts out (pure; milliseconds)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.conference.talk import Silent, TalkDetector, Talking, TalkSettings

POLL = 50
S = TalkSettings(attack_level=30, release_level=20, attack_ms=100, hangover_ms=300)


def feed_run(det: TalkDetector, member: str, levels: list[int], start: int = 0):
    """Feed one sample per poll; return [(time_ms, event), ...]."""
    out = []
    for k, level in enumerate(levels):
        t = start + k * POLL
        out += [(t, e) for e in det.feed(member, level, t)]
    return out


def test_sustained_speech_is_reported_once_after_the_attack_time():
    det = TalkDetector(S)
    assert feed_run(det, "a", [0, 80, 80, 80, 80, 80]) == [(150, Talking("a"))]
    assert det.is_talking("a") and det.talking() == {"a"}


def test_a_single_click_is_not_talking():
    det = TalkDetector(S)
    assert feed_run(det, "a", [0, 200, 0, 0, 200, 10, 0]) == []
    assert not det.is_talking("a")


def test_pauses_shorter_than_the_hangover_do_not_end_talking():
    det = TalkDetector(S)
    levels = [80] * 3 + [0] * 6 + [80] * 2 + [0] * 7
    #          talking at 100; pause 150..400 (250 ms < 300); resumes; silent 300 ms after 550
    assert feed_run(det, "a", levels) == [(100, Talking("a")), (850, Silent("a"))]


def test_levels_between_release_and_attack_change_nothing():
    det = TalkDetector(S)
    assert feed_run(det, "a", [25] * 20) == []            # never loud enough to start
    feed_run(det, "b", [80] * 3)
    assert feed_run(det, "b", [25] * 20, start=150) == []  # never quiet enough to stop
    assert det.is_talking("b")


def test_zero_attack_and_hangover_follow_the_level_sample_by_sample():
    det = TalkDetector(TalkSettings(attack_level=30, release_level=30, attack_ms=0, hangover_ms=0))
    assert feed_run(det, "a", [40, 10, 40]) == [(0, Talking("a")), (50, Silent("a")),
                                                (100, Talking("a"))]


def test_members_are_tracked_independently():
    det = TalkDetector(S)
    events = []
    for k in range(6):
        events += det.feed_all({"a": 90, "b": 0, "c": 90 if k >= 3 else 0}, k * POLL)
    assert events == [Talking("a"), Talking("c")]


def test_timing_follows_timestamps_not_sample_counts():
    det = TalkDetector(S)
    # a late poll: two samples 120 ms apart are enough for a 100 ms attack
    assert det.feed("a", 80, 1000) == []
    assert det.feed("a", 80, 1120) == [Talking("a")]


def test_forgetting_a_talking_member_reports_silent():
    det = TalkDetector(S)
    feed_run(det, "a", [80] * 4)
    feed_run(det, "b", [0] * 4)
    assert det.forget("a") == [Silent("a")]
    assert det.forget("b") == []
    assert det.forget("never-seen") == []
    assert det.talking() == frozenset()


@pytest.mark.parametrize("level", [-1, 256, 3.5])
def test_a_level_outside_the_scale_raises_and_changes_nothing(level):
    det = TalkDetector(S)
    feed_run(det, "a", [80, 80])
    with pytest.raises(ValueError):
        det.feed("a", level, 100)
    assert det.feed("a", 80, 100) == [Talking("a")]  # the run from t=0 was not disturbed


def test_time_going_backwards_raises_and_changes_nothing():
    det = TalkDetector(S)
    feed_run(det, "a", [80, 80])
    with pytest.raises(ValueError):
        det.feed_all({"b": 80, "a": 80}, 10)
    assert det.feed("a", 80, 100) == [Talking("a")]
    assert not det.is_talking("b") and det.feed("b", 80, 100) == []


def test_settings_reject_a_release_above_the_attack():
    with pytest.raises(ValueError):
        TalkSettings(attack_level=20, release_level=30)
    with pytest.raises(ValueError):
        TalkSettings(hangover_ms=-1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=80))
def test_events_alternate_and_each_is_justified_by_the_samples(levels):
    det = TalkDetector(S)
    events = feed_run(det, "a", levels)
    kinds = [type(e) for _, e in events]
    assert kinds == [Talking, Silent] * (len(kinds) // 2) + [Talking] * (len(kinds) % 2)
    for t, e in events:
        k = t // POLL
        if isinstance(e, Talking):   # loud for the whole attack window
            window = levels[k - S.attack_ms // POLL: k + 1]
            assert all(v >= S.attack_level for v in window)
        else:                        # quiet for the whole hang-over
            window = levels[k - S.hangover_ms // POLL: k + 1]
            assert all(v < S.release_level for v in window)
    assert det.is_talking("a") == (bool(kinds) and kinds[-1] is Talking)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-60, 200),
                          st.dictionaries(st.sampled_from("abcd"),
                                          st.one_of(st.integers(0, 255), st.booleans(),
                                                    st.sampled_from([-1, 256, 2.5])),
                                          max_size=4)),
                max_size=40))
def test_a_batch_does_what_feeding_each_member_in_turn_does(polls):
    # feed_all takes shortcuts (C-speed checks, a latest-time fast path): the same events,
    # errors and state as feed() member by member, for any times (also going backwards),
    # levels (also invalid) and members coming and going
    batch, single = TalkDetector(S), TalkDetector(S)
    t = 0
    for step, levels in polls:
        t += step
        try:
            got = batch.feed_all(levels, t)
        except ValueError:
            got = "error"
        expected = []
        valid = all(isinstance(v, int) and 0 <= v <= 255 for v in levels.values()) and all(
            m not in single._tracks or t >= single._tracks[m].last_ms for m in levels)
        if not valid:
            expected = "error"
        else:
            for m, v in levels.items():
                expected += single.feed(m, v, t)
        assert got == expected
        assert batch.talking() == single.talking()
        if step % 7 == 0 and levels:      # now and then someone leaves
            m = min(levels)
            assert batch.forget(m) == single.forget(m)
