"""Architectures as framework-neutral layer lists, and their NumPy initial weights.

Canonical layout (what crosses the backend boundary): samples are NHWC (or flat); Dense w
is (in, out) so y = x @ w + b; Conv w is (kh, kw, in, out); ConvT w is (kh, kw, in, out)
with PyTorch's ConvTranspose2d meaning (torch weight (in, out, kh, kw) permuted), output
size (i - 1) * stride - 2 * pad + k + out_pad. Flatten and Reshape use NHWC order, so an
NCHW backend permutes. Names: "<net>.<layer index>.<w|b>" for trained parameters,
"<net>.<i>.mean|var" for batch-norm running statistics, net in {G, D}.

Batch norm always trains with the batch's statistics (biased variance), as the papers'
code trains; running statistics follow PyTorch (momentum = weight of the new batch,
unbiased variance; `unbiased=False`: the biased one, as a TF ExponentialMovingAverage of
tf.nn.moments keeps it) and are updated once per training forward pass, in the order G(z)
for the critic, D(real), D(fake), [D(x_hat)], then G(z), D(G(z)). Sampling leaves them
alone, and normalises with the batch's statistics too unless the spec asks for the
running ones (RunSpec.sample_running_stats, seed 003). The critic ends in a raw score (a
logit for `gan`, whose sigmoid is in the loss) unless its source puts an activation there.
"""

from __future__ import annotations

from collections.abc import Callable
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
    unbiased: bool = True  # the running variance averages the unbiased batch variance (PyTorch)
    var_start: float = 1.0  # the running variance's start (a TF moving average of a tensor: 0)


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
Weighted = Dense | Conv | ConvT


def _fans(layer: Weighted, convt_fan_in_out: bool) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight as PyTorch's init computes them from its tensor: k*k*c_in
    and k*k*c_out for a conv; for a conv-transpose, whose torch weight is (in, out, kh, kw),
    k*k*c_out and k*k*c_in (PyTorch >= 1.0) or, convt_fan_in_out, k*k*c_in and k*k*c_out (the
    pre-1.0 _ConvNd.reset_parameters)."""
    if isinstance(layer, Dense):
        return layer.n_in, layer.n_out
    fan_in, fan_out = layer.k * layer.k * layer.c_in, layer.k * layer.k * layer.c_out
    return (fan_out, fan_in) if isinstance(layer, ConvT) and not convt_fan_in_out else (fan_in, fan_out)


def _tflib_fans(layer: Weighted) -> tuple[float, float]:
    """tflib (Gulrajani et al.): a conv's fan_out and a deconv's fan_in are divided by stride^2."""
    fan_in, fan_out = _fans(layer, convt_fan_in_out=True)
    if isinstance(layer, Conv):
        return fan_in, fan_out / layer.stride**2
    if isinstance(layer, ConvT):
        return fan_in / layer.stride**2, fan_out
    return fan_in, fan_out


Dist = tuple[Literal["uniform", "normal", "truncated_normal", "zeros"], float]  # (kind, bound or std)


def _glorot(layer: Weighted) -> Dist:
    fan_in, fan_out = _fans(layer, True)
    return "uniform", float(np.sqrt(6.0 / (fan_in + fan_out)))


@dataclass(frozen=True)
class InitScheme:
    """How one source initialises each layer kind. weight(layer, last) gives the weight's
    distribution (last: the net's final weighted layer); bias_like_weight: biases are drawn
    as the weight is (PyTorch's defaults), else 0; bn_scale_std: batch-norm scale ~ N(1, std)
    (0: exactly 1); batch-norm shift is always 0."""

    weight: Callable[[Weighted, bool], Dist]
    bias_like_weight: bool = False
    bn_scale_std: float = 0.0
    doc: str = ""


def _torch_default(convt_fan_in_out: bool) -> Callable[[Weighted, bool], Dist]:
    return lambda layer, last: ("uniform", float(1.0 / np.sqrt(_fans(layer, convt_fan_in_out)[0])))


INITS: dict[str, InitScheme] = {
    "torch": InitScheme(_torch_default(False), bias_like_weight=True,
                        doc="PyTorch >= 1.0's Linear/Conv2d/ConvTranspose2d defaults: weights and biases "
                        "U(+-1/sqrt(fan_in)), fan_in = k*k*c_out for ConvTranspose2d"),
    "uniform_fan_in": InitScheme(_torch_default(True), bias_like_weight=True,
                                 doc="PyTorch <= 0.3's defaults: as torch, but fan_in = k*k*c_in for "
                                 "ConvTranspose2d too"),
    "dcgan": InitScheme(lambda layer, last: ("normal", 0.02), bn_scale_std=0.02,
                        doc="Radford et al. / Arjovsky's weights_init: weights N(0, 0.02), batch-norm "
                        "scale N(1, 0.02), biases 0"),
    "dcgan_truncated": InitScheme(lambda layer, last: ("truncated_normal", 0.02), bn_scale_std=0.02,
                                  doc="TF's tf.truncated_normal(stddev=0.02) (redrawn beyond 2 std), "
                                  "batch-norm scale N(1, 0.02), biases 0 (seed 003)"),
    "he_normal": InitScheme(lambda layer, last: ("normal", float(np.sqrt(2.0 / _fans(layer, True)[0]))),
                            doc="N(0, 2/fan_in) weights, biases 0 (wiseodd's xavier_init)"),
    "he_glorot_out": InitScheme(lambda layer, last: _glorot(layer) if last
                                else ("uniform", float(np.sqrt(6.0 / _fans(layer, True)[0]))),
                                doc="tflib's ReLULayer 'he' init U(+-sqrt(6/fan_in)) for hidden layers, "
                                "Glorot U(+-sqrt(6/(fan_in+fan_out))) for the output layer, biases 0 "
                                "(gan_toy.py)"),
    "tflib": InitScheme(lambda layer, last: _glorot(layer) if isinstance(layer, Dense)
                        else ("uniform", float(np.sqrt(12.0 / sum(_tflib_fans(layer))))),
                        doc="tflib's Conv2D/Deconv2D he_init U(+-sqrt(3) sqrt(4/(fan_in+fan_out))) with "
                        "the stride rule, Linear Glorot, biases 0 (gan_mnist.py)"),
}
Init = str  # a key of INITS


@dataclass(frozen=True)
class Arch:
    name: str
    z_dim: int
    x_shape: tuple[int, ...]  # one sample, canonical layout
    generator: tuple[Layer, ...]
    critic: tuple[Layer, ...]
    init: Init = "torch"
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


def TF_BN(c: int) -> BatchNorm:  # noqa: N802 (read as a layer)
    """seed 003's batch norm: tf.nn.moments and an ExponentialMovingAverage(decay 0.9) of them,
    whose shadow of a tensor starts at 0."""
    return BatchNorm(c, momentum=0.1, eps=1e-5, unbiased=False, var_start=0.0)
DIM = 64  # gan_mnist.py and seed 000's dim_factor

ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("mlp", 100, (784,), _mlp([100, 128, 784], "sigmoid"), _mlp([784, 128, 1], None),
             source="seeds 001/002 (wiseodd): z 100 -> 128 ReLU -> 784 sigmoid; D 784 -> 128 ReLU -> 1"),
        Arch("mlp_z10", 10, (784,), _mlp([10, 128, 784], "sigmoid"), _mlp([784, 128, 1], None),
             source="seed 002's code (wiseodd wgan_pytorch.py / wgan_tensorflow.py): z_dim 10"),
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
            source="Arjovsky et al.'s DCGAN_D/DCGAN_G (64x64, no extra layers): no biases, "
            "batch norm in G and in the critic's inner layers",
        ),
        Arch(
            "dcgan64_tf", 100, (64, 64, 3),
            (Dense(100, 4 * 4 * 1024, bias=False), Reshape((4, 4, 1024)), TF_BN(1024), RELU,
             ConvT(1024, 512, 4, 2, 1, bias=False), TF_BN(512), RELU,
             ConvT(512, 256, 4, 2, 1, bias=False), TF_BN(256), RELU,
             ConvT(256, 128, 4, 2, 1, bias=False), TF_BN(128), RELU,
             ConvT(128, 3, 4, 2, 1, bias=False), Act("tanh")),
            (Conv(3, 64, 4, 2, 1, bias=False), LRELU,
             Conv(64, 128, 4, 2, 1, bias=False), TF_BN(128), LRELU,
             Conv(128, 256, 4, 2, 1, bias=False), TF_BN(256), LRELU,
             Conv(256, 512, 4, 2, 1, bias=False), TF_BN(512), LRELU,
             Conv(512, 1, 4, 2, 1, bias=False), Flatten()),
            init="dcgan_truncated", x_range=(-1.0, 1.0),
            source="seed 003 (shekkizh/WassersteinGAN.tensorflow GAN_models.py): G z -> Dense 4x4x1024 (no "
            "bias) -> 1024-512-256-128-3 by 4x4 stride-2 'SAME' conv-transposes (= pad 1); critic 4x4 "
            "stride-2 'SAME' convs, the last to a 2x2 map whose mean is the score (the losses' means "
            "over the flattened map are that); batch norm keeps a TF moving average (biased variance, "
            "from 0)",
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


def _draw(rng: np.random.Generator, dist: Dist, shape: tuple[int, ...]) -> np.ndarray:
    kind, a = dist
    if kind == "uniform":
        return rng.uniform(-a, a, size=shape)
    if kind == "zeros":
        return np.zeros(shape)
    w = rng.normal(0.0, a, shape)
    if kind == "truncated_normal":  # TF's: values beyond 2 std are drawn again
        while np.any(far := np.abs(w) > 2 * a):
            w[far] = rng.normal(0.0, a, int(far.sum()))
    return w


def init_weights(arch: Arch, seed: int, scheme: Init | None = None) -> dict[str, np.ndarray]:
    """Weights drawn in a fixed name order from one NumPy generator, by the INITS scheme
    `scheme` (default: the arch's). Running statistics start at mean 0 and the layer's
    var_start."""
    rule = INITS[scheme or arch.init]
    rng = np.random.default_rng([2, seed])
    last = {net: max(i for i, layer in enumerate(layers) if isinstance(layer, Dense | Conv | ConvT))
            for net, layers in arch.nets().items()}
    out = {}
    for name, shape in param_shapes(arch).items():
        net, i, p = name.split(".")
        layer = arch.nets()[net][int(i)]
        if isinstance(layer, BatchNorm):
            dist: Dist = ("normal", rule.bn_scale_std) if p == "w" and rule.bn_scale_std else ("zeros", 0.0)
            w = _draw(rng, dist, shape) + float(p == "w")
        elif p == "w" or rule.bias_like_weight:
            w = _draw(rng, rule.weight(layer, int(i) == last[net]), shape)
        else:
            w = np.zeros(shape)
        out[name] = w.astype(np.float32)
    for name, shape in buffer_shapes(arch).items():
        net, i, s = name.split(".")
        out[name] = np.full(shape, arch.nets()[net][int(i)].var_start if s == "var" else 0.0, dtype=np.float32)
    return out


def nudged(state: dict[str, np.ndarray], arch: Arch, ulps: int) -> dict[str, np.ndarray]:
    """state with every parameter (not the running statistics) moved `ulps` float32 units in
    the last place towards +inf: a change as small as one rounding, the horizon's baseline."""
    out = dict(state)
    for name in param_shapes(arch):
        w = np.asarray(state[name], dtype=np.float32)
        for _ in range(ulps):
            w = np.nextafter(w, np.float32(np.inf))
        out[name] = w
    return out
