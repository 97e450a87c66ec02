"""Room announcements, one at a time per room (pure).

Owns the order of the announcements due in each room: "a name has joined", a join tone, "…
has left". A room plays one announcement at a time; the next starts when the current one has
played. An announcement identical to one playing or waiting (the same WAV, e.g. the join tone
when 50 callers enter at once) is dropped, and at most `max_pending` wait per room, so a burst
of joins is one tone, not 50 stacked tones and 50 bridge ports. Knows nothing of timers or
players: `bot.service.voice` starts what `offer`/`finished` return and calls `finished` when it ended.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MAX_PENDING = 8


@dataclass(frozen=True, slots=True)
class Announcement:
    room: str
    path: str          # the WAV to play into the room
    seconds: float     # its length
    exclude: str | None = None   # the member it is about (a joiner does not hear itself)


@dataclass
class AnnounceQueue:
    max_pending: int = MAX_PENDING
    _playing: dict[str, Announcement] = field(default_factory=dict)
    _waiting: dict[str, deque[Announcement]] = field(default_factory=dict)
    dropped: int = 0     # announcements left out (duplicates or over max_pending)

    def offer(self, a: Announcement) -> Announcement | None:
        """Queue `a`; returns it when it should start now (the room was quiet), else None."""
        waiting = self._waiting.setdefault(a.room, deque())
        playing = self._playing.get(a.room)
        if (playing is not None and playing.path == a.path) or any(w.path == a.path
                                                                   for w in waiting):
            self.dropped += 1
            return None
        if playing is None:
            self._playing[a.room] = a
            return a
        if len(waiting) >= self.max_pending:
            self.dropped += 1
            return None
        waiting.append(a)
        return None

    def finished(self, room: str) -> Announcement | None:
        """The room's announcement has played; returns the next one to start, if any."""
        self._playing.pop(room, None)
        waiting = self._waiting.get(room)
        if not waiting:
            self._waiting.pop(room, None)
            return None
        nxt = self._playing[room] = waiting.popleft()
        return nxt

    def forget(self, room: str) -> None:
        """The room is gone: nothing more is due in it."""
        self._playing.pop(room, None)
        self._waiting.pop(room, None)

    def playing(self, room: str) -> Announcement | None:
        return self._playing.get(room)

    def waiting(self, room: str) -> tuple[Announcement, ...]:
        return tuple(self._waiting.get(room, ()))
