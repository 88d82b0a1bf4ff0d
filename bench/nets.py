"""Architectures as framework-neutral layer lists, and their NumPy initial weights.

Canonical weight layout (what crosses the backend boundary): Dense w is (in, out) so
that y = x @ w + b. Parameter names are "<net>.<layer index>.<w|b>", net in {G, D}.
The critic always ends in a raw score (a logit for `gan`, whose sigmoid lives in the
loss for numerical stability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ActKind = Literal["relu", "sigmoid", "tanh", "leaky_relu"]


@dataclass(frozen=True)
class Dense:
    n_in: int
    n_out: int
    bias: bool = True


@dataclass(frozen=True)
class Act:
    kind: ActKind
    slope: float = 0.0  # leaky_relu only; always explicit, frameworks disagree (GUIDE s.4)


Layer = Dense | Act


@dataclass(frozen=True)
class Arch:
    name: str
    z_dim: int
    x_shape: tuple[int, ...]  # one sample, canonical layout
    generator: tuple[Layer, ...]
    critic: tuple[Layer, ...]
    init: Literal["uniform_fan_in"] = "uniform_fan_in"
    source: str = ""

    def nets(self) -> dict[str, tuple[Layer, ...]]:
        return {"G": self.generator, "D": self.critic}


def _mlp(sizes: list[int], out_act: ActKind | None) -> tuple[Layer, ...]:
    layers: list[Layer] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(a, b))
        if i < len(sizes) - 2:
            layers.append(Act("relu"))
    if out_act:
        layers.append(Act(out_act))
    return tuple(layers)


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch(
            "mlp",
            z_dim=100,
            x_shape=(784,),
            generator=_mlp([100, 128, 784], "sigmoid"),
            critic=_mlp([784, 128, 1], None),
            source="seeds 001/002 (wiseodd): z 100 -> 128 ReLU -> 784 sigmoid; D 784 -> 128 -> 1",
        ),
        Arch(
            "toy_mlp",
            z_dim=2,
            x_shape=(2,),
            generator=_mlp([2, 512, 512, 512, 2], None),
            critic=_mlp([2, 512, 512, 512, 1], None),
            source="gan_toy.py (Gulrajani et al.): 3 x Linear(512)+ReLU",
        ),
    )
}


def param_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for net, layers in arch.nets().items():
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense):
                shapes[f"{net}.{i}.w"] = (layer.n_in, layer.n_out)
                if layer.bias:
                    shapes[f"{net}.{i}.b"] = (layer.n_out,)
    return shapes


def init_weights(arch: Arch, seed: int) -> dict[str, np.ndarray]:
    """One documented scheme: every weight and bias ~ U(-1/sqrt(fan_in), +1/sqrt(fan_in)),
    PyTorch's nn.Linear default, drawn in a fixed name order from one NumPy generator."""
    rng = np.random.default_rng([2, seed])
    out = {}
    for name, shape in param_shapes(arch).items():
        net, i, _ = name.split(".")
        fan_in = arch.nets()[net][int(i)].n_in
        bound = 1.0 / np.sqrt(fan_in)
        out[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
    return out
