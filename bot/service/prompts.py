"""Prompt IDs → playable WAVs: `Prompts` (catalog + render cache → a WAV and its length, rendered
in a worker thread, never on the loop; warm prompts remembered in a bounded LRU), `wav_seconds`,
and `trim_name` (a caller's name recording trimmed in place, or refused as silence).

Used by `bot.service.driver` (one driver per call) and built once by the composition root into
the `bot.service.context.IvrContext`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import wave
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ivr import events as ev
from ivr.catalog import Catalog, Recording, resolve
from ivr.speech.render import PromptCache, read_wav, trim, write_wav

MEMO_MAX = 2048                      # rendered prompts remembered (LRU): warm ones cost no hop
NAME_FLOOR_DBFS = -45.0              # a "name" whose loudest 10 ms stay below this is silence


def wav_seconds(path: str | Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


class Prompts:
    """Prompt IDs → playable WAVs (path, seconds). Rendering runs in `executor`; results of
    prompts with hashable parameters are remembered, so a warm prompt costs no thread hop."""

    def __init__(self, catalog: Catalog, cache: PromptCache,
                 executor: concurrent.futures.Executor | None = None) -> None:
        self.catalog, self.cache = catalog, cache
        self._executor = executor
        self._memo: OrderedDict[tuple, tuple[str, float]] = OrderedDict()   # LRU, MEMO_MAX
        self._derived: dict[str, set[Path]] = {}    # a caller's recording → cache files made of it

    def _render(self, prompt: ev.PromptId, params: ev.Params, lang: str
                ) -> tuple[tuple[str, float], list[str], set[Path]]:
        resolved = resolve(self.catalog, prompt, params, lang)
        path = self.cache.wav_for(resolved)
        recordings = [str(s.path) for s in resolved.segments if isinstance(s, Recording)]
        made = {path, *(self.cache.recording_wav(r) for r in recordings)} if recordings else set()
        return (str(path), wav_seconds(path)), recordings, made

    async def wav(self, prompt: ev.PromptId, params: ev.Params, lang: str) -> tuple[str, float]:
        key = (prompt, params, lang)
        try:
            hit = self._memo.get(key)
        except TypeError:        # unhashable parameter values: render every time
            key, hit = None, None
        if hit is not None:
            self._memo.move_to_end(key)
            return hit
        loop = asyncio.get_running_loop()
        out, recordings, made = await loop.run_in_executor(self._executor, self._render, prompt,
                                                           params, lang)
        for r in recordings:
            self._derived.setdefault(r, set()).update(made)
        if key is not None:
            self._memo[key] = out
            if len(self._memo) > MEMO_MAX:
                self._memo.popitem(last=False)
        return out

    def forget(self, recording: str) -> None:
        """A caller's recording is gone: drop what was rendered from it (memo and cache)."""
        for path in self._derived.pop(recording, ()):
            path.unlink(missing_ok=True)
        for k in [k for k in self._memo if any(value == recording for _name, value in k[1])]:
            del self._memo[k]

    async def file(self, path: str) -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        return path, await loop.run_in_executor(self._executor, wav_seconds, path)


def trim_name(path: str, clock_rate: int) -> tuple[str | None, int]:
    """Trim a name recording in place; (None, 0) when it holds no voice at all."""
    x, rate = read_wav(path)
    if len(x) == 0:
        return None, 0
    win = max(1, rate // 100)
    n = len(x) // win
    loudest = float(np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1)).max()) if n else 0.0
    if loudest < 10 ** (NAME_FLOOR_DBFS / 20):
        return None, 0
    y = trim(x, rate)
    write_wav(Path(path), y, rate)
    return path, int(1000 * len(y) / rate)

