"""The optimizer update rules of bench.core.spec.Optimizer, written once.

Works on any array type with arithmetic operators (NumPy, tf.Tensor, jax.Array, torch.Tensor);
the caller passes its framework's sqrt. The NumPy reference and explicit-update backends
call these; backends using torch.optim or optax for PyTorch's forms are tested against them.
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


def _moments(o: Optimizer, g: Array, m: Array, v: Array) -> tuple[Array, Array]:
    return o.beta1 * m + (1 - o.beta1) * g, o.beta2 * v + (1 - o.beta2) * (g * g)


def adam(o: Optimizer, p: Array, g: Array, m: Array, v: Array, bc: tuple[Array, Array], sqrt: Callable):
    """One Adam step, PyTorch's form; bc = bias_corrections(o, t) for the 1-based step t.
    Returns (p, m, v)."""
    m, v = _moments(o, g, m, v)
    m_hat = m / bc[0]
    v_hat = v / bc[1]
    return p - o.lr * m_hat / (sqrt(v_hat) + o.eps), m, v


def adam_tf1(o: Optimizer, p: Array, g: Array, m: Array, v: Array, bc: tuple[Array, Array], sqrt: Callable):
    """One Adam step, TF1's (and Keras's) form: the bias corrections fold into the step size,
    so eps is added to the uncorrected sqrt(v) ("epsilon hat"). Returns (p, m, v)."""
    m, v = _moments(o, g, m, v)
    lr_t = o.lr * bc[1] ** 0.5 / bc[0]
    return p - lr_t * m / (sqrt(v) + o.eps), m, v


def rmsprop(o: Optimizer, p: Array, g: Array, v: Array, sqrt: Callable):
    """One RMSprop step, PyTorch's form (eps outside the root, v starts at 0). Returns (p, v)."""
    v = o.alpha * v + (1 - o.alpha) * (g * g)
    return p - o.lr * g / (sqrt(v) + o.eps), v


def rmsprop_tf1(o: Optimizer, p: Array, g: Array, v: Array, sqrt: Callable):
    """One RMSProp step, TF1's form with momentum 0 (eps inside the root; v starts at 1, which
    makes the first steps about lr * g where PyTorch's are about lr * sign(g) / sqrt(1 - alpha)).
    Returns (p, v)."""
    v = o.alpha * v + (1 - o.alpha) * (g * g)
    return p - o.lr * g / sqrt(v + o.eps), v


def update(o: Optimizer, p: Array, g: Array, slots: dict[str, Array], bc: tuple[Array, Array] | None,
           sqrt: Callable) -> tuple[Array, dict[str, Array]]:
    """One step of o's form: (p, slots) -> (new p, new slots); bc as for adam (None for RMSprop)."""
    if o.is_adam:
        assert bc is not None
        p, m, v = (adam if o.name == "adam" else adam_tf1)(o, p, g, slots["m"], slots["v"], bc, sqrt)
        return p, {"m": m, "v": v}
    p, v = (rmsprop if o.name == "rmsprop" else rmsprop_tf1)(o, p, g, slots["v"], sqrt)
    return p, {"v": v}
