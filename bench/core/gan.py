"""The GAN, WGAN and WGAN-GP objectives, written once over a tiny ops namespace.

A backend passes an object with mean, softplus, sigmoid, sqrt and sum_sq_rows (sum of
squares over every axis but the batch axis); arithmetic uses operators. Signs follow
the papers: the critic minimises D(fake) - D(real); the Wasserstein estimate reported
is E[D(real)] - E[D(fake)].
"""

from __future__ import annotations

from typing import Any, Protocol

from bench.core.spec import Algo

Array = Any

# Per-step metrics a training step reports; an algorithm without one leaves it out.
METRICS = ("d_loss", "g_loss", "w_estimate", "gp", "d_real", "d_fake")


class Ops(Protocol):
    def mean(self, x: Array) -> Array: ...
    def softplus(self, x: Array) -> Array: ...
    def sigmoid(self, x: Array) -> Array: ...
    def sqrt(self, x: Array) -> Array: ...
    def sum_sq_rows(self, x: Array) -> Array: ...


def critic_loss(algo: Algo, ops: Ops, d_real: Array, d_fake: Array) -> dict[str, Array]:
    """Critic loss without the penalty, plus the metrics every backend reports."""
    if algo.loss == "bce":  # BCE(D(real), 1) + BCE(D(fake), 0) on logits
        loss = ops.mean(ops.softplus(-d_real)) + ops.mean(ops.softplus(d_fake))
        return {
            "d_loss": loss,
            "d_real": ops.mean(ops.sigmoid(d_real)),
            "d_fake": ops.mean(ops.sigmoid(d_fake)),
        }
    real, fake = ops.mean(d_real), ops.mean(d_fake)
    return {"d_loss": fake - real, "w_estimate": real - fake, "d_real": real, "d_fake": fake}


def generator_loss(algo: Algo, ops: Ops, d_fake: Array) -> Array:
    if algo.loss == "bce":  # non-saturating: BCE(D(G(z)), 1)
        return ops.mean(ops.softplus(-d_fake))
    return -ops.mean(d_fake)


def interpolate(alpha: Array, real: Array, fake: Array) -> Array:
    """x_hat for the gradient penalty; alpha is U[0,1], one per sample, pre-broadcast."""
    return alpha * real + (1 - alpha) * fake


def gradient_penalty(ops: Ops, grad_x: Array) -> Array:
    """mean((||grad_x D(x_hat)||_2 - 1)^2), per-sample norm over all non-batch axes."""
    return ops.mean((ops.sqrt(ops.sum_sq_rows(grad_x)) - 1.0) ** 2)
