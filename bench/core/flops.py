"""Analytic FLOP count of one training step (one generator iteration), matmuls only.

A Dense layer (B, I) @ (I, O) costs 2BIO forward, 2BIO for dW and 2BIO for dX (skipped
where nothing upstream needs a gradient). The gradient penalty runs D forward, then the
input-gradient chain (one dX matmul per layer), then differentiates that chain for the
parameters: a dW and a d(upstream gradient) matmul per layer, i.e. 8BIO per layer in
all. Elementwise work is left out: on these shapes it is a few per cent.
"""

from __future__ import annotations

from bench.core.nets import Arch, Conv, ConvT, Dense
from bench.core.spec import Algo


def _dense_macs(layers) -> list[int]:
    return [lay.n_in * lay.n_out for lay in layers if isinstance(lay, Dense)]


def step_flops(arch: Arch, algo: Algo, batch: int, n_critic: int | None = None) -> float | None:
    """None for convolutional archs, which this count does not cover yet."""
    if any(isinstance(layer, Conv | ConvT) for net in arch.nets().values() for layer in net):
        return None
    g, d = _dense_macs(arch.generator), _dense_macs(arch.critic)
    f = 2.0 * batch  # FLOPs per multiply-accumulate, per sample
    fwd_g, fwd_d = f * sum(g), f * sum(d)
    # D on a batch with parameter gradients: forward, dW everywhere, dX above the first layer.
    d_train = fwd_d + fwd_d + f * sum(d[1:])
    critic = fwd_g + 2 * d_train  # G(z) without gradients, D on real and on fake
    if algo.gp_lambda:
        critic += 4 * fwd_d
    # Generator: G forward, D forward, dX through all of D, then G's dW and dX above layer one.
    generator = fwd_g + fwd_d + fwd_d + fwd_g + f * sum(g[1:])
    return (n_critic or algo.n_critic) * critic + generator
