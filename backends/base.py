"""The Backend protocol: the only surface the harness sees of a framework.

Nothing crosses it but NumPy arrays, Python numbers and the frozen spec. State (weights
and optimizer slots) uses the canonical names of bench.core.nets: "G.0.w"; optimizer slots
append ":m" / ":v" to a parameter name, and "G:t" / "D:t" count each optimizer's steps.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

import numpy as np

from bench.core.nets import Arch
from bench.core.spec import RunSpec


class Backend(Protocol):
    name: ClassVar[str]  # its key in backends.REGISTRY, which also lists its modes

    def __init__(self, spec: RunSpec, arch: Arch, mode: str, device: str) -> None:
        """device is "cpu" or "gpu"; the backend must use exactly that."""

    def info(self) -> dict[str, str]:
        """framework_version, device name, threads, precision flags in force."""

    def matmul_gflops(self, n: int, reps: int) -> float:
        """fp32 (n, n) @ (n, n) throughput in GFLOP/s on the device: the peak steps are held to."""

    def peak_memory_mb(self) -> float | None:
        """The framework allocator's peak on a GPU; None on the CPU (the worker reports RSS)."""

    def load(self, state: dict[str, np.ndarray], data: np.ndarray) -> None:
        """Take weights (and optimizer slots if present, else zeros) and the whole data set,
        already in the arch's sample shape; place both on the device."""

    def train(self, block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run block["idx"].shape[0] generator iterations on a bench.core.stream.Block's arrays.
        Returns host arrays of shape (steps,) per metric, the last critic update's values
        for the critic metrics; returns only once the device has finished."""

    def evaluate(self, block: dict[str, np.ndarray]) -> dict[str, float]:
        """The first critic and generator losses of a block at the current weights, no update."""

    def sample(self, z: np.ndarray) -> np.ndarray:
        """G(z) in the canonical sample layout (batch norm: z's batch statistics, running
        statistics left alone)."""

    def critic(self, x: np.ndarray) -> np.ndarray:
        """D(x), shape (N, 1), for samples in the canonical layout; running statistics left alone."""

    def export(self) -> dict[str, np.ndarray]:
        """Current weights and optimizer state under canonical names."""
