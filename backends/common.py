"""What every backend does the same way, written once: the mode check, the matmul peak probe's
clock, the host's core count, and dying with the parent process. Imports no framework."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable

import numpy as np

from backends.registry import entry

PROBE_WARMUPS = 2  # the allocator, kernel selection and (tf, jax) tracing stay outside the clock


def check_mode(backend: str, mode: str) -> None:
    if mode not in entry(backend).modes:
        raise ValueError(f"{backend} has no mode {mode!r}; choose from {', '.join(entry(backend).modes)}")


def probe_operand(n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)


def matmul_gflops(matmul: Callable[[], object], wait: Callable[[object], object], n: int, reps: int) -> float:
    """fp32 (n, n) @ (n, n) GFLOP/s: `matmul()` launches one product, `wait(out)` returns once the
    device has finished it (asynchronous dispatch must not stop the clock early)."""
    for _ in range(PROBE_WARMUPS):
        wait(matmul())
    t0 = time.perf_counter()
    for _ in range(reps):
        out = matmul()
    wait(out)
    return 2.0 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def host_cores() -> int:
    """The cores this process may run on (CPU affinity, e.g. taskset), not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def die_with(parent: int) -> None:
    """Die with the process that started this one, even when it is SIGKILLed (a Ray task
    force-cancelled, a killed rank 0): nothing may outlive the run that wanted it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)
