"""The frozen description of one training setup; backends never pick a default.

Every hyperparameter a backend needs is a field here, with the papers' values as
defaults. A RunSpec round-trips through JSON so it can cross a process boundary.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Literal

OptName = Literal["adam", "rmsprop", "adam_tf1", "rmsprop_tf1"]
LossName = Literal["bce", "wasserstein"]


@dataclass(frozen=True)
class Optimizer:
    """Update rules, written out so every backend applies exactly these (see bench.core.optim).

    adam:        m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
                 p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)          (PyTorch's)
    adam_tf1:    the same m, v;  p -= lr sqrt(1-b2^t) / (1-b1^t) * m / (sqrt(v) + eps)
                 (tf.train.AdamOptimizer's and Keras's "epsilon hat" form)
    rmsprop:     v = alpha v + (1-alpha) g^2, v from 0;  p -= lr * g / (sqrt(v) + eps)  (PyTorch's)
    rmsprop_tf1: the same v, but from 1;  p -= lr * g / sqrt(v + eps)
                 (tf.train.RMSPropOptimizer with momentum 0; alpha is its decay)
    """

    name: OptName
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    alpha: float = 0.99
    eps: float = 1e-8

    @property
    def is_adam(self) -> bool:
        return self.name.startswith("adam")

    def slots(self) -> tuple[str, ...]:
        return ("m", "v") if self.is_adam else ("v",)

    def slot_start(self, slot: str) -> float:
        """Every slot starts at 0 but TF1 RMSProp's accumulator, which starts at 1."""
        return 1.0 if (self.name, slot) == ("rmsprop_tf1", "v") else 0.0


@dataclass(frozen=True)
class Algo:
    """A GAN objective plus its training schedule.

    n_critic_warm / warm_steps / warm_every / count_from reproduce Arjovsky's and seed 003's
    schedules: generator iteration `step` (0-based) is the source's iteration i = step +
    count_from, which takes n_critic_warm critic updates if i < warm_steps or i is a multiple
    of warm_every. generator_first is seed 000's loop, which updates G at critic index
    i % n_critic == n_critic - 1 before that critic update: the same sequence as critic
    updates then G, but with one critic update fewer before the first generator update.
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
    count_from: int = 0  # the source's number of the first generator iteration
    generator_first: bool = False

    def _warm(self, i: int) -> bool:
        periodic = bool(self.warm_every) and i % self.warm_every == 0
        return self.n_critic_warm is not None and (i < self.warm_steps or periodic)

    def critic_updates(self, step: int) -> int:
        """Critic updates in generator iteration `step` (0-based)."""
        n = self.n_critic_warm if self._warm(step + self.count_from) else self.n_critic
        assert n is not None
        return n - 1 if self.generator_first and step == 0 else n

    def updates_before(self, step: int) -> int:
        """Critic updates in generator iterations 0 .. step-1: the sum of critic_updates, counted."""
        lo, hi = self.count_from, self.count_from + step

        def multiples(a: int, b: int) -> int:  # multiples of warm_every in [a, b)
            return (b - 1) // self.warm_every - (a - 1) // self.warm_every if self.warm_every and b > a else 0

        warm = 0
        if self.n_critic_warm is not None:
            early = min(hi, self.warm_steps)
            warm = max(0, early - lo) + multiples(max(lo, self.warm_steps), hi)
        extra = (self.n_critic_warm or 0) - self.n_critic
        return step * self.n_critic + warm * extra - int(self.generator_first and step > 0)


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
    # The parity horizon's instruments: the weights saved every N steps (0: never), and every
    # initial weight moved this many float32 ulps up, a perturbation at the level of rounding.
    snapshot_every: int = 0
    perturb_ulps: int = 0
    init: str | None = None  # weight init scheme (bench.core.nets.INITS); None: the arch's own
    z_dist: Literal["normal", "uniform"] = "normal"  # z ~ N(0, 1) or U(-1, 1), every z of the stream
    # "independent": each batch drawn with replacement; "epochs": the data walked in epochs, each a
    # permutation drawn from the seeded stream, cut into n_data // batch_size full batches
    batches: Literal["independent", "epochs"] = "independent"
    sample_running_stats: bool = False  # sample() normalises with batch-norm running statistics
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
