"""The IVR driver against a recording fake of the voice service (no SIP): it keeps the driver
contract of ivr.events (prompts in order, PromptFinished after the audio, Hangup after the queue
drained, StopPlayback drops audio) and its exception barrier ends one call politely while
another call carries on."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.service.context import IvrContext
from bot.service.driver import CallDriver
from bot.service.prompts import Prompts
from bot.conference.rooms import Role
from ivr import events as ev
from ivr.events import PromptId

SECONDS = 0.05


class FakePrompts(Prompts):
    def __init__(self, broken: PromptId | None = None) -> None:
        self.broken = broken
        self.rendered: list[PromptId] = []

    async def wav(self, prompt, params, lang):
        await asyncio.sleep(0)
        if prompt is self.broken:
            raise OSError("espeak-ng crashed")
        self.rendered.append(prompt)
        return f"/prompts/{prompt.value}.wav", SECONDS

    async def file(self, path):
        return path, SECONDS


class FakeVoice:
    clock_rate = 8000

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.causes: dict[str, str | None] = {}

    def play_to(self, call, source, path):
        self.log.append(("play", call, Path(path).stem))

    def stop_source(self, source):
        self.log.append(("stop", source))

    def join_room(self, call, room, role, muted, limit, name=None, kind=None):
        self.log.append(("join", call, room))
        return ev.JoinResult(ev.JoinOutcome.JOINED, 1)

    def leave_room(self, call):
        self.log.append(("leave", call))

    def assign_name(self, room, position, path, by):
        self.log.append(("assign", room, position, path, by))
        return position == 2

    def hangup(self, call, code=603, cause=None):
        self.log.append(("hangup", call))
        self.causes[call] = cause

    def played(self, call):
        return [e[2] for e in self.log if e[0] == "play" and e[1] == call]


class ScriptedFlow:
    """Returns the scripted actions per event type; raises on `explode_on`."""

    def __init__(self, script: dict, explode_on: type | None = None) -> None:
        self.script, self.explode_on = script, explode_on
        self.state = State("live")
        self.seen: list = []

    def handle(self, event):
        self.seen.append(event)
        if self.explode_on is not None and isinstance(event, self.explode_on):
            raise KeyError("a bug in a handler")
        return list(self.script.get(type(event), []))


class State:
    def __init__(self, value): self.value = value


def _driver(call, flow, voice, prompts):
    return CallDriver(call, flow, voice, IvrContext(prompts, default_language="en"))


async def _settle(seconds=0.4):
    await asyncio.sleep(seconds)


def test_prompts_play_in_order_and_hangup_waits_for_them():
    async def run():
        voice = FakeVoice()
        flow = ScriptedFlow({ev.DigitPressed: [ev.Play(PromptId.GOODBYE, token=1),
                                               ev.Play(PromptId.BEEP, token=2), ev.Hangup("bye")]})
        d = _driver("c1", flow, voice, FakePrompts())
        d.feed(ev.DigitPressed("1"))
        assert ("hangup", "c1") not in voice.log      # the goodbye has not played yet
        await _settle()
        return voice, flow
    voice, flow = asyncio.run(run())
    assert voice.played("c1") == ["goodbye", "beep"]
    assert voice.log[-1] == ("hangup", "c1")
    assert [e.token for e in flow.seen if isinstance(e, ev.PromptFinished)] == [1, 2]


def test_stop_playback_drops_queued_audio_without_reporting_it():
    async def run():
        voice = FakeVoice()
        flow = ScriptedFlow({ev.DigitPressed: [ev.Play(PromptId.ENTER_PIN, barge_in=True, token=1),
                                               ev.Play(PromptId.HELP_KEYS, barge_in=True, token=2)],
                             ev.TimerFired: [ev.StopPlayback()]})
        d = _driver("c1", flow, voice, FakePrompts())
        d.feed(ev.DigitPressed("1"))
        await asyncio.sleep(0.01)
        d.feed(ev.TimerFired(ev.Timer.INPUT))
        await _settle()
        return voice, flow
    voice, flow = asyncio.run(run())
    assert voice.played("c1") == ["enter_pin"]
    assert not any(isinstance(e, ev.PromptFinished) for e in flow.seen)


def test_a_bug_in_one_call_apologises_and_hangs_up_that_call_only():
    async def run():
        voice = FakeVoice()
        bad = _driver("bad", ScriptedFlow({}, explode_on=ev.DigitPressed), voice, FakePrompts())
        good_flow = ScriptedFlow({ev.DigitPressed: [ev.Play(PromptId.MUTED, token=1)]})
        good = _driver("good", good_flow, voice, FakePrompts())
        bad.feed(ev.DigitPressed("5"))
        good.feed(ev.DigitPressed("5"))
        await _settle()
        bad.feed(ev.DigitPressed("6"))          # a closed driver ignores further events
        return voice, bad, good_flow
    voice, bad, good_flow = asyncio.run(run())
    assert voice.played("bad") == ["error_apology"]
    assert ("hangup", "bad") in voice.log and ("leave", "bad") in voice.log
    assert bad.closed and bad.failed
    assert voice.played("good") == ["muted"] and ("hangup", "good") not in voice.log
    assert any(isinstance(e, ev.PromptFinished) for e in good_flow.seen)


def test_a_prompt_that_cannot_be_rendered_ends_the_call_through_the_barrier():
    async def run():
        voice = FakeVoice()
        flow = ScriptedFlow({ev.DigitPressed: [ev.Play(PromptId.HELP_KEYS, token=1)]})
        d = _driver("c1", flow, voice, FakePrompts(broken=PromptId.HELP_KEYS))
        d.feed(ev.DigitPressed("1"))
        await _settle()
        return voice, d
    voice, d = asyncio.run(run())
    assert d.failed
    assert voice.played("c1") == ["error_apology"] and voice.log[-1] == ("hangup", "c1")


def test_an_illegal_event_from_the_driver_side_is_caught_by_the_barrier():
    """A real CallFlow raising IllegalEvent (a driver bug) ends the call, not the loop."""
    from ivr.flow import CallFlow
    from ivr.flowconfig import FlowConfig

    async def run():
        voice = FakeVoice()
        d = _driver("c1", CallFlow(FlowConfig()), voice, FakePrompts())
        d.feed(ev.RoomCount(3))                 # illegal in START
        await _settle()
        return voice, d
    voice, d = asyncio.run(run())
    assert d.failed and voice.log[-1] == ("hangup", "c1")


def test_join_answers_come_back_after_the_action_list():
    async def run():
        voice = FakeVoice()
        flow = ScriptedFlow({ev.DigitPressed: [ev.JoinRoom("CB-X", Role.PARTICIPANT), ev.Log(ev.Level.INFO, "x")]})
        d = _driver("c1", flow, voice, FakePrompts())
        d.feed(ev.DigitPressed("1"))
        assert not any(isinstance(e, ev.JoinResult) for e in flow.seen)   # not re-entrant
        await _settle(0.05)
        return flow
    flow = asyncio.run(run())
    assert ev.JoinResult(ev.JoinOutcome.JOINED, 1) in flow.seen


@pytest.mark.parametrize("status,outcome", [(486, ev.DialOutcome.BUSY), (600, ev.DialOutcome.BUSY),
                                            (487, ev.DialOutcome.NO_ANSWER),
                                            (408, ev.DialOutcome.NO_ANSWER),
                                            (404, ev.DialOutcome.FAILED)])
def test_sip_status_of_an_unanswered_dial_out_maps_to_the_flows_outcome(status, outcome):
    from bot.service.switchboard import outcome_of
    assert outcome_of(status) is outcome


class RecordingVoice(FakeVoice):
    """start_recording → a future the matching stop_recording resolves (no file written)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, asyncio.Future] = {}

    def start_recording(self, call, path):
        self.log.append(("record", call))
        fut = self.pending[call] = asyncio.get_running_loop().create_future()
        return fut

    def stop_recording(self, call):
        self.log.append(("stop-record", call))
        fut = self.pending.pop(call, None)
        if fut is not None and not fut.done():
            fut.set_result("")


def test_hash_ends_the_name_recording_before_its_time_limit(tmp_path):
    async def run():
        voice = RecordingVoice()
        flow = ScriptedFlow({ev.CallAnswered: [ev.RecordName(10_000)],
                             ev.DigitPressed: [ev.EndRecording()]})
        ctx = IvrContext(FakePrompts(), default_language="en", names_dir=tmp_path)
        d = CallDriver("c1", flow, voice, ctx)
        d.feed(ev.CallAnswered("c1", "1000", "4917012345", None))
        await _settle(0.1)
        assert ("record", "c1") in voice.log
        t0 = asyncio.get_running_loop().time()
        d.feed(ev.DigitPressed("#"))
        while not any(isinstance(e, ev.RecordingDone) for e in flow.seen):
            await asyncio.sleep(0.01)
            assert asyncio.get_running_loop().time() - t0 < 2, "the recording ran on"
        return flow
    flow = asyncio.run(run())
    assert ev.RecordingDone(None, 0) in flow.seen


def test_assign_name_is_answered_with_the_voice_services_verdict():
    async def run():
        voice = FakeVoice()
        flow = ScriptedFlow({ev.DigitPressed: [ev.AssignName("CB-X", 2, "/n/x.wav")],
                             ev.TimerFired: [ev.AssignName("CB-X", 7, "/n/y.wav")]})
        d = _driver("mod", flow, voice, FakePrompts())
        d.feed(ev.DigitPressed("1"))
        d.feed(ev.TimerFired(ev.Timer.INPUT))
        await _settle(0.05)
        return voice, flow
    voice, flow = asyncio.run(run())
    assert ("assign", "CB-X", 2, "/n/x.wav", "mod") in voice.log
    assert [e for e in flow.seen if isinstance(e, ev.NameAssigned)] == [ev.NameAssigned(True),
                                                                      ev.NameAssigned(False)]
