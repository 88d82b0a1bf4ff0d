"""A NumPy float64 reference of the forward pass and the losses, for the tests.

It evaluates the same bench.core.gan formulas as the backends, at given weights and inputs,
with hand-written vector-Jacobian products for the gradient penalty's d D / d x (dense
nets). `forward` covers every layer of bench.core.nets in the canonical NHWC layout, written
from the definitions (no framework), so each framework's layouts and defaults are
checked against it: conv as a sum over windows, conv-transpose as the scatter that
defines it, batch norm with PyTorch's running-statistics rule.
"""

from __future__ import annotations

import numpy as np

from bench.core import gan
from bench.core.nets import Act, Arch, BatchNorm, Conv, ConvT, Crop, Dense, Flatten, Layer, Reshape
from bench.core.spec import Algo


class Ops:
    mean = staticmethod(np.mean)
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def softplus(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    @staticmethod
    def sum_sq_rows(x):
        return (x * x).reshape(len(x), -1).sum(1)


def _act(layer: Act, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Activation and its elementwise derivative."""
    if layer.kind == "relu":
        return np.maximum(x, 0), (x > 0).astype(x.dtype)
    if layer.kind == "leaky_relu":
        return np.where(x > 0, x, layer.slope * x), np.where(x > 0, 1.0, layer.slope)
    if layer.kind == "sigmoid":
        s = Ops.sigmoid(x)
        return s, s * (1 - s)
    t = np.tanh(x)
    return t, 1 - t * t


def conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """y[n, i, j, o] = sum_{a, b, c} xpad[n, i*s + a, j*s + b, c] w[a, b, c, o]."""
    k = w.shape[0]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    ho, wo = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    y = np.zeros((len(x), ho, wo, w.shape[3]))
    for a in range(k):
        for b in range(k):
            y += xp[:, a : a + stride * ho : stride, b : b + stride * wo : stride] @ w[a, b]
    return y


def conv_transpose(x: np.ndarray, w: np.ndarray, stride: int, pad: int, out_pad: int) -> np.ndarray:
    """PyTorch's ConvTranspose2d: input pixel (i, j) adds x[i, j] @ w[a, b] at output
    (i*s + a - p, j*s + b - p); the output is (i-1)s - 2p + k + out_pad on a side."""
    n, h, wd, _ = x.shape
    k = w.shape[0]
    full = np.zeros((n, (h - 1) * stride + k + out_pad, (wd - 1) * stride + k + out_pad, w.shape[3]))
    for a in range(k):
        for b in range(k):
            full[:, a : a + stride * h : stride, b : b + stride * wd : stride] += x @ w[a, b]
    ho, wo = (h - 1) * stride - 2 * pad + k + out_pad, (wd - 1) * stride - 2 * pad + k + out_pad
    return full[:, pad : pad + ho, pad : pad + wo]


def batch_norm(layer: BatchNorm, x: np.ndarray, scale, shift, stats: dict | None, key: str,
               running: bool = False) -> np.ndarray:
    """Normalise with the batch's mean and biased variance (running: with stats' running ones);
    else, if stats is given, update its running mean and (unbiased unless the layer says not)
    variance there (PyTorch: momentum weighs the new batch)."""
    if running:
        assert stats is not None
        mean, var = (stats[f"{key}.{s}"].astype(np.float64) for s in ("mean", "var"))
        return (x - mean) / np.sqrt(var + layer.eps) * scale + shift
    axes = tuple(range(x.ndim - 1))
    mean, var = x.mean(axes), x.var(axes)
    if stats is not None:
        n = x.size // x.shape[-1]
        m = layer.momentum
        stats[key + ".mean"] = (1 - m) * stats[key + ".mean"] + m * mean
        stats[key + ".var"] = (1 - m) * stats[key + ".var"] + m * (var * n / (n - 1) if layer.unbiased else var)
    return (x - mean) / np.sqrt(var + layer.eps) * scale + shift


def forward(layers: tuple[Layer, ...], w: dict, net: str, x: np.ndarray, keep: list | None = None,
            stats: dict | None = None, running: bool = False):
    """net(x) in float64. keep collects activation derivatives (dense nets, for input_grad);
    stats, a dict of running statistics, is updated in place as a training pass would, or with
    running, read by batch norm in their place (sampling with the running statistics)."""
    x = x.astype(np.float64)
    for i, layer in enumerate(layers):
        key = f"{net}.{i}"
        p = {s: w[f"{key}.{s}"].astype(np.float64) for s in ("w", "b") if f"{key}.{s}" in w}
        dx = None
        if isinstance(layer, Dense):
            x = x @ p["w"] + p.get("b", 0.0)
        elif isinstance(layer, Conv):
            x = conv(x, p["w"], layer.stride, layer.pad) + p.get("b", 0.0)
        elif isinstance(layer, ConvT):
            x = conv_transpose(x, p["w"], layer.stride, layer.pad, layer.out_pad) + p.get("b", 0.0)
        elif isinstance(layer, BatchNorm):
            x = batch_norm(layer, x, p["w"], p["b"], stats, key, running)
        elif isinstance(layer, Reshape):
            x = x.reshape(len(x), *layer.shape)
        elif isinstance(layer, Flatten):
            x = x.reshape(len(x), -1)
        elif isinstance(layer, Crop):
            x = x[:, : layer.h, : layer.w]
        else:
            x, dx = _act(layer, x)
        if keep is not None:
            if not isinstance(layer, Dense | Act):
                raise NotImplementedError("input_grad covers dense nets only")
            keep.append(dx)
    return x


def input_grad(layers: tuple[Layer, ...], w: dict, net: str, x: np.ndarray) -> np.ndarray:
    """d sum(net(x)) / d x, by reverse-mode over the layer list."""
    derivs: list = []
    out = forward(layers, w, net, x, derivs)
    g = np.ones_like(out)
    for i in reversed(range(len(layers))):
        if isinstance(layers[i], Dense):
            g = g @ w[f"{net}.{i}.w"].astype(np.float64).T
        else:
            g = g * derivs[i]
    return g


def losses(algo: Algo, arch: Arch, w: dict, data: np.ndarray, block: dict, w_d: dict | None = None):
    """First critic update's losses of a block at weights w, and the generator loss with
    critic weights w_d (the critic after its updates; defaults to w)."""
    x_real = data[block["idx"][0, 0]]
    fake = forward(arch.generator, w, "G", block["z_d"][0, 0])
    m = gan.critic_loss(algo, Ops, forward(arch.critic, w, "D", x_real), forward(arch.critic, w, "D", fake))
    if algo.gp_lambda:
        x_hat = gan.interpolate(block["alpha"][0, 0].astype(np.float64), x_real, fake)
        m["gp"] = gan.gradient_penalty(Ops, input_grad(arch.critic, w, "D", x_hat))
        m["d_loss"] = m["d_loss"] + algo.gp_lambda * m["gp"]
    g_fake = forward(arch.generator, w, "G", block["z_g"][0])
    m["g_loss"] = gan.generator_loss(algo, Ops, forward(arch.critic, w_d or w, "D", g_fake))
    return {k: float(v) for k, v in m.items()}
