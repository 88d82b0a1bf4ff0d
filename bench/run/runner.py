"""Runs each (backend, mode) in its own process and gathers the results into a run dir.

The parent never imports a framework: availability is checked with importlib.util, and
everything a worker produces comes back as files. A worker that fails, hangs past the
timeout or diverges becomes a row with that status; the others are unaffected.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import backends
import bench
from bench import CODE_ROOT
from bench.core import data as datasets
from bench.core.nets import ARCHS
from bench.core.schema import SCHEMA_VERSION
from bench.core.spec import RunSpec
from bench.run.rundir import BLOCK_COLUMNS, LOSS_COLUMNS, TIMING_COLUMNS, RunDir
from bench.run.worker import PARENT_ENV


@dataclass(frozen=True)
class Plan:
    specs: tuple[RunSpec, ...]  # one setup, or a suite's many
    runs: tuple[tuple[str, str], ...]  # (backend, mode)
    device: str  # cpu | gpu (auto already resolved)
    out: Path
    timeout: float
    command: str
    seeds: tuple[int, ...] = (0,)
    devices: tuple[int, ...] = (1,)  # data-parallel device counts, each its own row
    ray: str | None = None  # None: tasks run here one after another; "local" or a cluster address: on Ray
    report: bool = True  # build report.md and its plots at the end (`run_bench.py report DIR` can later)
    repeats: int = 1  # rounds of every task, interleaved: round 0 trains, later rounds only time blocks

    def to_dict(self) -> dict:
        return {"specs": [json.loads(s.to_json()) for s in self.specs], "runs": self.runs, "device": self.device,
                "out": str(self.out), "timeout": self.timeout, "command": self.command, "seeds": self.seeds,
                "devices": self.devices, "ray": self.ray, "report": self.report, "repeats": self.repeats}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        specs = tuple(RunSpec.from_json(json.dumps(s)) for s in d["specs"])
        return cls(specs, tuple(map(tuple, d["runs"])), d["device"], Path(d["out"]), d["timeout"], d["command"],
                   tuple(d["seeds"]), tuple(d.get("devices", (1,))), d.get("ray"), d.get("report", True),
                   d.get("repeats", 1))


def gpus() -> list[str]:
    """nvidia-smi -L's line for each visible NVIDIA GPU; none without the tool or a driver."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in out.stdout.splitlines() if line.startswith("GPU ")] if out.returncode == 0 else []


def gpu_name() -> str | None:
    return next(iter(gpus()), None)


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
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CODE_ROOT, capture_output=True, text=True)
        return out.stdout.strip()
    except OSError:
        return ""


def environment(plan: Plan) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "command": plan.command,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_name() if plan.device == "gpu" else None,
        "device": plan.device,
        "git_commit": _git_commit(),
        "versions": {n: _version(n) for n in ("numpy", "torch", "tensorflow", "jax", "flax", "optax")},
        # Settings that decide GPU determinism and threading, as they were for this run.
        "env_flags": {k: os.environ[k] for k in ("CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS",
                                                 "TF_CUDNN_DETERMINISTIC", "XLA_FLAGS", "OMP_NUM_THREADS",
                                                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
                      if k in os.environ},
        "plan": plan.to_dict(),
        "backends": {},
        "complete": False,
    }


def _worker_env(device: str, devices: int = 1) -> dict[str, str]:
    # Where bench/ and backends/ are (one folder in a checkout or an install; two on a Ray node).
    homes = dict.fromkeys(str(Path(m.__file__).resolve().parent.parent) for m in (bench, backends))
    path = os.pathsep.join(p for p in (*homes, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2", **{PARENT_ENV: str(os.getpid())})
    if device == "cpu":  # hide GPUs so no framework silently uses one
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
        if devices > 1:  # JAX's CPU devices are fixed at import: XLA splits the host into N (torch, TF make their own)
            flags = env.get("XLA_FLAGS", "").split()
            flags = [f for f in flags if not f.startswith("--xla_force_host_platform_device_count")]
            # first: XLA stops reading its flags at a token without "--", which a user's XLA_FLAGS may hold
            env["XLA_FLAGS"] = " ".join([f"--xla_force_host_platform_device_count={devices}", *flags])
    else:  # neither TF nor JAX may grab all GPU memory up front
        env.update(TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    return env


class Progress:
    """One line per (backend, mode): redrawn in place on a terminal; in a log, a line every 25%
    and at least every LOG_EVERY_S seconds, so that a long run's log still shows it moving."""

    LOG_EVERY_S = 60.0

    def __init__(self, label: str) -> None:
        self.label, self.tty, self.last, self.last_t = label, sys.stderr.isatty(), -1, time.monotonic()

    def update(self, step: int, of: int, ms: float, d_loss: float) -> None:
        quarter, now = 4 * step // of, time.monotonic()
        if not self.tty and quarter == self.last and now - self.last_t < self.LOG_EVERY_S:
            return
        self.last, self.last_t = quarter, now
        bar = "#" * (20 * step // of) + "-" * (20 - 20 * step // of)
        line = f"{self.label:<14} [{bar}] {step}/{of} steps  {ms:8.2f} ms/step  d_loss {d_loss:+.4f}"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self, status: str) -> None:
        sys.stderr.write(("\r\033[K" if self.tty else "") + f"{self.label:<14} {status}\n")
        sys.stderr.flush()


def _follow(proc: subprocess.Popen, progress: Progress, heard: list[float]) -> None:
    for line in proc.stdout:
        heard[0] = time.monotonic()  # each finished block prints a line
        if line.startswith("{"):
            progress.update(**json.loads(line))


def _wait(proc: subprocess.Popen, heard: list[float], stall_s: float) -> None:
    """Wait for the worker; subprocess.TimeoutExpired once it has gone stall_s seconds without
    finishing a block. A hang ends; a long run that keeps making progress never does."""
    while True:
        try:
            proc.wait(timeout=min(1.0, stall_s))
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() - heard[0] > stall_s:
                raise


@dataclass(frozen=True)
class Task:
    """One worker process: a (backend, mode) trained from one seed, in one round of the repeats."""

    backend: str
    mode: str
    spec: RunSpec
    tag: str
    repeat: int = 0


REPEAT_BLOCKS = 5  # timed blocks of a timing-only round, after its warm-up


def timing_round(spec: RunSpec) -> RunSpec:
    """A later round's spec: warm up and time REPEAT_BLOCKS blocks, no evaluations or checkpoints.
    Its losses are round 0's first steps again (the same stream), so they are not recorded."""
    return dataclasses.replace(spec, steps=min(spec.steps, spec.warmup + REPEAT_BLOCKS * spec.block),
                               eval_every=0, checkpoint_every=0)


def tasks(plan: Plan) -> list[Task]:
    """Every (setup, seed, backend, mode, devices), round after round (A B C A B C ...), so that
    each round's step times are taken side by side; tags name only what varies, e.g. torch-eager."""
    out = []
    for r in range(plan.repeats):
        for spec in plan.specs:
            setup = f"{spec.algo.name}-{spec.arch}-b{spec.batch_size}-" if len(plan.specs) > 1 else ""
            for seed in plan.seeds:
                for b, m in plan.runs:
                    for n in plan.devices:
                        tag = (setup + f"{b}-{m}" + (f"-seed{seed}" if len(plan.seeds) > 1 else "")
                               + (f"-{n}dev" if plan.devices != (1,) else "") + (f"-r{r}" if r else ""))
                        s = dataclasses.replace(spec, seed=seed, devices=n)
                        out.append(Task(b, m, timing_round(s) if r else s, tag, r))
    return out


def run_one(plan: Plan, run_dir: RunDir, task: Task) -> dict:
    """Train one task in a subprocess; returns its result dict."""
    entry = backends.entry(task.backend)
    if importlib.util.find_spec(entry.framework) is None:
        return {"status": "unavailable", "error": f"{entry.framework} is not installed: {entry.install}"}
    raw = run_dir.path / "raw"
    job = {"backend": task.backend, "module": entry.module, "install": entry.install, "mode": task.mode,
           "device": plan.device, "spec": task.spec.to_json(), "tag": task.tag, "work_dir": str(raw),
           "samples_dir": str(run_dir.path / "samples"),
           "checkpoint": str(run_dir.path / "checkpoints" / f"{task.tag}.npz")}
    job_file = raw / f"{task.tag}.job.json"
    job_file.write_text(json.dumps(job))
    (raw / f"{task.tag}.json").unlink(missing_ok=True)  # a resumed task's stale result
    log = run_dir.path / "logs" / f"{task.tag}.log"
    progress = Progress(task.tag)
    with log.open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bench.run.worker", str(job_file)],
                                env=_worker_env(plan.device, task.spec.devices), stdout=subprocess.PIPE,
                                stderr=err, text=True)
        # A reader thread renders progress and notes when the worker was last heard from.
        heard = [time.monotonic()]
        reader = threading.Thread(target=_follow, args=(proc, progress, heard), daemon=True)
        reader.start()
        try:
            _wait(proc, heard, plan.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            error = f"timed out: no step finished in {plan.timeout:g} s"
            progress.done(f"failed: {error}")
            return {"status": "failed", "error": f"{error} (log: {log.name})"}
        except BaseException:  # Ctrl-C or SIGTERM: take the worker down with us
            proc.kill()
            proc.wait()
            raise
        reader.join(timeout=5)
    result_file = raw / f"{task.tag}.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
    else:  # killed by a signal, the OOM killer, a segfault...
        tail = " | ".join(log.read_text().strip().splitlines()[-5:])[-600:]
        result = {"status": "failed", "error": f"worker exited with code {proc.returncode} (log: {log.name}): {tail}"}
    progress.done(result["status"] + (f": {result['error'][:300]}" if result.get("error") else ""))
    return result


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
           "framework_version": info.get("framework_version", _version(framework)),
           "threads": info.get("threads"), "precision": info.get("precision"),
           "peak_mem_mb": result.get("peak_mem_mb"),
           "note": "; ".join(x for x in (info.get("note"), result.get("error")) if x)}
    if t:
        row.update(t)
        row["samples_per_s"] = s.batch_size * s.algo.n_critic / (t["step_ms_median"] / 1000)
    run_dir.append("timings.csv", TIMING_COLUMNS, [row])
    if task.repeat:  # a timing round: its samples and scores would be round 0's early steps again
        return row
    from bench.analysis import quality  # POT and the classifier load only once there is something to score

    scores = quality.score_run(run_dir.path, task.backend, task.mode, s, tag)
    if scores:
        run_dir.append("quality.csv", quality.QUALITY_COLUMNS, scores)
    samples = run_dir.path / "samples" / f"{tag}.npy"
    if samples.exists():
        from bench.analysis import plots  # matplotlib only once there is a picture to draw: the CLI starts fast

        real = datasets.load(s.dataset, s.data_dir).x if ARCHS[s.arch].x_shape == (2,) else None
        plots.sample_grid(np.load(samples), samples.with_suffix(".png"), f"{tag} after {s.steps} steps", real)
    return row


class Terminated(Exception):
    """SIGTERM, turned into an exception so the run is closed like on Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated


def _key(backend: str, mode: str, algo: str, arch: str, batch_size, seed, devices=1, repeat=0) -> tuple:
    return backend, mode, algo, arch, int(batch_size), int(seed), int(devices or 1), int(repeat or 0)


def _task_key(task: Task) -> tuple:
    s = task.spec
    return _key(task.backend, task.mode, s.algo.name, s.arch, s.batch_size, s.seed, s.devices, task.repeat)


def _row_key(r: dict, devices: bool = True) -> tuple:
    """_key of a timings.csv row; devices=False: the key of its one-device twin (same round)."""
    return _key(r["backend"], r["mode"], r["algo"], r["arch"], r["batch_size"], r["seed"],
                r.get("devices") if devices else 1, r.get("repeat"))


def _timing_rows(path: Path) -> list[dict]:
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


RETRIED = ("failed", "unavailable")  # on --resume; a diverged run would only diverge again


def to_retry(path: Path) -> list[dict]:
    """The timings.csv rows of a run directory that --resume runs again."""
    return [r for r in _timing_rows(path) if r["status"] in RETRIED]


def _drop_retried(run_dir: RunDir) -> None:
    """On resume, take out the rows of failed and unavailable tasks (their logs keep the failure),
    so that they run again, from their last checkpoints where they have one."""
    rows = _timing_rows(run_dir.path)
    keep = [r for r in rows if r["status"] not in RETRIED]
    if len(keep) < len(rows):
        _write_timing_rows(run_dir, keep)
        sys.stderr.write(f"retrying {len(rows) - len(keep)} failed or unavailable task(s)\n")


def _finished(run_dir: RunDir) -> set[tuple]:
    return {_row_key(r) for r in _timing_rows(run_dir.path)}


def fill_speedups(run_dir: RunDir) -> None:
    """speedup_vs_1 of each row: its one-device twin's median step time over its own.
    Rewritten once at the end (atomically), since rows may arrive in any order."""
    rows = _timing_rows(run_dir.path)
    if not any(r.get("devices") not in ("", "1") for r in rows):
        return
    ok = [r for r in rows if r["status"] == "ok" and r["step_ms_median"]]
    one = {_row_key(r): float(r["step_ms_median"]) for r in ok if r["devices"] == "1"}
    for r in ok:
        base = one.get(_row_key(r, devices=False))
        r["speedup_vs_1"] = f"{base / float(r['step_ms_median']):.4g}" if base else ""
    _write_timing_rows(run_dir, rows)


def execute(plan: Plan, resume: bool = False) -> int:
    """Run the plan (or what is left of it); 0 only if every requested task finished ok,
    1 if one did not, 130 / 143 if interrupted by Ctrl-C / SIGTERM."""
    run_dir = RunDir(plan.out, resume=resume)
    env = json.loads((plan.out / "env.json").read_text()) if resume else environment(plan)
    env.update(complete=False, interrupted=None)
    run_dir.write_json("env.json", env)
    if resume:
        _drop_retried(run_dir)
    done = _finished(run_dir)
    pending = [t for t in tasks(plan) if _task_key(t) not in done]
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if plan.ray:
            from bench.run import cluster  # Ray is an optional extra, imported only when asked for

            results = cluster.run_tasks(plan, run_dir, pending)
        else:
            results = ((t, run_one(plan, run_dir, t)) for t in pending)
        for task, result in results:
            record(plan, run_dir, task, result)
            env["backends"][task.tag] = result.get("info", {})
            run_dir.write_json("env.json", env)
    except (KeyboardInterrupt, Terminated) as e:
        env["interrupted"] = "SIGTERM" if isinstance(e, Terminated) else "SIGINT"
        run_dir.write_json("env.json", env)
        sys.stderr.write(f"\ninterrupted: finished rows are in {plan.out}; continue with --resume {plan.out}\n")
        return 143 if isinstance(e, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, old)
    fill_speedups(run_dir)
    env["complete"] = True
    run_dir.write_json("env.json", env)
    rows = _timing_rows(run_dir.path)
    suite = len(plan.specs) > 1
    spec = plan.specs[0]
    head = (f"# suite: {len(plan.specs)} setups, {spec.steps} steps each" if suite else
            f"# {spec.algo.name} / {spec.arch} / {spec.dataset}: {spec.steps} steps, batch {spec.batch_size}"
            + (f" (preset {spec.preset})" if spec.preset else ""))
    head += f", seeds {','.join(map(str, plan.seeds))}, {plan.device}"
    head += f", devices {','.join(map(str, plan.devices))}" if plan.devices != (1,) else ""
    head += f", {plan.repeats} interleaved rounds\n\n" if plan.repeats > 1 else "\n\n"
    from bench.analysis import report  # pandas and the plots only now: the CLI starts fast

    text = head + report.summary([plan.out])
    (plan.out / "summary.md").write_text(text)
    print(text)
    if plan.report:
        print(f"\nresults in {plan.out}; report: {report.build([plan.out], plan.out)}")
    else:
        print(f"\nresults in {plan.out}; build the report with: python run_bench.py report {plan.out}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1
