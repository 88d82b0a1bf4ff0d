"""--budget: which task still fits in the time left, judged from what this run has measured.

A task is started only when its estimated cost fits before the deadline (the budget counted
from the start of execution); one that does not is left out, and the later (cheaper) ones
are still tried. A task still running at the deadline is stopped. The estimate, in seconds:

    cost = start + body
    start = 0 when the task's worker is already running; otherwise the slowest worker start
            (interpreter and framework import) measured for the same backend, else twice the
            slowest of any backend, else 0
    body  = over the measured tasks of the most similar kind, each one's time times
            max(1, work ratio), where work = batch x (n_critic + 1) x steps (a larger batch or
            a longer run costs proportionally more; a smaller one is not credited, since
            compiling does not shrink with the batch); of these the slowest, or for other
            modes the median (one slow mode, TF eager, must not shut out every other
            framework), times a safety factor. Similarity, first found wins:
              same backend, mode, arch and algo   slowest x 1
              same backend, mode and arch         slowest x 2
              same arch                           median x 2  (another mode compiles otherwise)
              any task                            median x 2
            with nothing measured yet, 0: the first task of a run always starts.

A task's body is its wall time from being handed to its worker until its result, less the
worker's start when the worker was started for it: data, compile, every step, sampling.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.run.plan import Task

# (is b similar to a, how the scaled costs of the similar tasks are summed up, factor)
SIMILAR: tuple[tuple[Callable[[Task, Task], bool], Callable[[list[float]], float], float], ...] = (
    (lambda a, b: (a.backend, a.mode, a.spec.arch, a.spec.algo.name) == (b.backend, b.mode, b.spec.arch,
                                                                        b.spec.algo.name), max, 1.0),
    (lambda a, b: (a.backend, a.mode, a.spec.arch) == (b.backend, b.mode, b.spec.arch), max, 2.0),
    (lambda a, b: a.spec.arch == b.spec.arch, statistics.median, 2.0),
    (lambda a, b: True, statistics.median, 2.0),
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
        for similar, summed, factor in SIMILAR:
            seen = [s * max(1.0, work(task) / work(t)) for t, s in self.bodies if similar(task, t)]
            if seen:
                return start + factor * summed(seen)
        return start

    def why_not(self, task: Task, worker_running: bool) -> str | None:
        """None if the task fits in what is left; else the reason it is left out."""
        est, left = self.estimate(task, worker_running), self.left()
        if est <= left:
            return None
        return (f"left out by --budget {fmt_s(self.seconds)}: estimated {fmt_s(est)}, "
                f"{fmt_s(max(0.0, left))} left")
