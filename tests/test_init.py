"""Each init scheme (bench.core.nets.INITS) against its source's rule, in float64 NumPy: the
bounds and spreads the sources' code gives, layer by layer, and PyTorch's own fan-in where
the scheme is PyTorch's default."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.nets import ARCHS, INITS, BatchNorm, Conv, ConvT, Dense, init_weights


def _weighted(arch: str):
    for net, layers in ARCHS[arch].nets().items():
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense | Conv | ConvT):
                yield f"{net}.{i}", layer


def _assert_uniform(w: np.ndarray, bound: float, name: str) -> None:
    """U(-bound, bound): inside it, and, where it holds 64 values or more, reaching near its ends."""
    assert np.abs(w).max() <= bound * (1 + 1e-6), name
    if w.size >= 64:
        assert np.abs(w).max() >= bound * (0.9 if w.size < 1000 else 0.99), name


# (arch, layer) -> the bound the sources' code gives, as the issue's facts computed them by hand
TFLIB_BOUNDS = {  # gan_mnist.py's tflib: conv/deconv sqrt(3) sqrt(4 / (fan_in + fan_out)), stride rule; Linear Glorot
    "D.0": 0.168, "D.2": 0.0707, "D.4": 0.0500, "D.7": 0.0383,
    "G.0": 0.0377, "G.3": 0.0500, "G.6": 0.0707, "G.8": 0.168,
}
TOY_BOUNDS = {  # gan_toy.py: ReLULayer 'he' U(+-sqrt(6 / fan_in)); the output Linear Glorot
    "G.0": 1.732, "G.2": 0.1083, "G.4": 0.1083, "G.6": 0.1080,
    "D.0": 1.732, "D.2": 0.1083, "D.4": 0.1083, "D.6": 0.1081,
}


@pytest.mark.parametrize("scheme,arch,bounds", [("tflib", "dcgan28", TFLIB_BOUNDS),
                                                ("he_glorot_out", "toy_mlp", TOY_BOUNDS)])
def test_tflib_bounds_and_zero_biases(scheme, arch, bounds):
    w = init_weights(ARCHS[arch], 0, scheme)
    assert {k for k, _ in _weighted(arch)} == set(bounds)
    for key, b in bounds.items():
        np.testing.assert_allclose(np.abs(w[key + ".w"]).max(), b, rtol=0.03, err_msg=key)
        if key + ".b" in w:
            assert not w[key + ".b"].any(), key


def test_torch_schemes_use_pytorchs_fan_in():
    """torch: each layer's bound is 1/sqrt(fan_in) with fan_in as torch.nn.init computes it from
    the torch layer's own weight (ConvTranspose2d: k*k*c_out); uniform_fan_in: k*k*c_in for it."""
    torch = pytest.importorskip("torch")
    for arch in ("dcgan28_small", "dcgan32", "mlp"):
        new, old = (init_weights(ARCHS[arch], 0, s) for s in ("torch", "uniform_fan_in"))
        for key, layer in _weighted(arch):
            if isinstance(layer, Dense):
                t = torch.nn.Linear(layer.n_in, layer.n_out)
            else:
                cls = torch.nn.Conv2d if isinstance(layer, Conv) else torch.nn.ConvTranspose2d
                t = cls(layer.c_in, layer.c_out, layer.k)
            fan_in = torch.nn.init._calculate_fan_in_and_fan_out(t.weight)[0]
            _assert_uniform(t.weight.detach().numpy(), 1 / np.sqrt(fan_in), key + " (torch's own draw)")
            _assert_uniform(new[key + ".w"], 1 / np.sqrt(fan_in), key)
            _assert_uniform(new[key + ".b"], 1 / np.sqrt(fan_in), key)
            legacy = layer.k * layer.k * layer.c_in if isinstance(layer, ConvT) else fan_in
            _assert_uniform(old[key + ".w"], 1 / np.sqrt(legacy), key)


def test_seed004_conv_transpose_bounds_are_todays_pytorch():
    """The facts' hand-computed numbers: ConvT(100, 64, 5) is U(+-1/sqrt(64*25)) = 0.025 in
    PyTorch >= 1.0, U(+-1/sqrt(100*25)) = 0.02 before."""
    new, old = (init_weights(ARCHS["dcgan28_small"], 0, s) for s in ("torch", "uniform_fan_in"))
    np.testing.assert_allclose(np.abs(new["G.1.w"]).max(), 0.025, rtol=0.01)
    np.testing.assert_allclose(np.abs(old["G.1.w"]).max(), 0.02, rtol=0.01)


@pytest.mark.parametrize("scheme", ["dcgan", "dcgan_truncated"])
def test_normal_schemes(scheme):
    """Weights N(0, 0.02) (truncated: redrawn beyond 2 std, as tf.truncated_normal, so their std
    is 0.02 times 0.8796); batch-norm scale N(1, 0.02), shift 0; no biases drawn."""
    arch = "dcgan64_tf" if scheme == "dcgan_truncated" else "dcgan64"
    w = init_weights(ARCHS[arch], 0, scheme)
    big = w["G.4.w"].astype(np.float64)  # 4x4x1024x512 or 4x4x512x256
    if scheme == "dcgan_truncated":
        assert np.abs(big).max() <= 0.04
        np.testing.assert_allclose(big.std(), 0.02 * 0.87962566, rtol=0.01)
    else:
        assert np.abs(big).max() > 0.08
        np.testing.assert_allclose(big.std(), 0.02, rtol=0.01)
    for net, layers in ARCHS[arch].nets().items():
        for i, layer in enumerate(layers):
            if isinstance(layer, BatchNorm):
                assert not w[f"{net}.{i}.b"].any()
                np.testing.assert_allclose(w[f"{net}.{i}.w"].mean(), 1.0, atol=0.02 * 4 / np.sqrt(layer.c))
                np.testing.assert_array_equal(w[f"{net}.{i}.var"], layer.var_start)


def test_he_normal_and_every_scheme_draws_every_arch():
    w = init_weights(ARCHS["mlp"], 0, "he_normal")
    np.testing.assert_allclose(w["D.0.w"].std(), np.sqrt(2 / 784), rtol=0.01)
    assert not w["D.0.b"].any()
    for arch in ARCHS.values():
        for scheme in INITS:
            assert all(np.all(np.isfinite(v)) for v in init_weights(arch, 0, scheme).values())
