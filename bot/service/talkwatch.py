"""Whose voices the talk poll reads (asyncio wiring): the members of the conferences someone
watches.

Talk detection costs a level read per call per poll tick and a Python sample per call for the
detector. Nobody needs that for a conference nobody looks at, so the SIP adapter polls only
the calls it is told to (`WatchLevels`). Owns the watches: `watch(conference)` (None: every
conference) returns a function that ends that watch; while a conference is watched, its
members' voices are polled and their `Talking` / `Silent` facts reach the voice service's
subscribers within the poll interval plus the attack time (100..200 ms at the defaults).
Keeps the polled set equal to the watched conferences' members as calls join, leave and move
(`bot.service.members` reports each); a member that stops being watched is forgotten by the
detector (reported Silent if it was talking), so no view is left with a stale "talking".
Must not keep membership: it asks the owner (`bot.conference.owner`) and holds only the call
ids it told the stack to poll.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from bot.sip.events import WatchLevels

EVERY = None     # watch(EVERY): every conference, present and future


class TalkWatch:
    __slots__ = ("voice", "_watches", "_polled")

    def __init__(self, voice) -> None:
        self.voice = voice
        self._watches: Counter[str | None] = Counter()   # conference (None: all) → watchers
        self._polled: set[str] = set()                    # what the stack was told to poll

    def watch(self, conference: str | None = EVERY) -> Callable[[], None]:
        """Start watching `conference`'s talkers (None: every conference); call the returned
        function to stop (again: no effect)."""
        self._watches[conference] += 1
        self._resync(self._members(conference))
        ended = False

        def unwatch() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self._watches[conference] -= 1
            if self._watches[conference] <= 0:
                del self._watches[conference]
            self._resync(self._members(conference))
        return unwatch

    def watched(self, conference: str | None) -> bool:
        return conference is not None and (EVERY in self._watches
                                           or conference in self._watches)

    def polled(self) -> frozenset[str]:
        return frozenset(self._polled)

    def placed(self, call: str, conference: str | None) -> None:
        """`call` is now in `conference` (None: in none): poll it exactly when that is
        watched. O(1): called for every join, leave and move."""
        self._resync((call,), conference)

    def reset(self) -> None:
        """The SIP adapter is gone (stop): nothing is polled; the watches stay."""
        self._polled.clear()

    # ---- inside -------------------------------------------------------------------------------

    def _members(self, conference: str | None) -> list[str]:
        conf = self.voice.members.conf
        names = conf.conferences() if conference is EVERY else (conference,)
        return [s.call for c in names for s in conf.members(c)]

    def _resync(self, calls: Iterable[str], where: str | None | bool = True) -> None:
        """Bring `calls` in line with the watches; `where` is their conference when known
        (True: ask the owner)."""
        seat_of = self.voice.members.conf.seat_of
        on, off = [], []
        for call in calls:
            if where is True:
                seat = seat_of(call)
                conference = seat.conference if seat is not None else None
            else:
                conference = where
            want = self.watched(conference)
            if want and call not in self._polled:
                self._polled.add(call)
                on.append(call)
            elif not want and call in self._polled:
                self._polled.discard(call)
                off.append(call)
        submit = self.voice._submit
        if on:
            submit(WatchLevels(tuple(on), True))
        if off:
            submit(WatchLevels(tuple(off), False))
            for call in off:
                self.voice._fan_out_all(self.voice.talk.forget(call))
