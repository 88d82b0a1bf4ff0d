"""Convolutional architectures: every backend against the NumPy reference and PyTorch.

The framework-default traps of GUIDE section 4 each get a small net that isolates them
(weight layout, flatten and reshape order, conv-transpose padding, batch-norm momentum,
eps and unbiased running variance, LeakyReLU slope); the real architectures are then
checked whole: forward outputs within 1e-5 of the float64 reference, and the first
steps of training within 1e-4 relative of PyTorch eager for the algorithms each is used
with (the presets').
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import ALL_RUNS, CONV_DATASET, data_for, require, stream_for

import backends
from bench.core import presets, reference
from bench.core.nets import (
    ARCHS,
    TF_BN,
    Act,
    Arch,
    BatchNorm,
    Conv,
    ConvT,
    Crop,
    Dense,
    Flatten,
    Reshape,
    init_weights,
)
from bench.core.spec import ALGOS, RunSpec
from bench.core.stream import InputStream

LRELU = Act("leaky_relu", 0.2)
# One trap per net; G maps z (8) to a 6x6x2 image, D maps that image to a score.
TRAPS = {
    "conv_layout_and_flatten_order": (
        (Dense(8, 72), Reshape((6, 6, 2))),
        (Conv(2, 3, 3, 1, 1), Flatten(), Dense(108, 1)),
    ),
    "reshape_order": (
        (Dense(8, 3 * 3 * 4), Reshape((3, 3, 4)), ConvT(4, 2, 4, 2, 1)),
        (Conv(2, 3, 3, 2, 0), Flatten(), Dense(12, 1)),
    ),
    "conv_transpose_padding_and_output_padding": (
        (Dense(8, 2 * 2 * 3), Reshape((2, 2, 3)), ConvT(3, 4, 5, 2, 2, 1), Crop(3, 3), ConvT(4, 2, 5, 2, 2, 1)),
        (Conv(2, 4, 5, 2, 2), Flatten(), Dense(36, 1)),
    ),
    "strided_conv_padding": (
        (Dense(8, 72), Reshape((6, 6, 2))),
        (Conv(2, 3, 4, 2, 1), Conv(3, 2, 3, 2, 1, bias=False), Flatten(), Dense(8, 1)),
    ),
    "batch_norm_momentum_eps_unbiased": (
        (Dense(8, 72), Reshape((6, 6, 2)), BatchNorm(2, momentum=0.3, eps=1e-3), Act("relu")),
        (Conv(2, 3, 3, 2, 0), BatchNorm(3), Flatten(), Dense(12, 1)),
    ),
    # seed 003: a TF moving average of the biased batch variance, from 0; a strided last conv to a
    # 3x3 score map (its flattened mean is the loss's)
    "tf_batch_norm_and_strided_score_map": (
        (Dense(8, 72), Reshape((6, 6, 2)), TF_BN(2), Act("relu")),
        (Conv(2, 3, 3, 1, 1), TF_BN(3), LRELU, Conv(3, 1, 4, 2, 1, bias=False), Flatten()),
    ),
    "leaky_relu_slope": (
        (Dense(8, 72), LRELU, Reshape((6, 6, 2)), Act("tanh")),
        (Conv(2, 3, 3, 2, 0), Act("leaky_relu", 0.37), Flatten(), Dense(12, 1), Act("sigmoid")),
    ),
}
TRAP_ARCHS = {n: Arch(n, 8, (6, 6, 2), g, d) for n, (g, d) in TRAPS.items()}
CONV_ARCHS = tuple(CONV_DATASET)
# The algorithms each architecture is trained with by a preset (bench.core.presets): an ALGOS
# name or a preset's name for its algorithm.
ARCH_ALGOS = {"dcgan28": ("wgan_gp",), "dcgan28_small": ("wgan",), "dcgan32": ("wgan_gp",), "dcgan64": ("wgan",),
              "dcgan64_tf": ("seed003-wgan-dcgan-celeba",)}
BN_TRAPS = ("batch_norm_momentum_eps_unbiased", "tf_batch_norm_and_strided_score_map")
BATCH = 4
FWD_TOL = {"rtol": 1e-5, "atol": 1e-5}


def _backend(run: tuple[str, str], arch: Arch, spec: RunSpec, data: np.ndarray, state: dict | None = None):
    require(run[0])
    b = backends.load(run[0])(spec, arch, run[1], "cpu")
    b.load(init_weights(arch, spec.seed) if state is None else state, data)
    return b


def _trap_spec(arch: Arch) -> RunSpec:
    return RunSpec(dataclasses.replace(ALGOS["wgan"], n_critic=1), arch.name, "synthetic", BATCH, 1,
                   warmup=0, block=1)


@pytest.mark.parametrize("trap", TRAPS)
@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda r: "-".join(r))
def test_trap_forward_matches_reference(run, trap):
    arch = TRAP_ARCHS[trap]
    spec = _trap_spec(arch)
    w = init_weights(arch, 0)
    rng = np.random.default_rng(1)
    w = {k: (v + rng.normal(0, 0.3, v.shape)).astype(np.float32) for k, v in w.items()}  # BN scale/shift too
    w.update({k: np.abs(v) + 0.5 for k, v in w.items() if k.endswith(".var")})
    z = rng.standard_normal((BATCH, 8)).astype(np.float32)
    x = rng.uniform(-1, 1, (BATCH, 6, 6, 2)).astype(np.float32)
    b = _backend(run, arch, spec, x, w)
    np.testing.assert_allclose(b.sample(z), reference.forward(arch.generator, w, "G", z), **FWD_TOL)
    np.testing.assert_allclose(b.critic(x), reference.forward(arch.critic, w, "D", x), **FWD_TOL)
    # Sampling and scoring leave the running statistics alone.
    after = b.export()
    for k in (k for k in w if k.endswith((".mean", ".var"))):
        np.testing.assert_array_equal(after[k], w[k], err_msg=k)


@pytest.mark.parametrize("trap", BN_TRAPS)
@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda r: "-".join(r))
def test_batch_norm_running_statistics_after_one_step(run, trap):
    """One critic update and one generator update: G's running statistics move twice, by
    G(z_d) then G(z_g) (G's weights change only after its forward pass), with PyTorch's
    momentum (weight of the new batch) and the unbiased variance (or the biased one, from 0)."""
    arch = TRAP_ARCHS[trap]
    spec = _trap_spec(arch)
    w = init_weights(arch, 0)
    x = np.random.default_rng(1).uniform(-1, 1, (16, 6, 6, 2)).astype(np.float32)
    b = _backend(run, arch, spec, x, w)
    stream = InputStream(spec.seed, spec.algo, BATCH, arch.z_dim, len(arch.x_shape), len(x))
    blk = stream.block(0, 1).arrays()
    b.train(blk)
    stats = {k: v.astype(np.float64) for k, v in w.items() if k.endswith((".mean", ".var"))}
    reference.forward(arch.generator, w, "G", blk["z_d"][0, 0], stats=stats)
    reference.forward(arch.generator, w, "G", blk["z_g"][0], stats=stats)
    got = b.export()
    for k in (k for k in stats if k.startswith("G.")):
        np.testing.assert_allclose(got[k], stats[k], rtol=1e-5, atol=1e-6, err_msg=k)
        assert not np.allclose(stats[k], w[k]), k  # the statistics did move


@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda r: "-".join(r))
def test_sampling_with_running_statistics(run):
    """RunSpec.sample_running_stats: sample() normalises with the running statistics (seed 003's
    sampling), training still with the batch's; the statistics stay as they were."""
    arch = TRAP_ARCHS["tf_batch_norm_and_strided_score_map"]
    spec = dataclasses.replace(_trap_spec(arch), sample_running_stats=True)
    rng = np.random.default_rng(2)
    w = init_weights(arch, 0)
    w.update({k: rng.normal(0, 0.5, v.shape).astype(np.float32) for k, v in w.items() if k.endswith(".mean")})
    w.update({k: rng.uniform(0.2, 2.0, v.shape).astype(np.float32) for k, v in w.items() if k.endswith(".var")})
    z = rng.standard_normal((BATCH, 8)).astype(np.float32)
    b = _backend(run, arch, spec, rng.uniform(-1, 1, (BATCH, 6, 6, 2)).astype(np.float32), w)
    stats = {k: v.astype(np.float64) for k, v in w.items() if k.endswith((".mean", ".var"))}
    want = reference.forward(arch.generator, w, "G", z, stats=stats, running=True)
    np.testing.assert_allclose(b.sample(z), want, **FWD_TOL)
    assert not np.allclose(want, reference.forward(arch.generator, w, "G", z), atol=1e-2)  # the mode matters
    after = b.export()
    for k in stats:
        np.testing.assert_array_equal(after[k], w[k], err_msg=k)


def _conv_spec(arch: str, algo: str, steps: int, precision: str = "fp32", batch: int = BATCH) -> RunSpec:
    # Two critic updates instead of five (and no warm phase) keep CI short; the per-update maths is the same.
    base = ALGOS[algo] if algo in ALGOS else presets.get(algo).algo
    a = dataclasses.replace(base, n_critic=2, n_critic_warm=None)
    return RunSpec(a, arch, CONV_DATASET[arch], batch, steps, seed=0, warmup=0, block=steps, precision=precision)


@pytest.mark.parametrize("arch", CONV_ARCHS)
@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda r: "-".join(r))
def test_arch_forward_matches_reference(run, arch):
    spec = _conv_spec(arch, ARCH_ALGOS[arch][0], 1)
    a = ARCHS[arch]
    w = init_weights(a, 0)
    data = data_for(spec)
    b = _backend(run, a, spec, data, w)
    z = stream_for(spec).fixed_z(BATCH)
    want_g = reference.forward(a.generator, w, "G", z)
    assert want_g.shape == (BATCH, *a.x_shape)
    np.testing.assert_allclose(b.sample(z), want_g, **FWD_TOL)
    np.testing.assert_allclose(b.critic(data[:BATCH]), reference.forward(a.critic, w, "D", data[:BATCH]), **FWD_TOL)


def _train(run, spec: RunSpec, steps: int):
    a = ARCHS[spec.arch]
    b = _backend(run, a, spec, data_for(spec))
    out: dict[str, list] = {}
    for blk in stream_for(spec).blocks(0, steps, spec.block):
        for k, v in b.train(blk.arrays()).items():
            out.setdefault(k, []).append(np.asarray(v, np.float64))
    return {k: np.concatenate(v) for k, v in out.items()}, b


# (backend, mode, arch) whose float32 losses leave PyTorch eager's by more than 1e-4 within
# 5 steps although in float64 the same computation agrees to 1e-9 in losses and state (the
# float64 test below). dcgan64's WGAN critic scores are ~5e-3, a difference of two
# near-equal means, and RMSprop's first steps are ~lr * sign(g): summation order alone
# moves them, by ~1e-2 relative at step 2 between torch eager and torch compile. Every
# other backend and mode rounds differently from MKL-DNN's NCHW kernels, so every one is
# here (measured: jax jit 1.45e-1, scan 1.46e-1 relative in d_loss). The float32 test
# leaves them out; the float64 test runs them.
CHAOTIC = {(*run, "dcgan64") for run in ALL_RUNS if run != ("torch", "eager")}
# Every mode trains dcgan28 (WGAN-GP: the penalty's double backward through convolutions)
# and dcgan28_small (batch norm in both nets, a sigmoid critic), in float32 and float64; the
# other archs train in one compiled mode of TF and of JAX, in float64 (the stricter test:
# losses and state to 1e-9; float32 rounding on the convolutions is the two archs' above).
# What they add (no biases, TF's batch norm and SAME padding, 32x32 and 64x64 images) is
# layer code every mode of a framework shares: their forward pass is checked in every mode
# by test_arch_forward_matches_reference, and their training in TF and JAX against PyTorch
# eager, which is the very layer code that torch compile and func trace (a mode's own
# compilation of the step is checked on the two archs above). An XLA compile of a 64x64
# net's training step costs a minute of a 2-core CPU, cold, per mode and test; an inductor
# one as much.
EVERY_MODE_ARCHS = ("dcgan28", "dcgan28_small")
ONE_MODE_EACH = {("tf", "graph"), ("jax", "jit")}
# torch compile and func build the step with inductor (one to two minutes a conv setup on 2
# cores, cold, double backward included): in float64 alone, whose state comparison is the
# stricter test, and on dcgan28 alone, whose penalty differentiates twice through the
# convolutions. dcgan28_small adds batch norm, whose training in both modes is checked on
# the trap nets (test_batch_norm_running_statistics_after_one_step). Their float32 agreement
# with eager is checked on the MLPs (test_parity) and measured over training by the parity
# horizon (bench.tools.horizon), dcgan28_small's WGAN-GP included.
FP64_ONLY = {("torch", "compile"), ("torch", "func")}
INDUCTOR_ARCHS = ("dcgan28",)


def _first_steps_cases(float64: bool = False):
    for run in (r for r in ALL_RUNS if r != ("torch", "eager")):
        for arch in CONV_ARCHS:
            for algo in ARCH_ALGOS[arch]:
                if arch not in EVERY_MODE_ARCHS and (run not in ONE_MODE_EACH or not float64):
                    continue
                if not float64 and (run in FP64_ONLY or (*run, arch) in CHAOTIC):
                    continue
                if run in FP64_ONLY and arch not in INDUCTOR_ARCHS:
                    continue
                yield pytest.param(run, arch, algo, id=f"{'-'.join(run)}-{arch}-{algo}")


_TORCH: dict[RunSpec, tuple] = {}


def _torch_eager(spec: RunSpec, steps: int):
    """PyTorch eager's losses and exported state, computed once per spec for all the runs
    compared with it."""
    if spec not in _TORCH:
        m, b = _train(("torch", "eager"), spec, steps)
        _TORCH[spec] = m, b.export()
    return _TORCH[spec]


def _compare_first_steps(run, arch: str, algo: str, precision: str, rtol: float, atol: float, steps: int = 5,
                         batch: int = BATCH, state: bool = False):
    spec = _conv_spec(arch, algo, steps, precision, batch)
    want, ws = _torch_eager(spec, steps)
    got, b = _train(run, spec, steps)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)
    if state:
        gs = b.export()
        assert set(gs) == set(ws)
        for k in ws:
            np.testing.assert_allclose(gs[k], ws[k], rtol=rtol, atol=atol, err_msg=k)


@pytest.mark.parametrize("run,arch,algo", list(_first_steps_cases()))
def test_first_steps_match_torch(run, arch, algo):
    """Losses over the first 5 steps within 1e-4 relative. The weights are not compared
    in float32: RMSprop and Adam turn gradients of about float32 noise into full steps (a
    conv bias right before batch norm has a true gradient of exactly 0; dcgan28_small's
    sigmoid critic passes gradients near eps), so after a step some weights differ by up
    to a whole update between any two summation orders, torch eager vs compile included.
    The float64 test below compares them."""
    _compare_first_steps(run, arch, algo, "fp32", rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("run,arch,algo", list(_first_steps_cases(float64=True)))
def test_first_steps_and_state_match_torch_in_float64(run, arch, algo):
    """In float64 (XLA's float64 convolutions are slow on a CPU: 2 steps of batch 2) the
    losses and the whole state after them (weights, optimizer slots, batch-norm running
    statistics) agree with PyTorch eager to 1e-9: the CHAOTIC cases, which leave float32
    PyTorch by step 1, are rounding, not a different computation; and the near-constant
    losses of dcgan28_small's sigmoid critic do not hide a difference in training."""
    _compare_first_steps(run, arch, algo, "fp64", rtol=1e-9, atol=1e-12, steps=2, batch=2, state=True)
