"""JAX-only properties: jit and scan compute the same thing (batch-norm running statistics
included), compile once per block shape, the Adam steps carry no float32 bias-correction
error, fp64 runs are float64 throughout, and the module imports JAX alone."""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, require, small_spec, stream_for, train

from bench.core import optim
from bench.core.nets import ARCHS, Act, Arch, BatchNorm, Conv, ConvT, Dense, Flatten, Reshape, init_weights
from bench.core.spec import ALGOS, Optimizer, RunSpec
from bench.core.stream import InputStream


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


# Batch norm in both nets, conv and conv-transpose: small enough to compile in seconds. No
# bias feeds a batch norm unbroken (its true gradient would be exactly 0, and Adam would
# turn rounding noise into full steps that differ between any two fusions): hence no
# biases before batch norm, and the tanh before the critic's conv.
BN_ARCH = Arch(
    "bn_small", 8, (6, 6, 2),
    (Dense(8, 3 * 3 * 4, bias=False), Reshape((3, 3, 4)), BatchNorm(4, momentum=0.3), Act("relu"),
     ConvT(4, 2, 4, 2, 1), Act("tanh")),
    (Conv(2, 3, 3, 2, 0, bias=False), BatchNorm(3), Act("leaky_relu", 0.2), Flatten(), Dense(12, 1)),
)


def _train_bn(jb, mode: str, algo: str, precision: str = "fp32", steps: int = 4):
    """A few blocks of 2 steps x 3 critic updates on BN_ARCH; returns (metrics, backend)."""
    spec = RunSpec(dataclasses.replace(ALGOS[algo], n_critic=3), BN_ARCH.name, "synthetic", 4, steps, warmup=0,
                   block=2, precision=precision)
    data = np.random.default_rng(1).uniform(-1, 1, (16, 6, 6, 2)).astype(np.float32)
    b = jb.JaxBackend(spec, BN_ARCH, mode, "cpu")
    b.load(init_weights(BN_ARCH, 0), data)
    stream = InputStream(spec.seed, spec.algo, 4, BN_ARCH.z_dim, 3, len(data))
    rows = [b.train(blk.arrays()) for blk in stream.blocks(0, steps, spec.block)]
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}, b


@pytest.mark.parametrize("algo", ["gan", "wgan"])
def test_jit_and_scan_agree_with_batch_norm(jb, algo):
    """The running statistics thread through the scan's carry as through the jit steps: same
    losses, weights and statistics, and the statistics moved."""
    m_jit, b_jit = _train_bn(jb, "jit", algo)
    m_scan, b_scan = _train_bn(jb, "scan", algo)
    for k in m_jit:
        np.testing.assert_allclose(m_scan[k], m_jit[k], rtol=1e-6, atol=1e-7, err_msg=k)
    s_jit, s_scan, init = b_jit.export(), b_scan.export(), init_weights(BN_ARCH, 0)
    assert set(s_jit) == set(s_scan) and {"G.2.mean", "G.2.var", "D.1.mean", "D.1.var"} <= set(s_jit)
    for k in s_jit:
        np.testing.assert_allclose(s_scan[k], s_jit[k], rtol=1e-6, atol=1e-7, err_msg=k)
    for k in ("G.2.mean", "G.2.var", "D.1.mean", "D.1.var"):
        assert not np.allclose(s_jit[k], init[k]), k
    # sample, critic and evaluate are not training passes
    z = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    b_jit.sample(z), b_jit.critic(b_jit.sample(z))
    b_jit.evaluate(InputStream(0, ALGOS[algo], 4, 8, 3, 16).block(0, 1).arrays())
    after = b_jit.export()
    for k in ("G.2.mean", "G.2.var", "D.1.mean", "D.1.var"):
        np.testing.assert_array_equal(after[k], s_jit[k], err_msg=k)


def test_fp64_is_float64_throughout_and_fp32_after_it_is_not(jb):
    """jax_enable_x64 is process-wide: an fp64 backend turns it on, the next fp32 one off."""
    m, b = _train_bn(jb, "scan", "gan", "fp64", steps=2)
    assert all(v.dtype == np.float64 for v in m.values())
    state = b.export()
    assert all(v.dtype == np.float64 for k, v in state.items() if not k.endswith(":t"))
    assert b.sample(np.zeros((2, 8), np.float32)).dtype == np.float64
    assert "dtype=float64" in b.info()["precision"]
    m, b = _train_bn(jb, "jit", "gan", "fp32", steps=2)
    assert all(v.dtype == np.float32 for v in m.values())
    assert all(v.dtype == np.float32 for k, v in b.export().items() if not k.endswith(":t"))
    assert "x64=False" in b.info()["precision"]


def test_fp64_adam_is_float64(jb):
    """In float64 the bias correction's log b must be float64 too: a float32 one puts the
    parameters 4e-10 off here, a float64 one 2e-17."""
    import jax

    o = Optimizer("adam", 1e-3)
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=16) for _ in range(10)]
    with jax.enable_x64(True):
        tx, p = jb._optimizer(o, np.float64), jax.numpy.zeros(16, np.float64)
        state = tx.init(p)
        want, slots = np.zeros(16), [np.zeros(16), np.zeros(16)]
        for t, g in enumerate(grads, start=1):
            p, state = jb._apply(tx, p, jax.numpy.asarray(g), state)
            want, *slots = optim.adam(o, want, g, *slots, optim.bias_corrections(o, t), np.sqrt)
            assert p.dtype == np.float64
            np.testing.assert_allclose(np.asarray(p), want, rtol=0, atol=1e-12 * o.lr, err_msg=f"update {t}")


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


def test_a_persistent_compilation_cache_is_named_in_the_row(jb):
    """With JAX's persistent cache on (a user's setting; the tests turn it on in conftest),
    compile_s may be a cache hit, so the row's note names the cache."""
    import jax

    cache = os.environ["JAX_COMPILATION_CACHE_DIR"]
    assert jax.config.jax_compilation_cache_dir == cache
    note = jb.JaxBackend(small_spec("gan", "mlp", steps=1), ARCHS["mlp"], "jit", "cpu").info()["note"]
    assert f"persistent compilation cache {cache}" in note
