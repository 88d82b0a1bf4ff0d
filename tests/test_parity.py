"""Step-level parity: every backend and mode against the NumPy reference and PyTorch eager.

Tolerances are the issue's: losses within 1e-4 relative (1e-6 absolute near zero) over
the first 10 steps, weights after 1 step within 1e-5. They are not to be widened.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import ALL_RUNS, TOY_DATASET, data_for, make_backend, small_spec, stream_for, train

from bench.core import reference
from bench.core.nets import ARCHS, init_weights
from bench.core.spec import Optimizer

ALGOS = ("gan", "wgan", "wgan_gp")
ARCH_NAMES = tuple(TOY_DATASET)
COMPARED = ("d_loss", "g_loss", "w_estimate", "gp")


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("run", ALL_RUNS, ids=lambda r: "-".join(r))
def test_first_step_matches_numpy_reference(run, algo, arch):
    """Forward losses (and the penalty) at the initial weights equal a float64 NumPy evaluation."""
    spec = small_spec(algo, arch)
    w = init_weights(ARCHS[arch], spec.seed)
    blk = stream_for(spec).block(0, 1).arrays()
    got = make_backend(*run, spec).evaluate(blk)
    want = reference.losses(spec.algo, ARCHS[arch], w, data_for(spec), blk)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("algo", ALGOS)
def test_training_step_matches_numpy_reference(algo, arch):
    """Training path: with one critic update, step 0's critic metrics are the reference at the
    initial weights and g_loss is the reference with the critic the backend exported."""
    spec = small_spec(algo, arch, n_critic=1)
    w = init_weights(ARCHS[arch], spec.seed)
    m, b = train("torch", "eager", spec, 1)
    after = b.export()
    want = reference.losses(spec.algo, ARCHS[arch], w, data_for(spec), stream_for(spec).block(0, 1).arrays(),
                            w_d={k: v for k, v in after.items() if k.startswith("D.")})
    for k, v in want.items():
        np.testing.assert_allclose(m[k][0], v, rtol=1e-5, atol=1e-6, err_msg=k)


# WGAN-GP on toy_mlp amplifies float32 rounding: 50 Adam critic updates turn gradients of
# about eps into full steps, and PyTorch float32 itself ends 9.2e-4 (d_loss) and 3.8e-3 (gp)
# from the same computation in float64 by step 10. XLA on the CPU fuses multiply-adds (FMA),
# so its rounding differs from MKL's; in float64 the frameworks agree to 1e-13. Known and
# measured, not tolerated silently: strict, so the day they match this test says so.
CHAOTIC = {("tf", "xla"), ("jax", "jit"), ("jax", "scan")}


# torch func compiles each generator iteration whole (tens of seconds a setup on 2 cores, cold):
# every algorithm on mlp; toy_mlp is the same layers, which every other mode covers.
FUNC_ARCHS = ("mlp",)


def _ten_step_cases():
    for run in [r for r in ALL_RUNS if r != ("torch", "eager")]:
        for algo in ALGOS:
            for arch in FUNC_ARCHS if run == ("torch", "func") else ARCH_NAMES:
                marks = [pytest.mark.xfail(strict=True, reason="float32 rounding amplified; see CHAOTIC")] \
                    if run in CHAOTIC and (algo, arch) == ("wgan_gp", "toy_mlp") else []
                yield pytest.param(run, algo, arch, marks=marks, id=f"{'-'.join(run)}-{algo}-{arch}")


@pytest.mark.parametrize("run,algo,arch", list(_ten_step_cases()))
def test_ten_steps_match_torch(run, algo, arch):
    spec = small_spec(algo, arch, steps=10)
    want, _ = train("torch", "eager", spec, 10)
    got, _ = train(*run, spec, 10)
    for k in COMPARED:
        assert (k in want) == (k in got), k
        if k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("run", [r for r in ALL_RUNS if r != ("torch", "eager")], ids=lambda r: "-".join(r))
def test_weights_after_one_step_match_torch(run, algo):
    spec = small_spec(algo, "mlp", steps=1)
    _, ref = train("torch", "eager", spec, 1)
    _, b = train(*run, spec, 1)
    want, got = ref.export(), b.export()
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-5, err_msg=k)


# The sources' schedule and optimizer options, each case several at once (the options are
# independent: each is either core-only, the input stream, or one dispatch in each backend).
# tf1_rmsprop: seed 003's TF1 RMSProp, schedule counted from 1 with warm phases, clip before the
# update (Arjovsky), z ~ U(-1, 1), epochs; tf1_adam: gan_toy's TF1 Adam, seed 000's generator-
# first order, epochs. Both start with the schedule's short or long first iterations.
TF1_RMSPROP = Optimizer("rmsprop_tf1", 5e-5, alpha=0.9, eps=1e-10)
TF1_ADAM = Optimizer("adam_tf1", 1e-4, 0.5, 0.9)
OPTION_ALGOS = {
    "tf1_rmsprop": ("wgan", dict(d_opt=TF1_RMSPROP, g_opt=TF1_RMSPROP, n_critic=2, n_critic_warm=3, warm_steps=3,
                                 warm_every=4, count_from=1, clip_before_update=True),
                    dict(z_dist="uniform", batches="epochs")),
    "tf1_adam": ("wgan_gp", dict(d_opt=TF1_ADAM, g_opt=TF1_ADAM, n_critic=2, generator_first=True),
                 dict(batches="epochs")),
}


def _option_spec(option: str, steps: int, precision: str = "fp32"):
    algo, over, fields = OPTION_ALGOS[option]
    spec = small_spec(algo, "mlp", steps=steps, **over)
    return dataclasses.replace(spec, precision=precision, block=2, **fields)


@pytest.mark.parametrize("option", OPTION_ALGOS)
def test_option_schedules_reach_the_backends(option):
    """The schedule options change what a block holds (checked here once, in the stream)."""
    spec = _option_spec(option, 10)
    blocks = list(stream_for(spec).blocks(0, 10, spec.block))
    counts = [spec.algo.critic_updates(s) for s in range(10)]
    assert [c for b in blocks for c in [b.n_critic] * b.steps] == counts
    assert counts[:4] == ([3, 3, 2, 3] if option == "tf1_rmsprop" else [1, 2, 2, 2])


_TORCH_OPTIONS: dict = {}


def _torch_options(spec, steps):
    if spec not in _TORCH_OPTIONS:
        m, b = train("torch", "eager", spec, steps)
        _TORCH_OPTIONS[spec] = m, b.export()
    return _TORCH_OPTIONS[spec]


@pytest.mark.parametrize("option", OPTION_ALGOS)
@pytest.mark.parametrize("run", [r for r in ALL_RUNS if r != ("torch", "eager")], ids=lambda r: "-".join(r))
def test_option_ten_steps_match_torch(run, option):
    spec = _option_spec(option, 10)
    want, _ = _torch_options(spec, 10)
    got, _ = train(*run, spec, 10)
    assert set(got) == set(want)
    for k in COMPARED:
        if k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("option", OPTION_ALGOS)
@pytest.mark.parametrize("run", [r for r in ALL_RUNS if r != ("torch", "eager")], ids=lambda r: "-".join(r))
def test_option_state_matches_torch_in_float64(run, option):
    """Losses and the whole state (weights, optimizer slots and step counts) after 3 steps."""
    spec = _option_spec(option, 3, "fp64")
    want, ws = _torch_options(spec, 3)
    got, b = train(*run, spec, 3)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)
    gs = b.export()
    assert set(gs) == set(ws)
    for k in ws:
        np.testing.assert_allclose(gs[k], ws[k], rtol=1e-9, atol=1e-12, err_msg=k)
