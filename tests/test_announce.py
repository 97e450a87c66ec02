"""Room announcements one at a time per room; a burst of identical ones is one (bot.conference.announce)."""
from __future__ import annotations

from hypothesis import given, strategies as st

from bot.conference.announce import AnnounceQueue, Announcement


def a(room: str, path: str, seconds: float = 1.0) -> Announcement:
    return Announcement(room, path, seconds)


def test_a_quiet_room_starts_at_once_and_the_next_waits_its_turn():
    q = AnnounceQueue()
    assert q.offer(a("r", "anna.wav")) == a("r", "anna.wav")
    assert q.offer(a("r", "bert.wav")) is None
    assert q.waiting("r") == (a("r", "bert.wav"),)
    assert q.finished("r") == a("r", "bert.wav")
    assert q.finished("r") is None
    assert q.playing("r") is None


def test_a_burst_of_join_tones_is_one_tone():
    q = AnnounceQueue()
    started = [q.offer(a("r", "tone.wav")) for _ in range(50)]
    assert sum(s is not None for s in started) == 1
    assert q.waiting("r") == ()
    assert q.dropped == 49
    assert q.finished("r") is None


def test_rooms_are_independent():
    q = AnnounceQueue()
    assert q.offer(a("r1", "tone.wav")) is not None
    assert q.offer(a("r2", "tone.wav")) is not None


def test_at_most_max_pending_wait_and_forget_clears_a_room():
    q = AnnounceQueue(max_pending=2)
    q.offer(a("r", "0.wav"))
    for k in range(1, 5):
        q.offer(a("r", f"{k}.wav"))
    assert [w.path for w in q.waiting("r")] == ["1.wav", "2.wav"]
    assert q.dropped == 2
    q.forget("r")
    assert q.playing("r") is None and q.waiting("r") == ()
    assert q.offer(a("r", "5.wav")) is not None


@given(st.lists(st.tuples(st.sampled_from(["offer", "finished"]), st.sampled_from("xy"),
                          st.sampled_from(["t.wav", "n1.wav", "n2.wav", "n3.wav"]))))
def test_never_two_at_once_in_a_room_and_nothing_is_lost_silently(ops):
    q = AnnounceQueue(max_pending=2)
    offered = started = 0
    for op, room, path in ops:
        if op == "offer":
            offered += 1
            started += q.offer(a(room, path)) is not None
        elif q.playing(room) is not None:
            started += q.finished(room) is not None
        for r in "xy":
            waiting = q.waiting(r)
            assert len(waiting) <= 2
            assert q.playing(r) is not None or not waiting     # a queue never stalls
            assert len({w.path for w in waiting}) == len(waiting)
    pending = sum(len(q.waiting(r)) for r in "xy")
    assert offered == started + pending + q.dropped
