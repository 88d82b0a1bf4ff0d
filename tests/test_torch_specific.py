"""PyTorch's own paths: each optimizer implementation against the spec, each mode's note, and
func mode's one graph per generator iteration."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_backend, require, small_spec, stream_for
from test_optim import OPTIMIZERS, reference

import backends

require("torch")
import torch  # noqa: E402

from backends import torch_backend  # noqa: E402

IMPLS = ("fused", "foreach", "func")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_every_optimizer_implementation_follows_spec_formula(opt, impl):
    """The torch.optim forms eager and compile choose, and func's hand-written update, within
    test_optim's tolerance of the float64 formula."""
    o = OPTIMIZERS[opt]
    if impl == "fused" and o.name == "rmsprop":
        pytest.skip("torch has no fused RMSprop")
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(7, 5)).astype(np.float32)
    grads = [(s * rng.normal(size=p0.shape)).astype(np.float32) for s in (1e-8, 1e-6, 0.0, 1e-4, 1.0, 1e-3, 10.0)]
    got = torch_backend.apply_optimizer(o, p0, grads, impl)
    for i, (a, b) in enumerate(zip(got, reference(o, p0, grads), strict=True)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"{opt} {impl} update {i + 1}")


@pytest.mark.parametrize("algo", ["wgan", "wgan_gp"])
@pytest.mark.parametrize("mode", backends.entry("torch").modes)
def test_note_says_which_optimizer_ran_and_what_was_compiled(mode, algo):
    spec = small_spec(algo, "mlp", batch=4, steps=1)
    note = make_backend("torch", mode, spec).info()["note"]
    name = spec.algo.d_opt.name
    if mode == "func":
        assert f"hand-written G {name}, D {name}" in note and "one graph with inductor's C++ wrapper" in note
        return
    impl = torch_backend._OPTIMIZER_IMPL[mode, name]
    assert f"torch.optim G {name} {impl}, D {name} {impl}" in note
    if mode == "eager":
        assert "nothing compiled" in note
    else:
        assert "both optimizer steps" in note
        assert ("eager: the critic's forward+backward" in note) == (algo == "wgan_gp")


def test_func_is_one_graph_per_iteration_and_clips():
    """WGAN with one critic update: two blocks compile one graph (fullgraph: no breaks; a new
    step count, Adam's bias corrections, enters as data, so no recompile), and the critic's
    weights stay clipped."""
    spec = small_spec("wgan", "mlp", batch=4, steps=2, n_critic=1)
    b = make_backend("torch", "func", spec)
    torch._dynamo.utils.counters.clear()
    for blk in stream_for(spec).blocks(0, 2, 1):
        m = b.train(blk.arrays())
        assert set(m) == {"d_loss", "g_loss", "w_estimate", "d_real", "d_fake"}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    state = b.export()
    assert state["D:t"] == 2 and state["G:t"] == 2
    for k in (k for k in state if k.startswith("D.") and ":" not in k):
        assert np.abs(state[k]).max() <= spec.algo.clip, k
