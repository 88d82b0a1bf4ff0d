"""Running tasks here: long-lived worker processes, one per (backend, mode, device count),
each training the plan's setups in turn, in the plan's order. A task that crashes its worker,
hangs past the timeout, fails or diverges becomes a result with that status and its worker is
replaced for the next task. With --budget, tasks that no longer fit are `skipped`
(bench/run/budget.py). A Ray task runs `run_one` on its node (bench/run/cluster.py).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import backends
from bench.core.files import ENCODING, read_text, write_atomic
from bench.run.budget import Budget, fmt_s
from bench.run.plan import Plan, Task
from bench.run.procs import OutOfTime, Progress, Stalled, Worker
from bench.run.rundir import RunDir

OK = "ok"  # the one status after which a worker takes the next task; after any other it is replaced


class Workers:
    """The run's live workers, one per Task.worker_key, each started when first needed."""

    def __init__(self, plan: Plan, run_dir: RunDir) -> None:
        self.plan, self.run_dir, self.live = plan, run_dir, {}

    def running(self, task: Task) -> bool:
        return task.worker_key in self.live

    def get(self, task: Task) -> Worker:
        if task.worker_key not in self.live:
            backend, mode, n = task.worker_key
            log = self.run_dir.path / "logs" / f"worker-{backend}-{mode}" f"{f'-{n}dev' if n > 1 else ''}.log"
            self.live[task.worker_key] = Worker(backends.entry(backend).module, self.run_dir.path / "raw",
                                                self.plan.device, n, log)
        return self.live[task.worker_key]

    def drop(self, task: Task) -> None:
        """Kill the task's worker (the next task of its key starts a new one)."""
        w = self.live.pop(task.worker_key, None)
        if w is not None:
            w.kill()

    def close(self) -> None:
        for w in self.live.values():
            w.close()
        self.live.clear()


def _tail(*logs: Path) -> str:
    """The last lines of the first log that has any (the task's; the worker's if it died before)."""
    for log in logs:
        lines = log.read_text(encoding=ENCODING, errors="replace").strip().splitlines() if log.exists() else []
        if lines:
            return " | ".join(lines[-5:])[-600:]
    return ""


def run_task(plan: Plan, run_dir: RunDir, task: Task, workers: Workers, deadline: float | None = None) -> dict:
    """Train one task on its worker; returns its result dict, with wall_s (handed over to result)
    and, when its worker was started for it, start_s (spawn to framework imported)."""
    entry = backends.entry(task.backend)
    if importlib.util.find_spec(entry.framework) is None:
        return {"status": "unavailable", "error": f"{entry.framework} is not installed: {entry.install}"}
    raw, log = run_dir.path / "raw", run_dir.path / "logs" / f"{task.tag}.log"
    job = {"backend": task.backend, "module": entry.module, "install": entry.install, "mode": task.mode,
           "device": plan.device, "spec": task.spec.to_json(), "tag": task.tag, "work_dir": str(raw),
           "samples_dir": str(run_dir.path / "samples"), "log": str(log),
           "checkpoint": str(run_dir.path / "checkpoints" / f"{task.tag}.npz")}
    write_atomic(raw / f"{task.tag}.job.json", json.dumps(job))
    result_file = raw / f"{task.tag}.json"
    result_file.unlink(missing_ok=True)  # a resumed task's stale result
    fresh = not workers.running(task)
    worker, progress, t0 = workers.get(task), Progress(task.tag), time.monotonic()
    try:
        code = worker.run(task.tag, progress, plan.timeout, deadline)
    except Stalled:
        workers.drop(task)
        error = f"timed out: no step finished in {plan.timeout:g} s"
        progress.done(f"failed: {error}")
        return {"status": "failed", "error": f"{error} (log: {log.name})"}
    except OutOfTime:
        workers.drop(task)
        note = f"stopped at the end of --budget {fmt_s(plan.budget)}, {fmt_s(time.monotonic() - t0)} into it"
        progress.done(f"skipped: {note}")
        return {"status": "skipped", "error": note}
    except BaseException:  # Ctrl-C or SIGTERM: take the worker down with us
        workers.drop(task)
        raise
    if code is None and result_file.exists():
        result = json.loads(read_text(result_file))
    else:  # killed by a signal, the OOM killer, a segfault...
        error = f"worker exited with code {code} (log: {log.name}): {_tail(log, worker.log)}"
        result = {"status": "failed", "error": error}
    if result["status"] != OK:  # whatever state the framework is left in goes with the process
        workers.drop(task)
    result["wall_s"] = time.monotonic() - t0
    if fresh and worker.start_s is not None:
        result["start_s"] = worker.start_s
    progress.done(result["status"] + (f": {result['error'][:300]}" if result.get("error") else ""))
    return result


def run_one(plan: Plan, run_dir: RunDir, task: Task) -> dict:
    """One task on a worker of its own (a Ray task's unit)."""
    workers = Workers(plan, run_dir)
    try:
        return run_task(plan, run_dir, task, workers)
    finally:
        workers.close()


def run_local(plan: Plan, run_dir: RunDir, pending: list[Task]) -> Iterator[tuple[Task, dict]]:
    """The pending tasks in order on long-lived workers, within plan.budget if it has one."""
    budget = Budget.starting_now(plan.budget) if plan.budget else None
    workers = Workers(plan, run_dir)
    try:
        for task in pending:
            running = workers.running(task)
            why = budget.why_not(task, running) if budget else None
            if why:
                sys.stderr.write(f"{task.tag:<14} skipped: {why}\n")
                yield task, {"status": "skipped", "error": why}
                continue
            result = run_task(plan, run_dir, task, workers, budget.deadline if budget else None)
            if budget and result["status"] == OK:
                start = result.get("start_s")
                budget.measured(task, result["wall_s"] - (start or 0.0), start)
            yield task, result
    finally:
        workers.close()
