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
import json
import signal
import sys
import time

from bench.core.files import read_text, write_atomic
from bench.run import local, rows
from bench.run.budget import fmt_s
from bench.run.environment import environment
from bench.run.lock import Busy, hold
from bench.run.plan import Plan, tasks
from bench.run.procs import Terminated, catch_signals, restore_signals
from bench.run.rundir import RunDir


def _summary(plan: Plan, run_dir: RunDir, table_rows: list[dict], tasks_s: float) -> str:
    suite = len(plan.specs) > 1
    spec = plan.specs[0]
    head = (f"# suite: {len(plan.specs)} setups, {spec.steps} steps each" if suite else
            f"# {spec.algo.name} / {spec.arch} / {spec.dataset}: {spec.steps} steps, batch {spec.batch_size}"
            + (f" (preset {spec.preset})" if spec.preset else ""))
    head += f", seeds {','.join(map(str, plan.seeds))}, {plan.device}"
    head += f", devices {','.join(map(str, plan.devices))}" if plan.devices != (1,) else ""
    head += f", --budget {fmt_s(plan.budget)}" if plan.budget else ""
    head += f", {plan.repeats} interleaved rounds" if plan.repeats > 1 else ""
    from bench.analysis import report  # pandas and the plots only now: the CLI starts fast

    return (head + "\n\n" + report.summary([plan.out]) + rows.left_out(table_rows)
            + rows.time_spent(run_dir, tasks_s))


def execute(plan: Plan, resume: bool = False) -> int:
    """Run the plan (or what is left of it) holding the run directory's lock; 0 only if every
    requested task finished ok, 1 if one did not or a file could not be written (a full disk),
    2 if the run directory cannot be made or is in use, 128 + N if ended by signal N (130 for
    Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    try:
        run_dir = RunDir(plan.out, resume=resume)
    except OSError as e:
        sys.stderr.write(f"ganbench: error: --out {plan.out} cannot be made: {e.strerror or e}\n")
        return 2
    try:
        with hold(plan.out):
            return _execute(plan, run_dir, resume)
    except Busy as e:
        sys.stderr.write(f"ganbench: error: {e}\n")
        return 2
    except OSError as e:  # ENOSPC, EDQUOT, EIO...: every file written so far is whole
        where = f" ({e.filename})" if e.filename else ""
        sys.stderr.write(f"\nganbench: error: cannot write in {plan.out}{where}: {e.strerror or e}; the files there "
                         f"are whole: fix that, then continue with --resume {plan.out}\n")
        return 1


def _execute(plan: Plan, run_dir: RunDir, resume: bool) -> int:
    if resume:
        env = json.loads(read_text(plan.out / "env.json"))
        env["plan"] = plan.to_dict()  # where the run directory is now
    else:
        env = environment(plan)
    env.update(complete=False, interrupted=None)
    tasks_s = env.get("tasks_s", 0.0)
    run_dir.write_json("env.json", env)
    done = rows.keep_done(plan, run_dir) if resume else set()
    pending = [t for t in tasks(plan) if rows.task_key(t) not in done]
    old = catch_signals()
    t0 = time.monotonic()
    try:
        if plan.ray:
            from bench.run import cluster  # Ray is an optional extra, imported only when asked for

            results = cluster.run_tasks(plan, run_dir, pending)
        else:
            results = local.run_local(plan, run_dir, pending)
        with contextlib.closing(results):  # an interrupt stops the workers now, not at garbage collection
            for task, result in results:
                rows.record(plan, run_dir, task, result)
                env["backends"][task.tag] = result.get("info", {})
                env["tasks_s"] = tasks_s + time.monotonic() - t0  # over every call, --resume included
                run_dir.write_json("env.json", env)
    except (KeyboardInterrupt, Terminated) as e:
        restore_signals(old)  # a second signal ends the process at once (every file is whole)
        signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
        env["interrupted"] = signal.Signals(signum).name
        run_dir.write_json("env.json", env)
        sys.stderr.write(f"\ninterrupted: finished rows are in {plan.out}; continue with --resume {plan.out}\n")
        return 128 + signum
    finally:
        restore_signals(old)
    rows.fill_speedups(run_dir)
    env["complete"] = True
    run_dir.write_json("env.json", env)
    table_rows = run_dir.rows("timings.csv")
    summary = _summary(plan, run_dir, table_rows, env.get("tasks_s", 0.0))
    write_atomic(plan.out / "summary.md", summary)
    print(summary)
    if plan.report:
        from bench.analysis import report

        try:
            print(f"\nresults in {plan.out}; report: {report.build([plan.out], plan.out)}")
        except OSError as e:  # the run itself is complete and whole
            sys.stderr.write(f"ganbench: error: report.md not written: {e.strerror or e}; build it later with: "
                             f"python run_bench.py report {plan.out}\n")
            return 1
    else:
        print(f"\nresults in {plan.out}; build the report with: python run_bench.py report {plan.out}")
    return 0 if all(r["status"] == "ok" for r in table_rows) else 1
