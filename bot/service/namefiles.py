"""Recorded names on disk (wiring over the file system): kept while their conference needs them.

A caller's name recordings are `<names_dir>/<call>-<n>.wav` (every attempt, and the names a
moderator records for others; the driver lists what it recorded). They are needed while the caller is
in the room (its seat in the owner, renaming) and after it left, for its "… has left" announcement and by a
moderator who named someone still there — so they go when the conference they were recorded for
is over: its room empty and its announcements played. A call that never reached a room has its
files removed when it ends. What the prompt renderer made of a recording goes with it
(`Prompts.forget`). At start-up no call survives, so every file left by a crash goes too.
Must not decide when a room is over: `bot.service.voice` says so (`room_idle`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("confbot.voice")


class NameFiles:
    def __init__(self, directory: Path, forget: Callable[[str], None] = lambda _path: None) -> None:
        self.directory = directory
        self._forget = forget
        self._ended: dict[str, list[str]] = {}    # room → recordings of calls gone from it

    def sweep(self) -> int:
        """Remove every recording (at start-up: none belongs to a live call)."""
        removed = 0
        for path in self.directory.glob("*.wav") if self.directory.is_dir() else ():
            path.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.info("removed %d name recordings left from the last run", removed)
        return removed

    def call_ended(self, recordings: list[str], room: str | None) -> None:
        """A call that recorded `recordings` ended; `room`: the conference it was in, if any."""
        if room is None:
            self._remove(recordings)
        elif recordings:
            self._ended.setdefault(room, []).extend(recordings)

    def room_idle(self, room: str) -> None:
        """`room` is empty and silent: its callers' recordings are no longer needed."""
        self._remove(self._ended.pop(room, ()))

    def kept(self) -> int:
        return sum(len(r) for r in self._ended.values())

    def _remove(self, recordings) -> None:
        for path in recordings:
            try:
                self._forget(path)
                Path(path).unlink(missing_ok=True)
            except OSError as e:     # one file that cannot go must not keep the others
                log.warning("name recording %s not removed: %s", path, e)
