"""The analytic FLOP count (bench.flops) against the matmuls the frameworks really run.

gflops_per_step, achieved_gflops and pct_of_peak in timings.csv rest on bench.flops, so it
is checked two independent ways for every algo on both dense archs: against the dot
products in JAX's traced step (exact, shapes from the jaxpr) and against the matmuls
torch.profiler records in a PyTorch eager step (their shapes, 2mkn each).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

import backends
from bench import profile_step
from bench.flops import step_flops
from bench.nets import ARCHS, Dense, init_weights
from bench.spec import ALGOS, RunSpec
from bench.stream import InputStream

BATCH = 8
CASES = [(arch, algo) for arch in ("mlp", "toy_mlp") for algo in ALGOS]


def _backend(name: str, mode: str, arch: str, algo: str):
    require(name)
    spec = RunSpec(ALGOS[algo], arch, "mnist", BATCH, 2, seed=0, warmup=0, block=1)
    a = ARCHS[arch]
    b = backends.load(name)(spec, a, mode, "cpu")
    x = np.random.default_rng(0).uniform(size=(64, *a.x_shape)).astype(np.float32)
    b.load(init_weights(a, 0), x)
    blocks = [blk.arrays() for blk in InputStream(0, spec.algo, BATCH, a.z_dim, 1, len(x)).blocks(0, 2, 1)]
    return b, blocks, step_flops(a, spec.algo, BATCH)


def _jaxpr_matmul_flops(jaxpr) -> float:
    """2 x (output elements) x (contracted size) for every dot_general, inner jaxprs included."""
    total = 0.0
    for e in jaxpr.eqns:
        if e.primitive.name == "dot_general":
            (contract, _), _ = e.params["dimension_numbers"]
            lhs = e.invars[0].aval.shape
            total += 2.0 * np.prod(e.outvars[0].aval.shape) * np.prod([lhs[i] for i in contract])
        for p in e.params.values():
            inner = getattr(p, "jaxpr", p)
            if hasattr(inner, "eqns"):
                total += _jaxpr_matmul_flops(inner)
    return total


@pytest.mark.parametrize("arch,algo", CASES)
def test_analytic_count_matches_jax_traced_matmuls(arch, algo):
    import jax

    b, blocks, analytic = _backend("jax", "jit", arch, algo)
    blk, p, o, s = blocks[0], b.params, b.opt_state, b.stats
    critic = jax.make_jaxpr(b._critic_update)(p["D"], o["D"], s, p["G"], b.data, blk["idx"][0, 0],
                                              blk["z_d"][0, 0], blk["alpha"][0, 0])
    generator = jax.make_jaxpr(b._generator_update)(p["G"], o["G"], s, p["D"], blk["z_g"][0])
    traced = ALGOS[algo].n_critic * _jaxpr_matmul_flops(critic.jaxpr) + _jaxpr_matmul_flops(generator.jaxpr)
    # Exact but for WGAN-GP, where the count's 8BIO per layer for the penalty includes the
    # output layer's width-1 product that JAX writes as a broadcast (2·B·128 per update).
    np.testing.assert_allclose(traced, analytic, rtol=1e-3 if ALGOS[algo].gp_lambda else 1e-12)


@pytest.mark.parametrize("arch,algo", CASES)
def test_analytic_count_matches_torch_profiled_matmuls(arch, algo):
    b, blocks, analytic = _backend("torch", "eager", arch, algo)
    b.train(blocks[0])
    seen = profile_step.profile_torch(b, blocks[1:])["gemm_gflop"] * 1e9
    if not ALGOS[algo].gp_lambda:
        np.testing.assert_allclose(seen, analytic, rtol=1e-12)
        return
    # PyTorch's double backward also back-propagates through D(x_hat)'s forward pass the
    # gradient ReLU's mask gives it, which is exactly zero: at most a dW and a dX per critic
    # layer per critic update more than the necessary work the count (and JAX) has.
    fwd_d = 2.0 * BATCH * sum(lay.n_in * lay.n_out for lay in ARCHS[arch].critic if isinstance(lay, Dense))
    assert analytic < seen <= analytic + ALGOS[algo].n_critic * 2 * fwd_d


def test_gemm_flops_reads_mm_and_addmm_shapes():
    assert profile_step.gemm_flops([[8, 784], [784, 128]]) == 2 * 8 * 784 * 128
    assert profile_step.gemm_flops([[128], [8, 784], [784, 128]]) == 2 * 8 * 784 * 128  # addmm: bias first
