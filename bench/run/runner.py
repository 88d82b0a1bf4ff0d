"""Runs each (backend, mode) in its own process and gathers the results into a run dir.

The parent never imports a framework: availability is checked with importlib.util, and
everything a worker produces comes back as files. A worker that fails, hangs past the
timeout or diverges becomes a row with that status; the others are unaffected.
"""

from __future__ import annotations

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
from bench.core.files import ENCODING, read_text, write_atomic
from bench.core.nets import ARCHS
from bench.core.spec import RunSpec
from bench.run.lock import Busy, hold
from bench.run.rundir import LOSS_COLUMNS, TIMING_COLUMNS, RunDir, read_rows
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

    def to_dict(self) -> dict:
        return {"specs": [json.loads(s.to_json()) for s in self.specs], "runs": self.runs, "device": self.device,
                "out": str(self.out), "timeout": self.timeout, "command": self.command, "seeds": self.seeds,
                "devices": self.devices, "ray": self.ray, "report": self.report}

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        specs = tuple(RunSpec.from_json(json.dumps(s)) for s in d["specs"])
        return cls(specs, tuple(map(tuple, d["runs"])), d["device"], Path(d["out"]), d["timeout"], d["command"],
                   tuple(d["seeds"]), tuple(d.get("devices", (1,))), d.get("ray"), d.get("report", True))


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
        for line in read_text(Path("/proc/cpuinfo")).splitlines():
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
    """One worker process: a (backend, mode) trained from one seed."""

    backend: str
    mode: str
    spec: RunSpec
    tag: str


def tasks(plan: Plan) -> list[Task]:
    """Every (setup, seed, backend, mode, devices); tags name only what varies, e.g. torch-eager."""
    out = []
    for spec in plan.specs:
        setup = f"{spec.algo.name}-{spec.arch}-b{spec.batch_size}-" if len(plan.specs) > 1 else ""
        for seed in plan.seeds:
            for b, m in plan.runs:
                for n in plan.devices:
                    tag = (setup + f"{b}-{m}" + (f"-seed{seed}" if len(plan.seeds) > 1 else "")
                           + (f"-{n}dev" if plan.devices != (1,) else ""))
                    out.append(Task(b, m, dataclasses.replace(spec, seed=seed, devices=n), tag))
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
    write_atomic(job_file, json.dumps(job))
    (raw / f"{task.tag}.json").unlink(missing_ok=True)  # a resumed task's stale result
    log = run_dir.path / "logs" / f"{task.tag}.log"
    progress = Progress(task.tag)
    with log.open("a", encoding=ENCODING) as err:
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
        result = json.loads(read_text(result_file))
    else:  # killed by a signal, the OOM killer, a segfault...
        tail = " | ".join(log.read_text(encoding=ENCODING, errors="replace").strip().splitlines()[-5:])[-600:]
        result = {"status": "failed", "error": f"worker exited with code {proc.returncode} (log: {log.name}): {tail}"}
    progress.done(result["status"] + (f": {result['error'][:300]}" if result.get("error") else ""))
    return result


def record(plan: Plan, run_dir: RunDir, task: Task, result: dict) -> dict:
    """Append the loss rows, quality rows, sample picture and, last, the timing row of one
    finished task: a timing row means that everything before it is there (see done_tasks)."""
    s, tag = task.spec, task.tag
    base = {"backend": task.backend, "mode": task.mode, "algo": s.algo.name, "arch": s.arch,
            "dataset": s.dataset, "batch_size": s.batch_size, "devices": s.devices, "seed": s.seed}
    raw = run_dir.path / "raw" / f"{tag}.npz"
    if raw.exists():
        m = np.load(raw)
        rows = [{**base, "step": int(i), **{k: float(m[k][i]) for k in m.files if k != "step"}} for i in m["step"]]
        run_dir.append("losses.csv", LOSS_COLUMNS, rows)
    info, t = result.get("info", {}), result.get("timing", {})
    framework = backends.entry(task.backend).framework
    row = {**base, "status": result["status"], "steps": result.get("steps_done", 0),
           "per_device_batch": s.batch_size // s.devices,
           "device": info.get("device_name", plan.device), "framework": framework,
           "framework_version": info.get("framework_version", _version(framework)),
           "threads": info.get("threads"), "precision": info.get("precision"),
           "peak_mem_mb": result.get("peak_mem_mb"),
           "note": "; ".join(x for x in (info.get("note"), result.get("error")) if x)}
    if t:
        row.update(t)
        row["samples_per_s"] = s.batch_size * s.algo.n_critic / (t["step_ms_median"] / 1000)
    from bench.analysis import quality  # POT and the classifier load only once there is something to score

    scores = quality.score_run(run_dir.path, task.backend, task.mode, s, tag)
    if scores:
        run_dir.append("quality.csv", quality.QUALITY_COLUMNS, scores)
    samples = run_dir.path / "samples" / f"{tag}.npy"
    if samples.exists():
        from bench.analysis import plots  # matplotlib only once there is a picture to draw: the CLI starts fast

        real = datasets.load(s.dataset, s.data_dir).x if ARCHS[s.arch].x_shape == (2,) else None
        plots.sample_grid(np.load(samples), samples.with_suffix(".png"), f"{tag} after {s.steps} steps", real)
    run_dir.append("timings.csv", TIMING_COLUMNS, [row])
    return row


def _fmt(v: str) -> str:
    """CSV cells as a person reads them: measurements to 2 decimals, names and integers as is."""
    try:
        return v if v.lstrip("-").isdigit() else f"{float(v):.2f}"
    except ValueError:
        return v


def summary_table(rows: list[dict], suite: bool = False, multi_device: bool = False) -> str:
    cols = (("algo", "arch", "batch_size") * suite + ("backend", "mode")
            + ("devices", "per_device_batch") * multi_device
            + ("seed", "status", "compile_s", "step_ms_median", "step_ms_min", "step_ms_max")
            + ("speedup_vs_1",) * multi_device + ("achieved_gflops", "pct_of_peak", "peak_mem_mb"))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


class Terminated(Exception):
    """SIGTERM or SIGHUP (a closed terminal), turned into an exception so the run is closed like
    on Ctrl-C."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


CLOSING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum, frame):
    raise Terminated(signum)


def _catch_signals() -> dict:
    """Our handler for each closing signal not ignored (nohup ignores SIGHUP: it stays so);
    returns the handlers it replaced."""
    return {sig: signal.signal(sig, _on_signal) for sig in CLOSING_SIGNALS
            if signal.getsignal(sig) is not signal.SIG_IGN}


def _key(backend: str, mode: str, algo: str, arch: str, batch_size, seed, devices=1) -> tuple:
    return backend, mode, algo, arch, int(batch_size), int(seed), int(devices or 1)


def _task_key(task: Task) -> tuple:
    s = task.spec
    return _key(task.backend, task.mode, s.algo.name, s.arch, s.batch_size, s.seed, s.devices)


def _row_key(r: dict, devices: bool = True) -> tuple:
    """_key of a timings.csv row; devices=False: the key of its one-device twin."""
    return _key(r["backend"], r["mode"], r["algo"], r["arch"], r["batch_size"], r["seed"],
                r.get("devices") if devices else 1)


RETRIED = ("failed", "unavailable")  # on --resume; a diverged run would only diverge again
TABLES = ("timings.csv", "losses.csv", "quality.csv")  # the rows of one task, keyed by _row_key


def done_tasks(plan: Plan, path: Path) -> set[tuple]:
    """Keys of the tasks with every output in the run directory: a timing row (record writes it
    last) that --resume does not retry and, for an ok task, its loss rows and sample files.
    Anything less (an interrupt while scoring, a file deleted since) runs again on --resume."""
    with_losses = {_row_key(r) for r in read_rows(path / "losses.csv")}
    tags = {_task_key(t): t.tag for t in tasks(plan)}
    done = set()
    for r in read_rows(path / "timings.csv"):
        k = _row_key(r)
        if k not in tags or r["status"] in RETRIED:
            continue
        samples = [path / "samples" / f"{tags[k]}{ext}" for ext in (".npy", ".png")]
        if r["status"] == "ok" and (k not in with_losses or not all(f.is_file() for f in samples)):
            continue
        done.add(k)
    return done


def to_do(plan: Plan, path: Path) -> list[Task]:
    """The tasks of a run directory that --resume runs: not run yet, failed, or incomplete."""
    done = done_tasks(plan, path)
    return [t for t in tasks(plan) if _task_key(t) not in done]


def _keep_done(plan: Plan, run_dir: RunDir) -> set[tuple]:
    """On resume, take out every row of the tasks that run again (their logs keep the failure),
    so that no row is doubled; they restart from their last checkpoints where they have one."""
    done = done_tasks(plan, run_dir.path)
    dropped = [run_dir.keep_rows(name, lambda r: _row_key(r) in done) for name in TABLES]
    if dropped[0]:
        sys.stderr.write(f"running again {dropped[0]} task(s) that failed, were unavailable or lost an output\n")
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
    run_dir.write_json("env.json", env)
    done = _keep_done(plan, run_dir) if resume else set()
    pending = [t for t in tasks(plan) if _task_key(t) not in done]
    old = _catch_signals()
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
        for sig, handler in old.items():  # a second signal ends the process at once (every file is whole)
            signal.signal(sig, handler)
        signum = e.signum if isinstance(e, Terminated) else signal.SIGINT
        env["interrupted"] = signal.Signals(signum).name
        run_dir.write_json("env.json", env)
        sys.stderr.write(f"\ninterrupted: finished rows are in {plan.out}; continue with --resume {plan.out}\n")
        return 128 + signum
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    fill_speedups(run_dir)
    env["complete"] = True
    run_dir.write_json("env.json", env)
    rows = run_dir.rows("timings.csv")
    suite = len(plan.specs) > 1
    table = summary_table(rows, suite, plan.devices != (1,))
    spec = plan.specs[0]
    head = (f"# suite: {len(plan.specs)} setups, {spec.steps} steps each" if suite else
            f"# {spec.algo.name} / {spec.arch} / {spec.dataset}: {spec.steps} steps, batch {spec.batch_size}"
            + (f" (preset {spec.preset})" if spec.preset else ""))
    head += f", seeds {','.join(map(str, plan.seeds))}, {plan.device}"
    head += f", devices {','.join(map(str, plan.devices))}\n\n" if plan.devices != (1,) else "\n\n"
    write_atomic(plan.out / "summary.md", head + table + "\n")
    print(table)
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
    return 0 if all(r["status"] == "ok" for r in rows) else 1
