"""Runs each (backend, mode) in its own process and gathers the results into a run dir.

The parent never imports a framework: availability is checked with importlib.util, and
everything a worker produces comes back as files. A worker that fails, hangs past the
timeout or diverges becomes a row with that status; the others are unaffected.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import backends
from bench import data as datasets
from bench import plots
from bench.nets import ARCHS
from bench.results import LOSS_COLUMNS, TIMING_COLUMNS, RunDir
from bench.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    spec: RunSpec
    runs: tuple[tuple[str, str], ...]  # (backend, mode)
    device: str  # cpu | gpu (auto already resolved)
    out: Path
    timeout: float
    command: str


def gpu_name() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _version(dist: str) -> str:
    for d in (dist, dist + "-cpu"):
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()
    except OSError:
        return ""


def environment(plan: Plan) -> dict:
    return {
        "command": plan.command,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_name() if plan.device == "gpu" else None,
        "device": plan.device,
        "git_commit": _git_commit(),
        "versions": {n: _version(n) for n in ("numpy", "torch", "tensorflow", "jax", "flax", "optax")},
        "spec": json.loads(plan.spec.to_json()),
        "backends": {},
        "complete": False,
    }


def _worker_env(device: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    if device == "cpu":  # hide GPUs so no framework silently uses one
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    else:  # neither TF nor JAX may grab all GPU memory up front
        env.update(TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    return env


class Progress:
    """One line per (backend, mode): redrawn in place on a terminal, every 25% otherwise."""

    def __init__(self, label: str) -> None:
        self.label, self.tty, self.last = label, sys.stderr.isatty(), -1

    def update(self, step: int, of: int, ms: float, d_loss: float) -> None:
        quarter = 4 * step // of
        if not self.tty and quarter == self.last:
            return
        self.last = quarter
        bar = "#" * (20 * step // of) + "-" * (20 - 20 * step // of)
        line = f"{self.label:<14} [{bar}] {step}/{of} steps  {ms:8.2f} ms/step  d_loss {d_loss:+.4f}"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self, status: str) -> None:
        sys.stderr.write(("\r\033[K" if self.tty else "") + f"{self.label:<14} {status}\n")
        sys.stderr.flush()


def _follow(proc: subprocess.Popen, progress: Progress) -> None:
    for line in proc.stdout:
        if line.startswith("{"):
            progress.update(**json.loads(line))


def run_one(plan: Plan, run_dir: RunDir, backend: str, mode: str) -> dict:
    """Train one (backend, mode) in a subprocess; returns its result dict."""
    tag = f"{backend}-{mode}"
    entry = backends.entry(backend)
    if importlib.util.find_spec(entry.framework) is None:
        return {"status": "unavailable", "error": f"{entry.framework} is not installed: {entry.install}"}
    job = {"backend": backend, "mode": mode, "device": plan.device, "spec": plan.spec.to_json(),
           "tag": tag, "work_dir": str(run_dir.path / "raw"), "samples_dir": str(run_dir.path / "samples")}
    job_file = run_dir.path / "raw" / f"{tag}.job.json"
    job_file.write_text(json.dumps(job))
    log = run_dir.path / "logs" / f"{tag}.log"
    progress = Progress(tag)
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bench.worker", str(job_file)], cwd=ROOT,
                                env=_worker_env(plan.device), stdout=subprocess.PIPE, stderr=err, text=True)
        # A reader thread renders progress, so a worker that hangs silently still times out.
        reader = threading.Thread(target=_follow, args=(proc, progress), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=plan.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            progress.done(f"failed: timed out after {plan.timeout:g} s")
            return {"status": "failed", "error": f"timed out after {plan.timeout:g} s"}
        except BaseException:  # Ctrl-C: take the worker down with us
            proc.kill()
            proc.wait()
            raise
        reader.join(timeout=5)
    result_file = run_dir.path / "raw" / f"{tag}.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
    else:  # killed by a signal, the OOM killer, a segfault...
        tail = log.read_text()[-2000:]
        result = {"status": "failed", "error": f"worker exited with code {proc.returncode}: {tail}"}
    progress.done(result["status"] + (f": {result['error'][:200]}" if result.get("error") else ""))
    return result


def record(plan: Plan, run_dir: RunDir, backend: str, mode: str, result: dict) -> dict:
    """Append the loss rows and the timing row of one finished (backend, mode)."""
    s, tag = plan.spec, f"{backend}-{mode}"
    base = {"backend": backend, "mode": mode, "algo": s.algo.name, "arch": s.arch, "dataset": s.dataset}
    raw = run_dir.path / "raw" / f"{tag}.npz"
    if raw.exists():
        m = np.load(raw)
        rows = [{**base, "seed": s.seed, "step": int(i), **{k: float(m[k][i]) for k in m.files if k != "step"}}
                for i in m["step"]]
        run_dir.append("losses.csv", LOSS_COLUMNS, rows)
    info, t = result.get("info", {}), result.get("timing", {})
    row = {**base, "status": result["status"], "batch_size": s.batch_size, "steps": result.get("steps_done", 0),
           "device": info.get("device_name", plan.device), "framework": backends.entry(backend).framework,
           "framework_version": info.get("framework_version", _version(backends.entry(backend).framework)),
           "threads": info.get("threads"), "precision": info.get("precision"),
           "peak_rss_mb": result.get("peak_rss_mb"),
           "note": "; ".join(x for x in (info.get("note"), result.get("error")) if x)}
    if t:
        row.update(t)
        row["samples_per_s"] = s.batch_size * s.algo.n_critic / (t["step_ms_median"] / 1000)
    run_dir.append("timings.csv", TIMING_COLUMNS, [row])
    samples = run_dir.path / "samples" / f"{tag}.npy"
    if samples.exists():
        real = datasets.load(s.dataset, s.data_dir).x if ARCHS[s.arch].x_shape == (2,) else None
        plots.sample_grid(np.load(samples), samples.with_suffix(".png"), f"{tag} after {s.steps} steps", real)
    return row


def summary_table(rows: list[dict]) -> str:
    cols = ("backend", "mode", "status", "compile_s", "step_ms_median", "step_ms_min", "step_ms_max",
            "samples_per_s")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r[c]:.2f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def execute(plan: Plan) -> int:
    """Run the plan; exit code 0 only if every requested (backend, mode) finished ok."""
    run_dir = RunDir(plan.out)
    env = environment(plan)
    run_dir.write_json("env.json", env)
    rows: list[dict] = []
    try:
        for backend, mode in plan.runs:
            result = run_one(plan, run_dir, backend, mode)
            rows.append(record(plan, run_dir, backend, mode, result))
            env["backends"][f"{backend}-{mode}"] = result.get("info", {})
            run_dir.write_json("env.json", env)
    except KeyboardInterrupt:
        env["interrupted"] = True
        run_dir.write_json("env.json", env)
        sys.stderr.write(f"\ninterrupted: rows so far are in {plan.out}\n")
        return 130
    env["complete"] = True
    run_dir.write_json("env.json", env)
    table = summary_table(rows)
    spec = plan.spec
    head = (f"# {spec.algo.name} / {spec.arch} / {spec.dataset}: {spec.steps} steps, batch {spec.batch_size}, "
            f"seed {spec.seed}, {plan.device}\n\n")
    (plan.out / "summary.md").write_text(head + table + "\n")
    print(table)
    print(f"\nresults in {plan.out}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1
