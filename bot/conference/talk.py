"""Talk detection (pure): turns polled audio levels into `Talking` / `Silent` facts per member.

The SIP adapter polls each call's level (pjsua2 `AudioMedia.getTxLevel()`, 0..255) off the media
thread every ~50 ms and feeds the samples here with their timestamp; the detector returns the
changes. Owns the attack threshold, the attack time and the hang-over. Must not poll, sleep,
read a clock or know about calls: time arrives with the samples (STYLE lesson 1).

Theory: a member starts talking when every sample for `attack_ms` (from the first loud sample)
is at or above `attack_level` — one loud click does not count when attack_ms > 0. A talking
member falls silent when every sample for `hangover_ms` is below `release_level`; the hang-over
bridges the short pauses between words so the operator view does not flicker. release_level
<= attack_level gives hysteresis: a level hovering between the two changes nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_LEVEL = 255
_INT = {int}


@dataclass(frozen=True, slots=True)
class TalkSettings:
    attack_level: int = 24     # ~ -20 dBFS on pjmedia's 0..255 level scale
    release_level: int = 16
    attack_ms: int = 100
    hangover_ms: int = 600

    def __post_init__(self) -> None:
        if not 0 <= self.release_level <= self.attack_level <= MAX_LEVEL:
            raise ValueError("need 0 <= release_level <= attack_level <= 255, got "
                             f"release {self.release_level}, attack {self.attack_level}")
        if self.attack_ms < 0 or self.hangover_ms < 0:
            raise ValueError("attack_ms and hangover_ms must not be negative")


@dataclass(frozen=True, slots=True)
class Talking:
    member: str


@dataclass(frozen=True, slots=True)
class Silent:
    member: str


TalkEvent = Talking | Silent


@dataclass(slots=True)
class _Track:
    last_ms: int
    talking: bool = False
    run_since: int | None = None   # start of the current run of samples that would flip the state


class TalkDetector:
    __slots__ = ("settings", "_tracks", "_latest_ms")

    def __init__(self, settings: TalkSettings | None = None) -> None:
        self.settings = settings or TalkSettings()
        self._tracks: dict[str, _Track] = {}
        self._latest_ms = -(1 << 62)    # the latest time fed for anyone: no track is later

    def feed(self, member: str, level: int, at_ms: int) -> list[TalkEvent]:
        """One level sample. Raises ValueError (state unchanged) for a level outside 0..255 or a
        timestamp earlier than the member's previous one."""
        if not isinstance(level, int) or not 0 <= level <= MAX_LEVEL:
            raise ValueError(f"level must be an int 0..255, not {level!r}")
        track = self._tracks.get(member)
        if track is None:
            track = self._tracks[member] = _Track(at_ms)
        elif at_ms < track.last_ms:
            raise ValueError(f"time went backwards for {member!r}: {at_ms} < {track.last_ms}")
        track.last_ms = at_ms
        self._latest_ms = max(self._latest_ms, at_ms)
        s = self.settings
        flips = level < s.release_level if track.talking else level >= s.attack_level
        if not flips:
            track.run_since = None
            return []
        return self._run(track, member, at_ms)

    def _run(self, track: _Track, member: str, at_ms: int) -> list[TalkEvent]:
        """A sample that would flip the member's state: start or extend the run, flip once it
        has lasted the attack time (or the hang-over)."""
        s = self.settings
        if track.run_since is None:
            track.run_since = at_ms
        needed = s.hangover_ms if track.talking else s.attack_ms
        if at_ms - track.run_since < needed:
            return []
        track.talking = not track.talking
        track.run_since = None
        return [Talking(member) if track.talking else Silent(member)]

    def feed_all(self, levels: Mapping[str, int], at_ms: int) -> list[TalkEvent]:
        """One poll of many members at the same moment (validated first, then applied; the
        same results as `feed` for each member in turn). Runs every poll for every call, so
        the checks run at C speed when they can and a member whose state cannot change costs
        a dict lookup and three attribute accesses."""
        values = levels.values()
        if values and not (set(map(type, values)) <= _INT and 0 <= min(values)
                           and max(values) <= MAX_LEVEL):
            for member, level in levels.items():
                if not isinstance(level, int) or not 0 <= level <= MAX_LEVEL:
                    raise ValueError(f"level of {member!r} must be an int 0..255, not {level!r}")
        tracks = self._tracks
        if at_ms < self._latest_ms:     # earlier than some sample: check each member's own
            for member in levels:
                track = tracks.get(member)
                if track is not None and at_ms < track.last_ms:
                    raise ValueError(f"time went backwards for {member!r}")
        else:
            self._latest_ms = at_ms
        s = self.settings
        attack, release = s.attack_level, s.release_level
        out: list[TalkEvent] = []
        for member, level in levels.items():
            track = tracks.get(member)
            if track is None:
                track = tracks[member] = _Track(at_ms)
            track.last_ms = at_ms
            if (level < release) if track.talking else (level >= attack):
                out += self._run(track, member, at_ms)
            else:
                track.run_since = None
        return out

    def forget(self, member: str) -> list[TalkEvent]:
        """The member left: drop its track; a member who was talking is reported Silent."""
        track = self._tracks.pop(member, None)
        return [Silent(member)] if track is not None and track.talking else []

    def is_talking(self, member: str) -> bool:
        track = self._tracks.get(member)
        return track is not None and track.talking

    def talking(self) -> frozenset[str]:
        return frozenset(m for m, t in self._tracks.items() if t.talking)
