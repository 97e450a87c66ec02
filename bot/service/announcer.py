"""Room announcements on the bridge (asyncio wiring): "a name has joined", the join tone, "… has
left".

Owns `Announcer`, which the voice service holds: it offers each announcement to the pure
`bot.conference.announce.AnnounceQueue` (one at a time per room, duplicates of a burst dropped),
plays what the queue says should start as a player into the room (not to the caller it is
about), removes the player when its known length has played and starts the next one. When a
room is empty and its announcements have played, its name recordings can go
(`bot.service.namefiles`). Must not decide routes (that is `bot.conference.mixer`, reached
through the voice service's `add_source` / `stop_source`).
"""
from __future__ import annotations

import logging

from bot.conference.announce import AnnounceQueue, Announcement

log = logging.getLogger("confbot.voice")


class Announcer:
    def __init__(self, voice) -> None:
        self.voice = voice            # bot.service.voice.VoiceService
        self.queue = AnnounceQueue()
        self._seq = 0

    def announce(self, room: str, path: str, seconds: float, exclude: str | None = None) -> None:
        """Play a WAV into a room once the room's previous announcement has played; not to
        `exclude` (the caller it is about)."""
        v = self.voice
        if not v.running or not v.members.count(room):
            return
        start = self.queue.offer(Announcement(room, path, seconds, exclude))
        if start is not None:
            self._play(start)

    def forget(self, room: str) -> None:
        """The room's conference closed: what waits for it is dropped."""
        self.queue.forget(room)

    def _play(self, a: Announcement) -> None:
        self._seq += 1
        source = f"a{self._seq}-{a.room}"
        self.voice.add_source(source, a.path, room=a.room, loop=False,
                              exclude=(a.exclude,) if a.exclude else ())
        self.voice._loop.call_later(a.seconds + 0.05, self._played, a.room, source)

    def _played(self, room: str, source: str) -> None:
        v = self.voice
        v.stop_source(source)
        if not v.members.count(room):
            v.members.conf.drop_room(room)    # it may have closed while this played
        nxt = self.queue.finished(room)
        if nxt is None:
            self.room_maybe_idle(room)
            return
        if not v.running or not v.members.count(room):
            self.queue.forget(room)
            self.room_maybe_idle(room)
            return
        self._play(nxt)

    def room_maybe_idle(self, room: str | None) -> None:
        """An empty room whose announcements have played: its name recordings can go."""
        v = self.voice
        if room is None or v.names is None or v.members.count(room) \
                or self.queue.playing(room) is not None:
            return
        v.names.room_idle(room)
