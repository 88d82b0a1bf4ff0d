"""Each backend's optimizer against the spec's formulas (bench.core.optim) in float64 NumPy,
on a synthetic gradient sequence that includes tiny and zero gradients (where eps matters)."""

from __future__ import annotations

import importlib
import math

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
    "adam_tf1-gan_toy": Optimizer("adam_tf1", 1e-4, 0.5, 0.9),
    "rmsprop_tf1-seed003": Optimizer("rmsprop_tf1", 5e-5, alpha=0.9, eps=1e-10),
}


def reference(o: Optimizer, p: np.ndarray, grads: list[np.ndarray]) -> list[np.ndarray]:
    p, out = p.astype(np.float64), []
    slots = {s: np.full(p.shape, o.slot_start(s)) for s in o.slots()}
    for t, g in enumerate(grads, start=1):
        bc = optim.bias_corrections(o, t) if o.is_adam else None
        p, slots = optim.update(o, p, g.astype(np.float64), slots, bc, np.sqrt)
        out.append(p)
    return out


def by_hand(o: Optimizer, p: float, grads: list[float]) -> list[float]:
    """The forms as their sources write them, scalar by scalar: PyTorch's torch.optim docs, TF1's
    training_ops.cc (ApplyAdam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); ApplyRMSProp with
    momentum 0: ms += (g^2 - ms)(1 - decay), var -= lr g / sqrt(ms + eps), ms from 1)."""
    m, v, out = 0.0, o.slot_start("v"), []
    for t, g in enumerate(grads, start=1):
        if o.is_adam:
            m += (g - m) * (1 - o.beta1)
            v += (g * g - v) * (1 - o.beta2)
            if o.name == "adam":
                p -= o.lr * (m / (1 - o.beta1**t)) / (math.sqrt(v / (1 - o.beta2**t)) + o.eps)
            else:
                p -= o.lr * math.sqrt(1 - o.beta2**t) / (1 - o.beta1**t) * m / (math.sqrt(v) + o.eps)
        else:
            v += (g * g - v) * (1 - o.alpha)
            p -= o.lr * g / (math.sqrt(v) + o.eps if o.name == "rmsprop" else math.sqrt(v + o.eps))
        out.append(p)
    return out


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_spec_formula_is_its_source_form(opt):
    """bench.core.optim against the forms written out independently, in float64 scalars."""
    o = OPTIMIZERS[opt]
    grads = [1e-8, -1e-6, 0.0, 1e-4, 1.0, -1e-3, 10.0, 1.0]
    got = [float(p) for p in reference(o, np.array(0.3), [np.array(g) for g in grads])]
    np.testing.assert_allclose(got, by_hand(o, 0.3, grads), rtol=1e-14, atol=1e-15)


def test_tf1_rmsprop_first_step_is_about_sgd():
    """Why the form matters: from a small gradient, TF1's first step is ~lr * g / sqrt(decay),
    PyTorch's ~lr * sign(g) / sqrt(1 - alpha)."""
    g = np.array(1e-3)
    tf1 = OPTIMIZERS["rmsprop_tf1-seed003"]
    (p_tf1,) = reference(tf1, np.array(0.0), [g])
    (p_torch,) = reference(Optimizer("rmsprop", tf1.lr, alpha=0.99), np.array(0.0), [g])
    assert 1.05 < -p_tf1 / (tf1.lr * g) < 1.06  # 1 / sqrt(0.9)
    np.testing.assert_allclose(-p_torch, tf1.lr * 10.0, rtol=1e-3)  # eps 1e-8 against sqrt(v) 1e-4


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
