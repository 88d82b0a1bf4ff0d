"""--budget: which task still fits in the time left, judged from what this run has measured.

A task is started only when its estimated cost fits before the deadline (the budget counted
from the start of execution); one that does not is left out, and the later (cheaper) ones
are still tried. A task still running at the deadline is stopped. The estimate, in seconds:

    cost = start + body
    start = 0 when the task's worker is already running; otherwise the slowest worker start
            (interpreter and framework import) measured for the same backend, else twice the
            slowest of any backend, else 0
    body  = the slowest measured task of the most similar kind, times max(1, work ratio),
            times a safety factor, where work = batch x (n_critic + 1) x steps (a larger batch
            or a longer run costs proportionally more; a smaller one is not credited, since
            compiling does not shrink with the batch). Similarity, first found wins:
              same backend, mode, arch and algo   factor 1
              same backend, mode and arch         factor 2
              same arch                           factor 2  (another framework compiles otherwise)
              any task                            factor 2
            with nothing measured yet, 0: the first task of a run always starts.

A task's body is its wall time from being handed to its worker until its result, less the
worker's start when the worker was started for it: data, compile, every step, sampling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.run.plan import Task

SIMILAR: tuple[tuple[Callable[[Task, Task], bool], float], ...] = (
    (lambda a, b: (a.backend, a.mode, a.spec.arch, a.spec.algo.name) == (b.backend, b.mode, b.spec.arch,
                                                                        b.spec.algo.name), 1.0),
    (lambda a, b: (a.backend, a.mode, a.spec.arch) == (b.backend, b.mode, b.spec.arch), 2.0),
    (lambda a, b: a.spec.arch == b.spec.arch, 2.0),
    (lambda a, b: True, 2.0),
)
UNSEEN_START_FACTOR = 2.0  # a backend whose worker never started here: twice the slowest start seen


def work(task: Task) -> float:
    s = task.spec
    return float(s.batch_size * (s.algo.n_critic + 1) * s.steps)


def fmt_s(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


@dataclass
class Budget:
    seconds: float
    deadline: float  # time.monotonic() at which the budget ends

    @classmethod
    def starting_now(cls, seconds: float) -> Budget:
        return cls(seconds, time.monotonic() + seconds)

    def __post_init__(self) -> None:
        self.bodies: list[tuple[Task, float]] = []
        self.starts: dict[str, float] = {}  # backend -> slowest worker start

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def measured(self, task: Task, body_s: float, start_s: float | None) -> None:
        self.bodies.append((task, body_s))
        if start_s is not None:
            self.starts[task.backend] = max(start_s, self.starts.get(task.backend, 0.0))

    def estimate(self, task: Task, worker_running: bool) -> float:
        start = 0.0
        if not worker_running:
            start = self.starts.get(task.backend, UNSEEN_START_FACTOR * max(self.starts.values(), default=0.0))
        for similar, factor in SIMILAR:
            seen = [(t, s) for t, s in self.bodies if similar(task, t)]
            if seen:
                return start + factor * max(s * max(1.0, work(task) / work(t)) for t, s in seen)
        return start

    def why_not(self, task: Task, worker_running: bool) -> str | None:
        """None if the task fits in what is left; else the reason it is left out."""
        est, left = self.estimate(task, worker_running), self.left()
        if est <= left:
            return None
        return (f"left out by --budget {fmt_s(self.seconds)}: estimated {fmt_s(est)}, "
                f"{fmt_s(max(0.0, left))} left")
