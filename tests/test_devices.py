"""--devices N: data parallel on each framework's own engine computes the one-device numbers.

Run end to end through run_bench.py, because the virtual CPU devices are fixed when a
framework starts (XLA's host-platform device count, TF's logical devices, gloo ranks).
The global batch and the input stream are those of one device, so the losses of 1 and 2
devices must agree: within 1e-4 relative in float32 (the issue's bound; only the order of
the cross-device reductions differs), and to rounding in float64 with batch norm, whose
statistics must then be those of the global batch, in training and in the running averages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import require
from test_cli import run_bench

import backends

METRICS = ["d_loss", "g_loss", "w_estimate", "gp", "d_real", "d_fake"]
ARGS = ["--device", "cpu", "--devices", "1,2", "--warmup", "1", "--block", "2", "--no-report"]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3 * np.max(np.abs(b)))))


def _compare(out, tol: float) -> pd.DataFrame:
    losses = pd.read_csv(out / "losses.csv")
    for (backend, mode), g in losses.groupby(["backend", "mode"]):
        one, two = (g[g["devices"] == n].sort_values("step") for n in (1, 2))
        assert len(one) == len(two) > 0, (backend, mode)
        for m in METRICS:
            if one[m].notna().any():
                rel = _rel(two[m].to_numpy(), one[m].to_numpy())
                assert rel <= tol, f"{backend}-{mode} {m}: 2 devices differ from 1 by {rel:.2e} relative"
    return pd.read_csv(out / "timings.csv")


@pytest.mark.parametrize("backend", tuple(backends.REGISTRY))
def test_two_devices_give_the_one_device_losses_in_every_mode(backend, tmp_path):
    """MLP WGAN-GP (per-sample gradient penalty across the split batch), every mode."""
    require(backend)
    out = tmp_path / "run"
    r = run_bench("--backends", backend, "--modes", "all", "--algo", "wgan_gp", "--arch", "mlp",
                  "--steps", "4", "--batch-size", "8", *ARGS, "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    t = _compare(out, 1e-4)
    assert len(t) == 2 * len(backends.entry(backend).modes) and (t["status"] == "ok").all()
    assert sorted(t["devices"]) == sorted([1, 2] * len(backends.entry(backend).modes))
    two = t[t["devices"] == 2]
    assert (two["per_device_batch"] == 4).all() and (two["speedup_vs_1"] > 0).all()
    assert (t[t["devices"] == 1]["speedup_vs_1"] == 1).all()


@pytest.mark.parametrize("backend", tuple(backends.REGISTRY))
def test_two_devices_synchronise_batch_norm(backend, tmp_path):
    """dcgan28_small (batch norm in G and D) in float64: global-batch statistics, same weights after."""
    require(backend)
    out = tmp_path / "run"
    mode = backends.entry(backend).modes[0 if backend == "torch" else 1]  # eager, graph, scan
    r = run_bench("--backends", backend, "--modes", mode, "--algo", "wgan", "--arch", "dcgan28_small",
                  "--precision", "fp64", "--steps", "3", "--batch-size", "4", "--n-critic", "2", *ARGS,
                  "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    # The worker's float64 metrics, not the CSV's 9 digits. d_loss = d_fake - d_real is ~1e-7
    # here, so its rounding is absolute: float64 on values of ~0.5, hence atol 1e-12.
    one, two = (np.load(out / "raw" / f"{backend}-{mode}-{n}dev.npz") for n in (1, 2))
    for k in set(one.files) - {"step"}:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-9, atol=1e-12, err_msg=k)
    one, two = (np.load(out / "raw" / f"{backend}-{mode}-{n}dev.final.npz") for n in (1, 2))
    assert set(one.files) == set(two.files) and any(k.endswith(".var") for k in one.files)
    for k in one.files:
        np.testing.assert_allclose(two[k], one[k], rtol=1e-9, atol=1e-12, err_msg=k)
