"""Deliberately misbehaving backends for the reliability tests; NumPy only.

The mode name picks the behaviour; "flaky" crashes on its first attempt only, remembered by a
marker file in $GANBENCH_FAKE_FLAKY_DIR (for the cluster's retry); "segfault_b8" kills its
worker only in a setup of batch 8 (one setup of a suite). info() names the worker's pid.
Metrics are a deterministic function of the inputs and the state, so an interrupted-and-resumed
run can be compared with a straight one.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from backends import BackendEntry

MODES = ("ok", "crash", "segfault", "killed", "hang", "diverge", "slow", "flaky", "segfault_b8")


class FakeBackend:
    name = "fake"

    def __init__(self, spec, arch, mode, device):
        self.mode, self.steps, self.batch = mode, 0, spec.batch_size

    def info(self):
        return {"framework_version": "0", "device_name": "cpu", "threads": "1", "precision": "fp32", "note": "",
                "pid": os.getpid()}

    def matmul_gflops(self, n, reps):
        return 1.0

    def peak_memory_mb(self):
        return None

    def load(self, state, data):
        self.state = {k: np.array(v) for k, v in state.items()}
        self.steps = int(self.state.get("G:t", 0))

    def train(self, block):
        k = block["z_g"].shape[0]
        if self.mode == "crash":
            raise RuntimeError("deliberate crash in train")
        if self.mode == "segfault" or (self.mode == "segfault_b8" and self.batch == 8):
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.mode == "killed":  # what the OOM killer does
            os.kill(os.getpid(), signal.SIGKILL)
        if self.mode == "hang":
            time.sleep(3600)
        if self.mode == "flaky":
            marker = Path(os.environ["GANBENCH_FAKE_FLAKY_DIR"]) / "flaky.attempted"
            if not marker.exists():
                marker.touch()
                raise RuntimeError("deliberate crash on the first attempt")
        if self.mode == "slow":
            time.sleep(0.2)
        d = block["z_g"].mean(axis=(1, 2)) + 0.01 * (self.steps + np.arange(k))
        if self.mode == "diverge":
            d = np.where(self.steps + np.arange(k) >= 3, np.nan, d)
        self.steps += k
        self.state["G:t"] = np.array(self.steps)
        return {"d_loss": d, "g_loss": -d}

    def evaluate(self, block):
        return {}

    def sample(self, z):
        return np.tanh(z[:, :1].repeat(784, axis=1))

    def critic(self, x):
        return x.reshape(len(x), -1).mean(1, keepdims=True)

    def export(self):
        return dict(self.state)


BACKEND = FakeBackend


def fake_registry() -> dict[str, BackendEntry]:
    """Entries to patch into backends.REGISTRY: this module, a broken import, a missing framework."""
    return {
        "fake": BackendEntry("fake", "tests.fake_backends", "numpy", MODES, ("ok",)),
        "gone": BackendEntry("gone", "tests.fake_missing_backend", "numpy", ("x",), ("x",)),
        "absent": BackendEntry("absent", "x", "not_a_real_framework_ganbench", ("x",), ("x",)),
    }
