"""Per-stage timers: what the HUD shows (medians of the last frames) and what the final
report and `livestyle bench` read (a bounded, uniform sample of every frame)."""

from __future__ import annotations

import random
import statistics
from collections import deque

STAGES = ("capture", "preprocess", "inference", "postprocess", "sinks")
KEEP = 4096  # per-stage samples kept for the final report, however long the run


class StageTimers:
    """Per-stage durations of the last `window` frames, in milliseconds, and for the final
    report a uniform sample of every frame's (all of them up to `keep`, so memory stays flat
    on a run of hours)."""

    def __init__(self, window: int = 120, keep: int = KEEP):
        self.samples = {s: deque(maxlen=window) for s in STAGES}
        self.all: dict[str, list[float]] = {s: [] for s in STAGES}
        self.frame_times: deque[float] = deque(maxlen=window)
        self._counts = dict.fromkeys(STAGES, 0)
        self._keep = keep
        self._rng = random.Random(0)

    def add(self, stage: str, seconds: float) -> None:
        ms = seconds * 1e3
        self.samples[stage].append(ms)
        self._counts[stage] += 1
        kept = self.all[stage]
        if len(kept) < self._keep:
            kept.append(ms)
        else:  # reservoir sampling: every sample so far stays equally likely to be kept
            j = self._rng.randrange(self._counts[stage])
            if j < self._keep:
                kept[j] = ms

    def recent_ms(self, stage: str) -> float:
        s = self.samples[stage]
        return statistics.median(s) if s else 0.0

    def fps(self) -> float:
        t = self.frame_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
