"""What a run records about its machine (env.json), and the environment its workers start in.

Nothing here imports a framework: versions come from package metadata, GPUs from nvidia-smi.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import backends
import bench
from bench import CODE_ROOT
from bench.core.schema import SCHEMA_VERSION
from bench.run.plan import Plan

PARENT_ENV = "GANBENCH_PARENT_PID"  # set for every worker: it dies with that process (backends.common.die_with)


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


def version(dist: str) -> str:
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
        "versions": {n: version(n) for n in ("numpy", "torch", "tensorflow", "jax", "flax", "optax")},
        # Settings that decide GPU determinism and threading, as they were for this run.
        "env_flags": {k: os.environ[k] for k in ("CUBLAS_WORKSPACE_CONFIG", "TF_DETERMINISTIC_OPS",
                                                 "TF_CUDNN_DETERMINISTIC", "XLA_FLAGS", "OMP_NUM_THREADS",
                                                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
                      if k in os.environ},
        "plan": plan.to_dict(),
        "backends": {},
        "complete": False,
    }


def worker_env(device: str, devices: int = 1) -> dict[str, str]:
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
    else:  # neither TF nor JAX may grab all GPU memory up front (several workers share the GPU)
        env.update(TF_FORCE_GPU_ALLOW_GROWTH="true", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    return env
