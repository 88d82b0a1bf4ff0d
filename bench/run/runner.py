"""Runs a plan's tasks and gathers the results into a run directory: `execute(plan, resume)`.

Locally, one long-lived worker process per (backend, mode, device count) trains every setup
of the plan in turn, in the plan's order, so the framework is imported, the device set up and
the peak probe measured once per worker, not once per setup. A task that crashes its worker,
hangs past the timeout, fails or diverges becomes a row with that status, its worker is
replaced for the next task, and the other tasks are unaffected. The parent never imports a
framework: availability is checked with importlib.util, and everything a worker produces
comes back as files. With --budget, tasks that no longer fit are left out as `skipped`
rows (bench/run/budget.py); with --ray, bench/run/cluster.py runs them instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import backends
from bench.run import rows
from bench.run.budget import Budget, fmt_s
from bench.run.environment import environment
from bench.run.plan import Plan, Task, tasks
from bench.run.procs import OutOfTime, Progress, Stalled, Terminated, Worker, on_sigterm
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
        lines = log.read_text().strip().splitlines() if log.exists() else []
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
    (raw / f"{task.tag}.job.json").write_text(json.dumps(job))
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
        result = json.loads(result_file.read_text())
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


def _summary(plan: Plan, table_rows: list[dict]) -> str:
    suite = len(plan.specs) > 1
    spec = plan.specs[0]
    head = (f"# suite: {len(plan.specs)} setups, {spec.steps} steps each" if suite else
            f"# {spec.algo.name} / {spec.arch} / {spec.dataset}: {spec.steps} steps, batch {spec.batch_size}"
            + (f" (preset {spec.preset})" if spec.preset else ""))
    head += f", seeds {','.join(map(str, plan.seeds))}, {plan.device}"
    head += f", devices {','.join(map(str, plan.devices))}" if plan.devices != (1,) else ""
    head += f", --budget {fmt_s(plan.budget)}" if plan.budget else ""
    table = rows.summary_table(table_rows, suite, plan.devices != (1,))
    return head + "\n\n" + table + "\n" + rows.left_out(table_rows)


def execute(plan: Plan, resume: bool = False) -> int:
    """Run the plan (or what is left of it); 0 only if every requested task finished ok,
    1 if one did not, 130 / 143 if interrupted by Ctrl-C / SIGTERM."""
    run_dir = RunDir(plan.out, resume=resume)
    env = json.loads((plan.out / "env.json").read_text()) if resume else environment(plan)
    env.update(complete=False, interrupted=None)
    run_dir.write_json("env.json", env)
    if resume:
        rows.drop_retried(run_dir)
    done = rows.finished(run_dir)
    pending = [t for t in tasks(plan) if rows.task_key(t) not in done]
    old = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if plan.ray:
            from bench.run import cluster  # Ray is an optional extra, imported only when asked for

            results = cluster.run_tasks(plan, run_dir, pending)
        else:
            results = run_local(plan, run_dir, pending)
        with contextlib.closing(results):  # an interrupt stops the workers now, not at garbage collection
            for task, result in results:
                rows.record(plan, run_dir, task, result)
                env["backends"][task.tag] = result.get("info", {})
                run_dir.write_json("env.json", env)
    except (KeyboardInterrupt, Terminated) as e:
        env["interrupted"] = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        run_dir.write_json("env.json", env)
        sys.stderr.write(f"\ninterrupted: finished rows are in {plan.out}; continue with --resume {plan.out}\n")
        return 143 if isinstance(e, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, old)
    rows.fill_speedups(run_dir)
    env["complete"] = True
    run_dir.write_json("env.json", env)
    table_rows = rows.timing_rows(run_dir.path)
    summary = _summary(plan, table_rows)
    (plan.out / "summary.md").write_text(summary)
    print(summary.split("\n\n", 1)[1])
    if plan.report:
        from bench.analysis import report

        print(f"\nresults in {plan.out}; report: {report.build([plan.out], plan.out)}")
    else:
        print(f"\nresults in {plan.out}; build the report with: python run_bench.py report {plan.out}")
    return 0 if all(r["status"] == "ok" for r in table_rows) else 1
