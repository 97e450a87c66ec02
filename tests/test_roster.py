"""The roster (bot.conference.roster): positions, names, transcripts, and finding whom a moderator names."""
from __future__ import annotations

from bot.conference.roster import LAST_JOINED, Roster
from bot.conference.rooms import Role


def test_find_by_position_or_the_last_who_joined_never_the_asker():
    r = Roster()
    r.joined("mod", "CB-1", Role.MODERATOR, 1)
    r.joined("a", "CB-1", Role.PARTICIPANT, 2)
    r.joined("b", "CB-1", Role.PARTICIPANT, 3)
    r.joined("x", "CB-2", Role.PARTICIPANT, 3)
    assert r.find("CB-1", 2).call == "a"
    assert r.find("CB-1", 3).call == "b"
    assert r.find("CB-1", LAST_JOINED, exclude="mod").call == "b"
    assert r.find("CB-1", 1, exclude="mod") is None
    assert r.find("CB-1", 9) is None
    r.left("b")
    r.joined("c", "CB-1", Role.PARTICIPANT, 3)        # told "third" again after b left
    assert r.find("CB-1", 3).call == "c"
    assert [e.call for e in r.of_room("CB-1")] == ["mod", "a", "c"]


def test_names_and_transcripts_a_late_transcript_never_overwrites_a_newer_name():
    r = Roster()
    r.joined("a", "CB-1", Role.PARTICIPANT, 1, "/n/a-1.wav")
    assert r.transcribed("a", "/n/a-1.wav", "  Anna  Schmidt ").name_text == "Anna Schmidt"
    r.named("a", "/n/a-2.wav")
    assert r.get("a").name_text == ""
    assert r.transcribed("a", "/n/a-1.wav", "Anna") is None      # for the old recording
    assert r.get("a").name_path == "/n/a-2.wav"
    assert r.named("ghost", "/n/g.wav") is None


def test_a_move_keeps_the_name_and_a_leave_forgets_the_call():
    r = Roster()
    r.joined("a", "~ivr", Role.PARTICIPANT, 1, "/n/a.wav")
    r.joined("a", "CB-1", Role.MODERATOR, 4)
    e = r.get("a")
    assert (e.room, e.role, e.position, e.name_path) == ("CB-1", Role.MODERATOR, 4, "/n/a.wav")
    assert r.left("a") == e and r.get("a") is None and r.of_room("CB-1") == []
