"""The rows of a run directory's tables: recording a finished task (timings, losses, quality,
sample pictures), reading timings.csv back (--resume, speedups), and the summary table."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

import backends
from bench.core import data as datasets
from bench.core.nets import ARCHS
from bench.run.environment import version
from bench.run.plan import Plan, Task
from bench.run.rundir import BLOCK_COLUMNS, LOSS_COLUMNS, TIMING_COLUMNS, RunDir


def record(plan: Plan, run_dir: RunDir, task: Task, result: dict) -> dict:
    """Append the loss rows and the timing row of one finished task."""
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
    run_dir.append("timings.csv", TIMING_COLUMNS, [row])
    if task.repeat:  # a timing round: its samples and scores would be round 0's early steps again
        return row
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
    return row


def _key(backend: str, mode: str, algo: str, arch: str, batch_size, seed, devices=1, repeat=0) -> tuple:
    return backend, mode, algo, arch, int(batch_size), int(seed), int(devices or 1), int(repeat or 0)


def task_key(task: Task) -> tuple:
    s = task.spec
    return _key(task.backend, task.mode, s.algo.name, s.arch, s.batch_size, s.seed, s.devices, task.repeat)


def _row_key(r: dict, devices: bool = True) -> tuple:
    """_key of a timings.csv row; devices=False: the key of its one-device twin (same round)."""
    return _key(r["backend"], r["mode"], r["algo"], r["arch"], r["batch_size"], r["seed"],
                r.get("devices") if devices else 1, r.get("repeat"))


def timing_rows(path: Path) -> list[dict]:
    f = path / "timings.csv"
    if not f.exists():
        return []
    with f.open() as fh:
        return list(csv.DictReader(fh))


def _write_timing_rows(run_dir: RunDir, rows: list[dict]) -> None:
    f = run_dir.path / "timings.csv"
    tmp = f.with_suffix(".tmp")
    with tmp.open("w") as out:
        w = csv.DictWriter(out, TIMING_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(f)  # atomic: a reader never sees half a table


RETRIED = ("failed", "unavailable", "skipped")  # on --resume; a diverged run would only diverge again


def to_retry(path: Path) -> list[dict]:
    """The timings.csv rows of a run directory that --resume runs again."""
    return [r for r in timing_rows(path) if r["status"] in RETRIED]


def drop_retried(run_dir: RunDir) -> None:
    """On resume, take out the rows of failed, unavailable and skipped tasks (logs keep the failures),
    so that they run again, from their last checkpoints where they have one."""
    rows = timing_rows(run_dir.path)
    keep = [r for r in rows if r["status"] not in RETRIED]
    if len(keep) < len(rows):
        _write_timing_rows(run_dir, keep)
        sys.stderr.write(f"retrying {len(rows) - len(keep)} failed, unavailable or skipped task(s)\n")


def finished(run_dir: RunDir) -> set[tuple]:
    return {_row_key(r) for r in timing_rows(run_dir.path)}


def fill_speedups(run_dir: RunDir) -> None:
    """speedup_vs_1 of each row: its one-device twin's median step time over its own.
    Rewritten once at the end (atomically), since rows may arrive in any order."""
    rows = timing_rows(run_dir.path)
    if not any(r.get("devices") not in ("", "1") for r in rows):
        return
    ok = [r for r in rows if r["status"] == "ok" and r["step_ms_median"]]
    one = {_row_key(r): float(r["step_ms_median"]) for r in ok if r["devices"] == "1"}
    for r in ok:
        base = one.get(_row_key(r, devices=False))
        r["speedup_vs_1"] = f"{base / float(r['step_ms_median']):.4g}" if base else ""
    _write_timing_rows(run_dir, rows)




def left_out(rows: list[dict]) -> str:
    """The summary's list of the tasks --budget left out, each with its reason; "" if none."""
    skipped = [r for r in rows if r["status"] == "skipped"]
    if not skipped:
        return ""
    lines = [f"- {r['algo']} / {r['arch']} / batch {r['batch_size']}: {r['backend']}-{r['mode']} "
             f"(seed {r['seed']}, {r['devices']} device(s)): {r['note']}" for r in skipped]
    return f"\n## Left out: {len(skipped)} task(s)\n\n" + "\n".join(lines) + "\n"
