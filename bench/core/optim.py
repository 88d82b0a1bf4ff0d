"""The optimizer update rules of bench.core.spec.Optimizer, written once.

Works on any array type with arithmetic operators (NumPy, tf.Tensor, jax.Array); the
caller passes its framework's sqrt. The NumPy reference and explicit-update backends
call these; backends using torch.optim or optax are tested against them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.core.spec import Optimizer

Array = Any


def bias_corrections(o: Optimizer, t: int) -> tuple[float, float]:
    """(1 - beta1^t, 1 - beta2^t) in float64, as PyTorch forms them on the host. A caller whose t
    is a traced tensor must form them as accurately: in float32, 1 - 0.999 is 1.3e-5 off."""
    return 1 - o.beta1**t, 1 - o.beta2**t


def adam(o: Optimizer, p: Array, g: Array, m: Array, v: Array, bc: tuple[Array, Array], sqrt: Callable):
    """One Adam step, PyTorch's form; bc = bias_corrections(o, t) for the 1-based step t.
    Returns (p, m, v)."""
    m = o.beta1 * m + (1 - o.beta1) * g
    v = o.beta2 * v + (1 - o.beta2) * (g * g)
    m_hat = m / bc[0]
    v_hat = v / bc[1]
    return p - o.lr * m_hat / (sqrt(v_hat) + o.eps), m, v


def rmsprop(o: Optimizer, p: Array, g: Array, v: Array, sqrt: Callable):
    """One RMSprop step, PyTorch's form (eps outside the root, v starts at 0). Returns (p, v)."""
    v = o.alpha * v + (1 - o.alpha) * (g * g)
    return p - o.lr * g / (sqrt(v) + o.eps), v
