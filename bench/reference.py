"""A NumPy float64 reference of the forward pass and the losses, for the tests.

It evaluates the same bench.gan formulas as the backends, at given weights and inputs,
with hand-written vector-Jacobian products for the gradient penalty's d D / d x.
"""

from __future__ import annotations

import numpy as np

from bench import gan
from bench.nets import Act, Arch, Dense, Layer
from bench.spec import Algo


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


def forward(layers: tuple[Layer, ...], w: dict, net: str, x: np.ndarray, keep: list | None = None):
    x = x.astype(np.float64)
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            x = x @ w[f"{net}.{i}.w"].astype(np.float64)
            if layer.bias:
                x = x + w[f"{net}.{i}.b"]
            if keep is not None:
                keep.append(None)
        else:
            x, dx = _act(layer, x)
            if keep is not None:
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
