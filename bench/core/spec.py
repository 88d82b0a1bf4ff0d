"""The frozen description of one training setup; backends never pick a default.

Every hyperparameter a backend needs is a field here, with the papers' values as
defaults. A RunSpec round-trips through JSON so it can cross a process boundary.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Literal

OptName = Literal["adam", "rmsprop"]
LossName = Literal["bce", "wasserstein"]


@dataclass(frozen=True)
class Optimizer:
    """Update rules, written out so every backend applies exactly these (see bench.core.optim).

    adam:    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
             p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)        (PyTorch form)
    rmsprop: v = alpha v + (1-alpha) g^2;  p -= lr * g / (sqrt(v) + eps)  (PyTorch form)
    """

    name: OptName
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    alpha: float = 0.99
    eps: float = 1e-8

    def slots(self) -> tuple[str, ...]:
        return ("m", "v") if self.name == "adam" else ("v",)


@dataclass(frozen=True)
class Algo:
    """A GAN objective plus its training schedule.

    n_critic_warm / warm_steps / warm_every reproduce Arjovsky's schedule: n_critic_warm
    critic updates for the first warm_steps generator iterations and every warm_every-th.
    """

    name: str
    loss: LossName
    n_critic: int
    d_opt: Optimizer
    g_opt: Optimizer
    clip: float | None = None  # clip critic weights to +-clip
    clip_before_update: bool = False  # seed 004 clamps before the critic update
    gp_lambda: float | None = None  # gradient-penalty weight
    n_critic_warm: int | None = None
    warm_steps: int = 0
    warm_every: int = 0

    def critic_updates(self, step: int) -> int:
        """Critic updates in generator iteration `step` (0-based)."""
        if self.n_critic_warm is not None and (
            step < self.warm_steps or (self.warm_every and step % self.warm_every == 0)
        ):
            return self.n_critic_warm
        return self.n_critic


GAN = Algo("gan", "bce", 1, Optimizer("adam", 1e-3), Optimizer("adam", 1e-3))
WGAN = Algo(
    "wgan", "wasserstein", 5, Optimizer("rmsprop", 5e-5), Optimizer("rmsprop", 5e-5), clip=0.01
)
WGAN_GP = Algo(
    "wgan_gp",
    "wasserstein",
    5,
    Optimizer("adam", 1e-4, 0.5, 0.9),
    Optimizer("adam", 1e-4, 0.5, 0.9),
    gp_lambda=10.0,
)
ALGOS: dict[str, Algo] = {a.name: a for a in (GAN, WGAN, WGAN_GP)}


@dataclass(frozen=True)
class RunSpec:
    """Everything one backend process needs to train one setup."""

    algo: Algo
    arch: str
    dataset: str
    batch_size: int
    steps: int
    seed: int = 0
    warmup: int = 10  # generator iterations excluded from step-time statistics
    block: int = 10  # generator iterations per timed call into the backend
    data_dir: str | None = None
    # fp32; tf32 matmuls/convs on GPUs that have them; fp64 everywhere (parity checks: in
    # float64 the backends agree to ~1e-12, so any float32 difference is rounding)
    precision: Literal["fp32", "tf32", "fp64"] = "fp32"

    @property
    def float_dtype(self) -> str:
        return "float64" if self.precision == "fp64" else "float32"
    eval_every: int = 0  # also sample for quality metrics every N steps (0: only at the end)
    eval_samples: int = 1000  # generated samples per quality evaluation
    grid_samples: int = 64  # fixed-z samples saved for the picture grid
    checkpoint_every: int = 0  # write a resumable checkpoint every N steps (0: never)
    init: str | None = None  # weight init scheme (bench.core.nets.Init); None: the arch's own
    preset: str | None = None  # the preset this spec came from, for the record
    # Data-parallel replicas, each framework's own engine (DDP, MirroredStrategy, a JAX mesh).
    # batch_size stays the global batch and the input stream is unchanged, so any device
    # count computes the one-device losses; each replica takes batch_size // devices rows.
    devices: int = 1

    def __post_init__(self) -> None:
        if self.devices < 1 or self.batch_size % self.devices:
            raise ValueError(f"batch size {self.batch_size} does not split over {self.devices} devices")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        d = json.loads(text)
        a = d.pop("algo")
        algo = Algo(**{**a, "d_opt": Optimizer(**a["d_opt"]), "g_opt": Optimizer(**a["g_opt"])})
        return cls(algo=algo, **d)
