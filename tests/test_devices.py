"""--devices N: data parallel on each framework's own engine computes the one-device numbers.

Run end to end through run_bench.py, because the virtual CPU devices are fixed when a
framework starts (XLA's host-platform device count, TF's logical devices, gloo ranks).
The global batch and the input stream are those of one device, so the losses of 1 and 2
devices must agree: within 1e-4 relative in float32 (the issue's bound; only the order of
the cross-device reductions differs), and to rounding in float64 with batch norm, whose
statistics must then be those of the global batch, in training and in the running averages.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import require, train
from test_cli import run_bench

import backends
from bench.core.gan import METRICS
from bench.core.spec import RunSpec
from bench.run.environment import worker_env

ARGS = ["--device", "cpu", "--warmup", "1", "--block", "2", "--no-report"]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3 * np.max(np.abs(b)))))


@pytest.mark.parametrize("backend", tuple(backends.REGISTRY))
def test_two_devices_give_the_one_device_losses_in_every_mode(backend, tmp_path):
    """MLP WGAN-GP (per-sample gradient penalty across the split batch), every mode on 2
    devices against the same spec trained on one device in this process, in the framework's
    first mode (a worker on one device runs this very code; that every mode computes the
    first one's losses on one device is test_parity's, to the same 1e-4; the batch-norm
    test below compares two workers)."""
    require(backend)
    out = tmp_path / "run"
    r = run_bench("--backends", backend, "--modes", "all", "--algo", "wgan_gp", "--arch", "mlp",
                  "--steps", "4", "--batch-size", "8", *ARGS, "--devices", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    t = pd.read_csv(out / "timings.csv")
    modes = backends.entry(backend).modes
    assert sorted(t["mode"]) == sorted(modes) and (t["status"] == "ok").all()
    assert (t["devices"] == 2).all() and (t["per_device_batch"] == 4).all() and t["speedup_vs_1"].isna().all()
    specs = {json.loads((out / "raw" / f"{backend}-{m}-2dev.job.json").read_text())["spec"] for m in modes}
    spec = dataclasses.replace(RunSpec.from_json(specs.pop()), devices=1)
    assert not specs, "every mode ran the same spec"
    want, _ = train(backend, modes[0], spec, spec.steps)
    for mode in modes:
        with np.load(out / "raw" / f"{backend}-{mode}-2dev.npz") as got:
            for m in (m for m in METRICS if m in want):
                rel = _rel(got[m], want[m])
                assert rel <= 1e-4, f"{backend}-{mode} {m}: 2 devices differ from 1 by {rel:.2e} relative"


@pytest.mark.parametrize("backend", tuple(backends.REGISTRY))
def test_two_devices_synchronise_batch_norm(backend, tmp_path):
    """dcgan28_small (batch norm in G and D) in float64: global-batch statistics, same weights after."""
    require(backend)
    out = tmp_path / "run"
    mode = backends.entry(backend).modes[0 if backend == "torch" else 1]  # eager, graph, scan
    r = run_bench("--backends", backend, "--modes", mode, "--algo", "wgan", "--arch", "dcgan28_small",
                  "--precision", "fp64", "--steps", "3", "--batch-size", "4", "--n-critic", "2", *ARGS,
                  "--devices", "1,2", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    t = pd.read_csv(out / "timings.csv").set_index("devices")
    assert (t["status"] == "ok").all() and t.loc[1, "speedup_vs_1"] == 1 and t.loc[2, "speedup_vs_1"] > 0
    assert t.loc[2, "per_device_batch"] == 2
    # The worker's float64 metrics, not the CSV's 9 digits. d_loss = d_fake - d_real is ~1e-7
    # here, so its rounding is absolute: float64 on values of ~0.5, hence atol 1e-12.
    one, two = (np.load(out / "raw" / f"{backend}-{mode}-{n}dev.npz") for n in (1, 2))
    for k in set(one.files) - {"step"}:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-9, atol=1e-12, err_msg=k)
    one, two = (np.load(out / "raw" / f"{backend}-{mode}-{n}dev.final.npz") for n in (1, 2))
    assert set(one.files) == set(two.files) and any(k.endswith(".var") for k in one.files)
    for k in one.files:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_worker_env_splits_the_host_whatever_xla_flags_the_user_has(monkeypatch):
    """XLA stops reading XLA_FLAGS at a token without "--": the device count must still apply."""
    require("jax")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=5 some_legacy_flag=1")
    env = worker_env("cpu", 2)
    r = subprocess.run([sys.executable, "-c", "import jax; print(len(jax.devices()))"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "2", r.stdout + r.stderr
