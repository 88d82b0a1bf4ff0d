"""Step-time statistics from timed blocks (the GUIDE's timing protocol).

The worker times each call into the backend (a block of K generator iterations that
returns only when the device is done). Blocks that start before `warmup` steps are
excluded; the first call's excess over a steady block is reported as compile time.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class BlockTime:
    start: int
    steps: int
    seconds: float

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.seconds / self.steps


@dataclass(frozen=True)
class StepStats:
    compile_s: float
    step_ms_median: float
    step_ms_min: float
    step_ms_max: float
    timed_steps: int


def summarize(blocks: list[BlockTime], warmup: int) -> StepStats:
    timed = [b for b in blocks if b.start >= warmup]
    if not timed:
        raise ValueError(f"no timed block: every step is within the {warmup} warm-up steps")
    per_step = [b.ms_per_step for b in timed]
    med = statistics.median(per_step)
    first = blocks[0]
    compile_s = max(0.0, first.seconds - first.steps * med / 1000.0)
    return StepStats(compile_s, med, min(per_step), max(per_step), sum(b.steps for b in timed))
