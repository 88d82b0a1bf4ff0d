"""Each backend's optimizer against the spec's formulas (bench.core.optim) in float64 NumPy,
on a synthetic gradient sequence that includes tiny and zero gradients (where eps matters)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import backends
from bench.core import optim
from bench.core.spec import Optimizer

OPTIMIZERS = {
    "adam-wgan_gp": Optimizer("adam", 1e-4, 0.5, 0.9),
    "adam-seed001": Optimizer("adam", 1e-3),
    "adam-seed004": Optimizer("adam", 4e-4, 0.5, 0.999),
    "rmsprop-wgan": Optimizer("rmsprop", 5e-5),
}


def reference(o: Optimizer, p: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    p, slots, out = p.astype(np.float64), [np.zeros(p.shape) for _ in o.slots()], []
    for t, g in enumerate(grads, start=1):
        if o.name == "adam":
            p, *slots = optim.adam(o, p, g.astype(np.float64), *slots, optim.bias_corrections(o, t), np.sqrt)
        else:
            p, *slots = optim.rmsprop(o, p, g.astype(np.float64), *slots, np.sqrt)
        out.append(p)
    return out


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_optimizer_follows_spec_formula(backend_name, opt):
    o = OPTIMIZERS[opt]
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(7, 5)).astype(np.float32)
    scales = [1e-8, 1e-6, 0.0, 1e-4, 1.0, 1e-3, 10.0, 1.0]  # tiny first: eps placement shows while v is small
    grads = [(s * rng.normal(size=p0.shape)).astype(np.float32) for s in scales]
    got = importlib.import_module(backends.entry(backend_name).module).apply_optimizer(o, p0, grads)
    for i, (a, b) in enumerate(zip(got, reference(o, p0, grads), strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"{backend_name} {opt} update {i + 1}")
