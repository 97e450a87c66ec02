"""Name recordings on the bridge (asyncio wiring): one recorder port per call.

Owns `Recorders`, which the voice service holds: `start` asks the SIP adapter for a recorder
on the call's audio and returns a future that the adapter's `RecorderStopped` resolves with the
file written ("" when none was: the recorder failed to start, or the service stopped first).
Must not read or trim the file: the driver does (`bot.service.prompts.trim_name`).
"""
from __future__ import annotations

import asyncio

from bot.sip.events import StartRecorder, StopRecorder


class Recorders:
    def __init__(self, voice) -> None:
        self.voice = voice            # bot.service.voice.VoiceService
        self.active: dict[str, tuple[str, asyncio.Future]] = {}   # call → (port, done)

    def start(self, call: str, path: str) -> asyncio.Future:
        done: asyncio.Future = self.voice._loop.create_future()
        port = f"r-{call}"
        self.active[call] = (port, done)
        self.voice._stack.submit(StartRecorder(port, call, path))
        return done

    def stop(self, call: str) -> None:
        rec = self.active.get(call)
        if rec is not None and self.voice.running:
            self.voice._stack.submit(StopRecorder(rec[0]))
        elif rec is not None:
            self.active.pop(call)[1].set_result("")

    def stopped(self, port: str, path: str) -> None:
        """The adapter's `RecorderStopped`: the call's future gets the file."""
        for call, (p, done) in list(self.active.items()):
            if p == port:
                del self.active[call]
                if not done.done():
                    done.set_result(path)

    def failed(self, call: str) -> None:
        """A `StartRecorder` failed: nothing was written."""
        rec = self.active.pop(call, None)
        if rec is not None and not rec[1].done():
            rec[1].set_result("")
