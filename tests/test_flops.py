"""The analytic FLOP count (bench.core.flops) against the matmuls the frameworks really run.

gflops_per_step, achieved_gflops and pct_of_peak in timings.csv rest on bench.core.flops, so it
is checked two independent ways for every algo on both dense archs: against the dot
products in JAX's traced step (exact, shapes from the jaxpr) and against the matmuls
torch.profiler records in a PyTorch eager step (their shapes, 2mkn each).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

import backends
from bench.core.flops import step_flops
from bench.core.nets import ARCHS, Dense, init_weights
from bench.core.spec import ALGOS, RunSpec
from bench.core.stream import InputStream
from bench.tools import profile_step

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


@pytest.mark.parametrize("arch,algo", CASES)
def test_analytic_count_matches_jax_traced_matmuls(arch, algo):
    b, blocks, analytic = _backend("jax", "jit", arch, algo)
    traced = sum(profile_step.dot_flops(lhs, rhs, dims) * n for lhs, rhs, dims, n in
                 profile_step.jax_dots(b, blocks[0]))
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


def test_dot_flops_of_batched_and_transposed_products():
    # (B, M, K) x (B, K, N) batched over axis 0; and A^T B contracting both axis 0
    assert profile_step.dot_flops((3, 4, 5), (3, 5, 6), (((2,), (1,)), ((0,), (0,)))) == 2 * 3 * 4 * 5 * 6
    assert profile_step.dot_flops((5, 4), (5, 6), (((0,), (0,)), ((), ()))) == 2 * 4 * 5 * 6


def test_gemm_flops_reads_mm_and_addmm_shapes():
    assert profile_step.gemm_flops([[8, 784], [784, 128]]) == 2 * 8 * 784 * 128
    assert profile_step.gemm_flops([[128], [8, 784], [784, 128]]) == 2 * 8 * 784 * 128  # addmm: bias first
