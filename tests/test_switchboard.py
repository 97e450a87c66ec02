"""REFER policy of the switchboard (bot.service.switchboard) against a fake voice service: a referrer
in a conference brings the referred party into it; a referrer still in the IVR has no room, so
the referred call is cancelled at once and the caller's flow is left alone."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from bot.conference.rooms import Role
from bot.service.switchboard import Leg, LegKind, Switchboard
from ivr import events as ev


@dataclass
class FakeVoice:
    rooms_of: dict[str, str | None]
    settings: object = field(default_factory=lambda: SimpleNamespace(
        ivr=SimpleNamespace(dialout_ring_seconds=30)))
    hung_up: list[tuple[str, int]] = field(default_factory=list)
    joined: list[tuple[str, str, Role]] = field(default_factory=list)
    drivers: dict = field(default_factory=dict)

    def calls(self):
        return {c: SimpleNamespace(room=None) for c in self.rooms_of}

    def room_of(self, call):
        return self.rooms_of.get(call)

    def driver_of(self, call):
        return self.drivers.get(call)

    def hangup(self, call: str, code: int = 603, cause: str | None = None) -> None:
        self.hung_up.append((call, code))

    def join_room(self, call, room, role, muted, limit, name=None, kind=None):
        self.joined.append((call, room, role))
        return ev.JoinResult(ev.JoinOutcome.JOINED, 2)


def test_refer_from_a_caller_in_a_room_rings_and_joins_that_room():
    async def run():
        voice = FakeVoice({"a": "lobby"})
        board = Switchboard(voice)
        board.referred("a", "call-9", "sip:b@example")
        assert board.legs["call-9"].kind is LegKind.REFER and not voice.hung_up
        board.answered("call-9")
        assert voice.joined == [("call-9", "lobby", Role.PARTICIPANT)]
    asyncio.run(run())


def test_refer_from_a_caller_still_in_the_ivr_is_cancelled_and_joins_nobody():
    async def run():
        voice = FakeVoice({"a": None})
        board = Switchboard(voice)
        board.referred("a", "call-9", "sip:b@example")
        assert voice.hung_up == [("call-9", 603)]
        assert "call-9" not in board.legs and voice.joined == []
    asyncio.run(run())


def test_refer_from_a_call_that_is_gone_is_cancelled():
    async def run():
        voice = FakeVoice({})
        board = Switchboard(voice)
        board.referred("a", "call-9", "sip:b@example")
        assert voice.hung_up == [("call-9", 603)]
    asyncio.run(run())


def test_a_ringing_invitation_is_cancelled_when_its_inviter_is_gone():
    """Nobody would be there to join: the invitee must not end up alone in a closed room."""
    async def run():
        voice = FakeVoice({"a": "CB-1"})
        board = Switchboard(voice)
        board.legs["call-9"] = Leg(LegKind.INVITE, "a", "CB-1")
        board.legs["call-8"] = Leg(LegKind.INVITE, "a", "CB-1", answered=True)   # deciding
        board.ended("a", SimpleNamespace(room="CB-1"), 200)
        assert voice.hung_up == [("call-9", 603)]
    asyncio.run(run())
