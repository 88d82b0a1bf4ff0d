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

from bench.run import local, rows
from bench.run.budget import fmt_s
from bench.run.environment import environment
from bench.run.plan import Plan, tasks
from bench.run.procs import Terminated, on_sigterm
from bench.run.rundir import RunDir


def _summary(plan: Plan, table_rows: list[dict]) -> str:
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

    return head + "\n\n" + report.summary([plan.out]) + rows.left_out(table_rows)


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
            results = local.run_local(plan, run_dir, pending)
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
    print(summary)
    if plan.report:
        from bench.analysis import report

        print(f"\nresults in {plan.out}; report: {report.build([plan.out], plan.out)}")
    else:
        print(f"\nresults in {plan.out}; build the report with: python run_bench.py report {plan.out}")
    return 0 if all(r["status"] == "ok" for r in table_rows) else 1
