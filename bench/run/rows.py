"""The rows of a run directory's tables: recording a finished task (timings, losses, quality,
sample pictures), reading timings.csv back (--resume, speedups), and the summary table."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import backends
from bench.core import data as datasets
from bench.core.nets import ARCHS
from bench.run.environment import version
from bench.run.plan import Plan, Task, tasks
from bench.run.rundir import BLOCK_COLUMNS, LOSS_COLUMNS, TIMING_COLUMNS, RunDir, read_rows


def record(plan: Plan, run_dir: RunDir, task: Task, result: dict) -> dict:
    """Append the block, loss and quality rows, the sample picture and, last, the timing row of one
    finished task: a timing row means that everything before it is there (see done_tasks)."""
    s, tag = task.spec, task.tag
    base = {"backend": task.backend, "mode": task.mode, "algo": s.algo.name, "arch": s.arch,
            "dataset": s.dataset, "batch_size": s.batch_size, "devices": s.devices, "seed": s.seed}
    if result.get("blocks"):
        timed_from = result.get("resumed_from", 0) + s.warmup
        run_dir.append("blocks.csv", BLOCK_COLUMNS, [
            {**base, "repeat": task.repeat, "start": start, "steps": n, "ms_per_step": 1000 * sec / n,
             "timed": int(start >= timed_from)} for start, n, sec in result["blocks"]])
    raw = run_dir.path / "raw" / f"{tag}.npz"
    if raw.exists() and not task.repeat:
        m = np.load(raw)
        rows = [{**base, "step": int(i), **{k: float(m[k][i]) for k in m.files if k != "step"}} for i in m["step"]]
        run_dir.append("losses.csv", LOSS_COLUMNS, rows)
    info, t = result.get("info", {}), result.get("timing", {})
    framework = backends.entry(task.backend).framework
    row = {**base, "repeat": task.repeat, "status": result["status"], "steps": result.get("steps_done", 0),
           "per_device_batch": s.batch_size // s.devices,
           "device": info.get("device_name", plan.device), "framework": framework,
           "framework_version": info.get("framework_version", version(framework)),
           "threads": info.get("threads"), "precision": info.get("precision"),
           "peak_mem_mb": result.get("peak_mem_mb"),
           "note": "; ".join(x for x in (info.get("note"), result.get("note"), result.get("error")) if x)}
    if t:
        row.update(t)
        row["samples_per_s"] = s.batch_size * s.algo.n_critic / (t["step_ms_median"] / 1000)
    if not task.repeat:  # a timing round's samples and scores would be round 0's early steps again
        _score_and_draw(run_dir, task)
    run_dir.append("timings.csv", TIMING_COLUMNS, [row])  # last: a timing row means the rest is there
    return row


def _score_and_draw(run_dir: RunDir, task: Task) -> None:
    """The quality rows and the sample picture of a task's training round."""
    s, tag = task.spec, task.tag
    from bench.analysis import quality  # POT and the classifier load only once there is something to score

    try:
        scores = quality.score_run(run_dir.path, task.backend, task.mode, s, tag)
    except ImportError as e:  # POT missing (a bare GPU machine): the row stands without its quality
        sys.stderr.write(f"{tag}: quality not scored: {e}\n")
        scores = []
    if scores:
        run_dir.append("quality.csv", quality.QUALITY_COLUMNS, scores)
    samples = run_dir.path / "samples" / f"{tag}.npy"
    if samples.exists():
        from bench.analysis import plots  # matplotlib only once there is a picture to draw: the CLI starts fast

        real = datasets.load(s.dataset, s.data_dir).x if ARCHS[s.arch].x_shape == (2,) else None
        plots.sample_grid(np.load(samples), samples.with_suffix(".png"), f"{tag} after {s.steps} steps", real)


def _key(backend: str, mode: str, algo: str, arch: str, batch_size, seed, devices=1, repeat=0) -> tuple:
    return backend, mode, algo, arch, int(batch_size), int(seed), int(devices or 1), int(repeat or 0)


def task_key(task: Task) -> tuple:
    s = task.spec
    return _key(task.backend, task.mode, s.algo.name, s.arch, s.batch_size, s.seed, s.devices, task.repeat)


def _row_key(r: dict, devices: bool = True) -> tuple:
    """_key of a timings.csv row; devices=False: the key of its one-device twin (same round)."""
    return _key(r["backend"], r["mode"], r["algo"], r["arch"], r["batch_size"], r["seed"],
                r.get("devices") if devices else 1, r.get("repeat"))


RETRIED = ("failed", "unavailable", "skipped")  # on --resume; a diverged run would only diverge again


TABLES = ("timings.csv", "blocks.csv", "losses.csv", "quality.csv")  # a task's rows, keyed by _row_key


def done_tasks(plan: Plan, path: Path) -> set[tuple]:
    """Keys of the tasks with every output in the run directory: a timing row (record writes it
    last) that --resume does not retry and, for an ok training round, its loss rows and sample
    files. Anything less (an interrupt while scoring, a file deleted since) runs again on --resume."""
    with_losses = {_row_key(r) for r in read_rows(path / "losses.csv")}
    planned = {task_key(t): t for t in tasks(plan)}
    done = set()
    for r in read_rows(path / "timings.csv"):
        k = _row_key(r)
        if k not in planned or r["status"] in RETRIED:
            continue
        task = planned[k]
        samples = [path / "samples" / f"{task.tag}{ext}" for ext in (".npy", ".png")]
        if (r["status"] == "ok" and not task.repeat
                and (k not in with_losses or not all(f.is_file() for f in samples))):
            continue
        done.add(k)
    return done


def to_do(plan: Plan, path: Path) -> list[Task]:
    """The tasks of a run directory that --resume runs: not run yet, failed, skipped or incomplete."""
    done = done_tasks(plan, path)
    return [t for t in tasks(plan) if task_key(t) not in done]


def keep_done(plan: Plan, run_dir: RunDir) -> set[tuple]:
    """On resume, take out every row of the tasks that run again (their logs keep the failure),
    so that no row is doubled; they restart from their last checkpoints where they have one."""
    done = done_tasks(plan, run_dir.path)
    dropped = [run_dir.keep_rows(name, lambda r: _row_key(r) in done) for name in TABLES]
    if dropped[0]:
        sys.stderr.write(f"running again {dropped[0]} task(s) that failed, were skipped or unavailable, "
                         "or lost an output\n")
    return done


def fill_speedups(run_dir: RunDir) -> None:
    """speedup_vs_1 of each row: its one-device twin's median step time over its own.
    Rewritten once at the end (atomically), since rows may arrive in any order."""
    rows = run_dir.rows("timings.csv")
    if not any(r.get("devices") not in ("", "1") for r in rows):
        return
    ok = [r for r in rows if r["status"] == "ok" and r["step_ms_median"]]
    one = {_row_key(r): float(r["step_ms_median"]) for r in ok if r["devices"] == "1"}
    for r in ok:
        base = one.get(_row_key(r, devices=False))
        r["speedup_vs_1"] = f"{base / float(r['step_ms_median']):.4g}" if base else ""
    run_dir.rewrite("timings.csv", TIMING_COLUMNS, rows)




def left_out(rows: list[dict]) -> str:
    """The summary's list of the tasks --budget left out, each with its reason; "" if none."""
    skipped = [r for r in rows if r["status"] == "skipped"]
    if not skipped:
        return ""
    lines = [f"- {r['algo']} / {r['arch']} / batch {r['batch_size']}: {r['backend']}-{r['mode']} "
             f"(seed {r['seed']}, {r['devices']} device(s)): {r['note']}" for r in skipped]
    return f"\n## Left out: {len(skipped)} task(s)\n\n" + "\n".join(lines) + "\n"


def time_spent(run_dir: RunDir, tasks_s: float) -> str:
    """The summary's account of the tasks' wall time: timed blocks, compilation, the rest of the
    warm-up blocks, and everything outside training (worker starts, data, sampling, scoring)."""
    blocks, timings = run_dir.rows("blocks.csv"), run_dir.rows("timings.csv")
    if not blocks or tasks_s <= 0:
        return ""
    block_s = [float(b["ms_per_step"]) * int(b["steps"]) / 1000 for b in blocks]
    timed = sum(s for s, b in zip(block_s, blocks, strict=True) if b["timed"] == "1")
    compiled = sum(float(r["compile_s"] or 0) for r in timings if r["status"] == "ok")
    warm = sum(block_s) - timed - compiled
    rest = tasks_s - sum(block_s)
    return (f"\n## Where the time went\n\n{tasks_s / 60:.1f} min of tasks: timed blocks {timed / 60:.1f} min, "
            f"compilation {compiled / 60:.1f} min, the rest of the warm-up blocks {warm / 60:.1f} min, outside "
            f"training {rest / 60:.1f} min (worker starts, data, sampling, scoring, pictures). "
            f"Wall / (timed + compilation) = {tasks_s / (timed + compiled):.2f}.\n")
