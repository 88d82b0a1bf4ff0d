"""Architectures as framework-neutral layer lists, and their NumPy initial weights.

Canonical layout (what crosses the backend boundary): samples are NHWC (or flat); Dense w
is (in, out) so y = x @ w + b; Conv w is (kh, kw, in, out); ConvT w is (kh, kw, in, out)
with PyTorch's ConvTranspose2d meaning (torch weight (in, out, kh, kw) permuted), output
size (i - 1) * stride - 2 * pad + k + out_pad. Flatten and Reshape use NHWC order, so an
NCHW backend permutes. Names: "<net>.<layer index>.<w|b>" for trained parameters,
"<net>.<i>.mean|var" for batch-norm running statistics, net in {G, D}.

Batch norm always normalizes with the batch's statistics (biased variance), as the
papers' code trains and samples; running statistics follow PyTorch (momentum = weight of
the new batch, unbiased variance) and are updated once per training forward pass, in the
order G(z) for the critic, D(real), D(fake), [D(x_hat)], then G(z), D(G(z)); sampling
leaves them alone. The critic ends in a raw score (a logit for `gan`, whose sigmoid is in
the loss) unless its source puts an activation there.
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
class Conv:
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    pad: int = 0  # symmetric zero padding
    bias: bool = True


@dataclass(frozen=True)
class ConvT:
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    pad: int = 0
    out_pad: int = 0
    bias: bool = True


@dataclass(frozen=True)
class BatchNorm:
    c: int
    momentum: float = 0.1  # PyTorch meaning: weight of the new batch (Keras/flax: 1 - this)
    eps: float = 1e-5


@dataclass(frozen=True)
class Act:
    kind: ActKind
    slope: float = 0.0  # leaky_relu only; always explicit, frameworks disagree (GUIDE s.4)


@dataclass(frozen=True)
class Reshape:
    shape: tuple[int, ...]  # per sample, NHWC


@dataclass(frozen=True)
class Flatten:
    pass


@dataclass(frozen=True)
class Crop:
    h: int  # keep the top-left h x w (gan_mnist.py's 8x8 -> 7x7)
    w: int


Layer = Dense | Conv | ConvT | BatchNorm | Act | Reshape | Flatten | Crop
Init = Literal["uniform_fan_in", "dcgan", "he_normal"]


@dataclass(frozen=True)
class Arch:
    name: str
    z_dim: int
    x_shape: tuple[int, ...]  # one sample, canonical layout
    generator: tuple[Layer, ...]
    critic: tuple[Layer, ...]
    init: Init = "uniform_fan_in"
    x_range: tuple[float, float] | None = (0.0, 1.0)  # the generator's output range; None: data as is
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


LRELU = Act("leaky_relu", 0.2)
RELU = Act("relu")
DIM = 64  # gan_mnist.py and seed 000's dim_factor

ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("mlp", 100, (784,), _mlp([100, 128, 784], "sigmoid"), _mlp([784, 128, 1], None),
             source="seeds 001/002 (wiseodd): z 100 -> 128 ReLU -> 784 sigmoid; D 784 -> 128 ReLU -> 1"),
        Arch("toy_mlp", 2, (2,), _mlp([2, 512, 512, 512, 2], None), _mlp([2, 512, 512, 512, 1], None), x_range=None,
             source="gan_toy.py (Gulrajani et al.): 3 x Linear(512)+ReLU"),
        Arch(
            "dcgan28", 128, (28, 28, 1),
            (Dense(128, 4 * 4 * 4 * DIM), RELU, Reshape((4, 4, 4 * DIM)),
             ConvT(4 * DIM, 2 * DIM, 5, 2, 2, 1), RELU, Crop(7, 7),
             ConvT(2 * DIM, DIM, 5, 2, 2, 1), RELU,
             ConvT(DIM, 1, 5, 2, 2, 1), Act("sigmoid")),
            (Conv(1, DIM, 5, 2, 2), LRELU, Conv(DIM, 2 * DIM, 5, 2, 2), LRELU,
             Conv(2 * DIM, 4 * DIM, 5, 2, 2), LRELU, Flatten(), Dense(4 * 4 * 4 * DIM, 1)),
            source="gan_mnist.py (Gulrajani et al.), wgan-gp mode: no batch norm; TF 'SAME' stride-2 "
            "convs written as symmetric pad 2 (deviation: TF pads SAME asymmetrically)",
        ),
        Arch(
            "dcgan28_small", 100, (28, 28, 1),
            (Reshape((1, 1, 100)), ConvT(100, 64, 5, 2), BatchNorm(64), RELU, ConvT(64, 16, 4, 2), BatchNorm(16),
             RELU, ConvT(16, 4, 4, 2), BatchNorm(4), RELU, ConvT(4, 1, 3, 1), Act("tanh")),
            (Conv(1, 4, 3, 1), BatchNorm(4), LRELU, Conv(4, 16, 4, 2), BatchNorm(16), LRELU,
             Conv(16, 64, 4, 2), BatchNorm(64), LRELU, Conv(64, 256, 5, 2), Flatten(),
             Dense(256, 16), Dense(16, 1), Act("sigmoid")),
            x_range=(-1.0, 1.0),
            source="seed 004, layer for layer, including the critic's final sigmoid",
        ),
        Arch(
            "dcgan32", 128, (32, 32, 3),
            (Dense(128, 4 * DIM * 4 * 4), RELU, Reshape((4, 4, 4 * DIM)), ConvT(4 * DIM, 2 * DIM, 4, 2, 1), RELU,
             ConvT(2 * DIM, DIM, 4, 2, 1), RELU, ConvT(DIM, 3, 4, 2, 1), Act("tanh")),
            (Conv(3, DIM, 5, 2, 2), LRELU, Conv(DIM, 2 * DIM, 5, 2, 2), LRELU, Conv(2 * DIM, 4 * DIM, 5, 2, 2), LRELU,
             Flatten(), Dense(4 * DIM * 4 * 4, 1)),
            x_range=(-1.0, 1.0),
            source="seed 000's repo (shariqiqbal2810/WGAN-GP-PyTorch utils.py): ZeroPad2d(2) + 5x5 stride-2 convs, "
            "no normalization",
        ),
        Arch(
            "dcgan64", 100, (64, 64, 3),
            (Reshape((1, 1, 100)), ConvT(100, 512, 4, 1, 0, bias=False), BatchNorm(512), RELU,
             ConvT(512, 256, 4, 2, 1, bias=False), BatchNorm(256), RELU,
             ConvT(256, 128, 4, 2, 1, bias=False), BatchNorm(128), RELU,
             ConvT(128, 64, 4, 2, 1, bias=False), BatchNorm(64), RELU,
             ConvT(64, 3, 4, 2, 1, bias=False), Act("tanh")),
            (Conv(3, 64, 4, 2, 1, bias=False), LRELU,
             Conv(64, 128, 4, 2, 1, bias=False), BatchNorm(128), LRELU,
             Conv(128, 256, 4, 2, 1, bias=False), BatchNorm(256), LRELU,
             Conv(256, 512, 4, 2, 1, bias=False), BatchNorm(512), LRELU,
             Conv(512, 1, 4, 1, 0, bias=False), Flatten()),
            init="dcgan", x_range=(-1.0, 1.0),
            source="seed 003 and Arjovsky et al.'s DCGAN_D/DCGAN_G (64x64, no extra layers): no biases, "
            "batch norm in G and in the critic's inner layers",
        ),
    )
}


def layer_params(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Trained parameters of one layer, canonical shapes."""
    if isinstance(layer, Dense):
        return {"w": (layer.n_in, layer.n_out), **({"b": (layer.n_out,)} if layer.bias else {})}
    if isinstance(layer, Conv | ConvT):
        return {"w": (layer.k, layer.k, layer.c_in, layer.c_out), **({"b": (layer.c_out,)} if layer.bias else {})}
    if isinstance(layer, BatchNorm):
        return {"w": (layer.c,), "b": (layer.c,)}
    return {}


def param_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    return {f"{net}.{i}.{p}": shape for net, layers in arch.nets().items()
            for i, layer in enumerate(layers) for p, shape in layer_params(layer).items()}


def buffer_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """Batch-norm running statistics: state, not trained."""
    return {f"{net}.{i}.{s}": (layer.c,) for net, layers in arch.nets().items()
            for i, layer in enumerate(layers) if isinstance(layer, BatchNorm) for s in ("mean", "var")}


def _fan_in(layer: Layer) -> int:
    return layer.n_in if isinstance(layer, Dense) else layer.k * layer.k * layer.c_in


def init_weights(arch: Arch, seed: int, scheme: Init | None = None) -> dict[str, np.ndarray]:
    """Weights drawn in a fixed name order from one NumPy generator, by `scheme` (default:
    the arch's). uniform_fan_in: weights and biases ~ U(+-1/sqrt(fan_in)) (PyTorch's
    nn.Linear default; fan_in = k*k*c_in for convolutions); dcgan: weights ~ N(0, 0.02),
    biases 0 (Radford et al., Arjovsky et al.); he_normal: weights ~ N(0, 2/fan_in), biases
    0 (seed 001's xavier_init). Batch norm: scale 1 (dcgan: N(1, 0.02)), shift 0, running
    mean 0 and variance 1."""
    scheme = scheme or arch.init
    rng = np.random.default_rng([2, seed])
    out = {}
    for name, shape in param_shapes(arch).items():
        net, i, p = name.split(".")
        layer = arch.nets()[net][int(i)]
        if isinstance(layer, BatchNorm):
            w = rng.normal(1.0, 0.02, shape) if p == "w" and scheme == "dcgan" else np.full(shape, float(p == "w"))
        elif scheme == "dcgan":
            w = rng.normal(0.0, 0.02, shape) if p == "w" else np.zeros(shape)
        elif scheme == "he_normal":
            w = rng.normal(0.0, np.sqrt(2.0 / _fan_in(layer)), shape) if p == "w" else np.zeros(shape)
        else:
            bound = 1.0 / np.sqrt(_fan_in(layer))
            w = rng.uniform(-bound, bound, size=shape)
        out[name] = w.astype(np.float32)
    for name, shape in buffer_shapes(arch).items():
        out[name] = np.full(shape, float(name.endswith(".var")), dtype=np.float32)
    return out
