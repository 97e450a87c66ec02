"""Whose voices the talk poll reads (bot.service.talkwatch) and the keypad's one way into the
owner (`ivr.events.Ask` → `Members.ask`), driven through `bot.service.members.Members` as the
voice service drives it, with the real owner of conference state and the real talk detector;
only the SIP adapter is a list of the commands it would get. The poll itself against real
callers is tests/test_sip_levels.py."""
from __future__ import annotations

from bot.conference.owner import ConferenceKind, Conferences
from bot.conference.rooms import Direction, Role
from bot.conference.talk import Silent, TalkDetector, Talking
from bot.service.members import Members
from bot.service.talkwatch import TalkWatch
from bot.sip.events import WatchLevels
from ivr.events import AskAnswered, Refusal


class Voice:
    """What Members and TalkWatch use of the voice service."""

    def __init__(self) -> None:
        self.submitted: list = []
        self.facts: list = []
        self.diffs: list = []
        self.drivers: dict = {}
        self.ivr = None
        self.names = None
        self.talk = TalkDetector()
        self.members = Members(self)
        self.talkwatch = TalkWatch(self)
        self.announcer = type("A", (), {"forget": lambda self, c: None})()

    def _submit(self, cmd) -> None:
        self.submitted.append(cmd)

    def _fan_out_all(self, events) -> None:
        self.facts.extend(events)

    def apply(self, diffs) -> None:
        self.diffs.extend(diffs)

    def _now(self):
        return None

    def _record(self, fn) -> None:
        pass

    def polled(self) -> set[str]:
        """What the SIP adapter would poll after every command so far."""
        out: set[str] = set()
        for c in self.submitted:
            if isinstance(c, WatchLevels):
                (out.update if c.on else out.difference_update)(c.calls)
        return out


def seated(*rooms: tuple[str, tuple[str, ...]]) -> Voice:
    v = Voice()
    conf = v.members.conf
    for room, calls in rooms:
        conf.open(room, ConferenceKind.STANDING, 10)
        for call in calls:
            v.members.apply(conf.arrive(call))
            v.members.apply(conf.join(call, room, {"mod": Role.MODERATOR, "op": Role.OPERATOR}.get(
                call, Role.PARTICIPANT)))
    return v


def test_nobody_watching_polls_nobody():
    v = seated(("a", ("a1", "a2")), ("b", ("b1",)))
    assert v.submitted == [] and v.talkwatch.polled() == frozenset()


def test_watching_one_room_polls_its_members_and_follows_joins_and_leaves():
    v = seated(("a", ("a1", "a2")), ("b", ("b1",)))
    unwatch = v.talkwatch.watch("a")
    assert v.polled() == {"a1", "a2"}
    v.members.apply(v.members.conf.arrive("a3"))
    v.members.apply(v.members.conf.join("a3", "a"))
    v.members.apply(v.members.conf.arrive("b2"))
    v.members.apply(v.members.conf.join("b2", "b"))
    assert v.polled() == {"a1", "a2", "a3"}
    v.members.gone("a1")
    assert v.polled() == {"a2", "a3"} == v.talkwatch.polled()
    unwatch()
    unwatch()                      # a second call changes nothing
    assert v.polled() == set() and v.talkwatch.polled() == frozenset()


def test_a_talker_moved_out_of_the_watched_conference_is_silent_and_no_longer_polled():
    v = seated(("a", ("mod", "a1")), ("b", ("op",)))
    v.talkwatch.watch("a")
    assert v.talk.feed_all({"a1": 200}, 0) == [] and v.talk.feed_all({"a1": 200}, 150) == [
        Talking("a1")]
    assert v.members.ask(Conferences.open_separee, ("a", ("mod", "a1")), by="mod").refusal is None
    assert v.polled() == {"mod", "a1"}          # a séparée is watched with its conference
    assert v.members.move("a1", "b", by="op")   # the superuser moves it to another conference
    assert v.polled() == {"mod"}
    assert v.facts == [Silent("a1")] and not v.talk.is_talking("a1")


def test_watching_every_conference_includes_later_ones_and_counts_watchers():
    v = seated(("a", ("a1",)))
    first, second = v.talkwatch.watch(), v.talkwatch.watch()
    v.members.conf.open("b", ConferenceKind.ADHOC, 10)
    v.members.apply(v.members.conf.arrive("b1"))
    v.members.apply(v.members.conf.join("b1", "b"))
    assert v.polled() == {"a1", "b1"}
    first()
    assert v.polled() == {"a1", "b1"}      # the other watcher still looks
    second()
    assert v.polled() == set()


def test_ask_runs_the_owners_operation_on_the_callers_behalf_and_the_owner_decides():
    v = seated(("a", ("mod", "a1", "a2")))
    conf = v.members.conf
    done = AskAnswered(now_on=True)         # done: the toggle is on now (muted)
    assert v.members.ask(Conferences.toggle_muted, ("a1",), by="a1") == done and conf.muted("a1")
    assert v.members.ask(Conferences.set_muted, ("a2", True), by="mod") == done
    assert conf.muted("a2")
    # a participant may not mute another, nor act on a call the owner does not know: each
    # refusal says why (the flow speaks it)
    assert v.members.ask(Conferences.set_muted, ("mod", True), by="a1") == AskAnswered(
        Refusal.NOT_ALLOWED)
    assert not conf.muted("mod")
    assert v.members.ask(Conferences.toggle_muted, ("nobody",), by="nobody") == AskAnswered(
        Refusal.NOT_IN_ROOM)
    assert v.members.ask(Conferences.set_volume, ("a1", Direction.LISTEN, 2),
                         by="a1") == AskAnswered()            # no toggle: nothing "on"
