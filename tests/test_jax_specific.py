"""JAX-only properties: jit and scan compute the same thing, compile once per block shape,
the Adam steps carry no float32 bias-correction error, and the module imports JAX alone."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require, small_spec, stream_for, train

from bench import optim
from bench.nets import ARCHS
from bench.spec import Optimizer

ROOT = Path(__file__).resolve().parent.parent


def blocky_spec(algo: str = "wgan_gp"):
    """8 steps in blocks of 3 after two warm-up steps of 2 critic updates: for wgan_gp the
    block shapes (K, C) are (2, 2), (3, 5), (3, 5), the last one already compiled."""
    spec = small_spec(algo, "mlp", batch=8, steps=8, n_critic_warm=2, warm_steps=2)
    return dataclasses.replace(spec, block=3)


@pytest.fixture
def jb():
    require("jax")
    return importlib.import_module("backends.jax_backend")


def counting(monkeypatch, jb, name: str) -> list[int]:
    """Count traces of JaxBackend.<name>: the Python body runs only when jax traces it."""
    calls, f = [0], getattr(jb.JaxBackend, name)

    def traced(*args, **kw):
        calls[0] += 1
        return f(*args, **kw)

    monkeypatch.setattr(jb.JaxBackend, name, traced)
    return calls


@pytest.mark.parametrize("algo", ["gan", "wgan", "wgan_gp"])
def test_jit_and_scan_agree(jb, algo):
    spec = blocky_spec(algo)
    m_jit, b_jit = train("jax", "jit", spec, spec.steps)
    m_scan, b_scan = train("jax", "scan", spec, spec.steps)
    assert set(m_jit) == set(m_scan)
    for k in m_jit:
        assert m_jit[k].shape == (spec.steps,)
        np.testing.assert_allclose(m_scan[k], m_jit[k], rtol=1e-6, atol=1e-7, err_msg=k)
    s_jit, s_scan = b_jit.export(), b_scan.export()
    assert s_jit["D:t"] == sum(spec.algo.critic_updates(s) for s in range(spec.steps)) and s_jit["G:t"] == 8
    for k in s_jit:
        np.testing.assert_allclose(s_scan[k], s_jit[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_scan_compiles_once_per_block_shape(jb, monkeypatch):
    traces = counting(monkeypatch, jb, "_train_block")
    spec = blocky_spec()
    assert [(b.steps, b.n_critic) for b in stream_for(spec).blocks(0, 8, 3)] == [(2, 2), (3, 5), (3, 5)]
    train("jax", "scan", spec, spec.steps)
    assert traces[0] == 2


def test_jit_compiles_each_step_once(jb, monkeypatch):
    critic, generator = counting(monkeypatch, jb, "_critic_update"), counting(monkeypatch, jb, "_generator_update")
    spec = blocky_spec()
    train("jax", "jit", spec, spec.steps)
    assert (critic[0], generator[0]) == (1, 1)  # step shapes do not depend on K or C


@pytest.mark.parametrize("o", [Optimizer("adam", 1e-3), Optimizer("adam", 1e-4, 0.5, 0.9), Optimizer("rmsprop", 5e-5)],
                         ids=lambda o: f"{o.name}-{o.beta2}")
def test_steps_have_no_bias_correction_error(jb, o):
    """From p = 0 with same-sign gradients the parameter is the sum of the steps, so a step
    size error shows in full; optax.adam's float32 1 - 0.999^t is 8e-6 off, outside 1e-6."""
    rng = np.random.default_rng(0)
    p0 = np.zeros(64, np.float32)
    grads = [(0.1 + np.abs(rng.normal(size=p0.shape))).astype(np.float32) for _ in range(20)]
    p, slots = p0.astype(np.float64), [np.zeros(p0.shape) for _ in o.slots()]
    for t, (g, got) in enumerate(zip(grads, jb.apply_optimizer(o, p0, grads), strict=True), start=1):
        if o.name == "adam":
            p, *slots = optim.adam(o, p, g.astype(np.float64), *slots, optim.bias_corrections(o, t), np.sqrt)
        else:
            p, *slots = optim.rmsprop(o, p, g.astype(np.float64), *slots, np.sqrt)
        np.testing.assert_allclose(got, p, rtol=1e-6, err_msg=f"update {t}")


def test_gpu_request_without_gpu_fails(jb):
    import jax

    try:
        jax.devices("gpu")
        pytest.skip("a GPU is present")
    except RuntimeError:
        pass
    with pytest.raises(RuntimeError, match="no GPU"):
        jb.JaxBackend(small_spec("gan"), ARCHS["mlp"], "jit", "gpu")


def test_import_leaves_torch_and_tensorflow_out(jb):
    code = ("import sys, backends.jax_backend; bad = {'torch', 'tensorflow'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
