"""Shared fixtures: backends are parametrized by name and skipped only where their
framework is truly absent; under CI (CI=true) a missing framework is a failure."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import backends
from bench.core import data as datasets
from bench.core.defaults import ARCH_DATASET, CONV_ARCHS, DENSE_ARCHS
from bench.core.nets import ARCHS, init_weights
from bench.core.spec import ALGOS, RunSpec
from bench.core.stream import InputStream


def _share_the_cores() -> None:
    """Under pytest-xdist, each test process (and the workers it starts) computes on its share
    of the cores. Two processes each running 2-thread frameworks on 2 cores oversubscribe them,
    and OpenMP's spinning threads cost the parity tests ~35% of their time. Set before any
    framework is imported; the user's own settings win."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return
    threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # PyTorch (and MKL under it)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)  # inter-op left alone: collectives need it
    if threads == "1" and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=false {os.environ.get('XLA_FLAGS', '')}".strip()


def _cache_xla_compiles() -> None:
    """XLA compiles dominate the JAX tests, and many tests compile the same step (one spec and
    mode in several tests, test processes and the workers they start): JAX's persistent cache,
    keyed by the program, its compile options and the JAX version, serves the repeats. Tests
    only: the bench compiles cold, compile time being one of its measurements."""
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "ganbench-tests-jax-cache"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


_share_the_cores()  # nothing above imports a framework: the registry loads them lazily
_cache_xla_compiles()
os.environ.setdefault("GANBENCH_PEAK_PROBE", "256,2")  # workers' peak probe: ~2 s at 2048² on one thread

ROOT = Path(__file__).resolve().parent.parent  # the checkout: run_bench.py and the tests' scripts
ALL_BACKENDS = tuple(backends.REGISTRY)
ALL_RUNS = tuple((b, m) for b, e in backends.REGISTRY.items() for m in e.modes)
TOY_DATASET = {a: ARCH_DATASET[a] for a in DENSE_ARCHS}
CONV_DATASET = {a: ARCH_DATASET[a] for a in CONV_ARCHS}
SYNTHETIC = 64  # images of the sets no test has on disk: uniform noise in their shape


def require(name: str) -> None:
    fw = backends.entry(name).framework
    if importlib.util.find_spec(fw) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{fw} is not installed in CI")
        pytest.skip(f"{fw} not installed")


@pytest.fixture(params=ALL_BACKENDS)
def backend_name(request) -> str:
    require(request.param)
    return request.param


def small_spec(algo: str = "wgan_gp", arch: str = "mlp", batch: int = 16, steps: int = 10, **over) -> RunSpec:
    a = ALGOS[algo]
    if over:
        import dataclasses

        a = dataclasses.replace(a, **over)
    return RunSpec(a, arch, ARCH_DATASET[arch], batch, steps, seed=0, warmup=0, block=steps)


_DATA: dict[tuple, np.ndarray] = {}


def data_for(spec: RunSpec) -> np.ndarray:
    """The spec's data as the worker hands it to a backend: in the arch's shape and range."""
    arch = ARCHS[spec.arch]
    key = (spec.dataset, spec.arch)
    if key not in _DATA:
        if spec.dataset in ("mnist", *datasets.TOY):
            x = datasets.load(spec.dataset).x.reshape((-1, *arch.x_shape))
        else:
            x = np.random.default_rng(5).uniform(size=(SYNTHETIC, *arch.x_shape)).astype(np.float32)
        _DATA[key] = datasets.to_range(x, arch.x_range)
    return _DATA[key]


def stream_for(spec: RunSpec) -> InputStream:
    arch = ARCHS[spec.arch]
    return InputStream.for_spec(spec, arch.z_dim, len(arch.x_shape), len(data_for(spec)))


def make_backend(name: str, mode: str, spec: RunSpec, state: dict | None = None):
    require(name)
    arch = ARCHS[spec.arch]
    b = backends.load(name)(spec, arch, mode, "cpu")
    b.load(state if state is not None else init_weights(arch, spec.seed), data_for(spec))
    return b


def train(name: str, mode: str, spec: RunSpec, steps: int, state: dict | None = None):
    """Train `steps` generator iterations in blocks of spec.block; returns (metrics, backend)."""
    b = make_backend(name, mode, spec, state)
    out: dict[str, list] = {}
    for blk in stream_for(spec).blocks(0, steps, spec.block):
        for k, v in b.train(blk.arrays()).items():
            out.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
    return {k: np.concatenate(v) for k, v in out.items()}, b


def running_workers(part: str) -> dict[int, str]:
    """pid -> job file of every bench.run.worker process whose job file path contains `part`."""
    out = {}
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError):
            continue
        if "bench.run.worker" in args and any(part in a for a in args):
            out[int(proc.name)] = args[-2] if args[-1] == "" else args[-1]
    return out
