"""Benchmark suites (--suite NAME): many setups run with every mode into one timings.csv.

A suite lists its setups in priority order, the most informative first, because --budget
runs them in that order and leaves out what no longer fits. Each setup runs in every mode
of every backend before the next one starts (the modes come from backends.REGISTRY).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.defaults import DENSE_ARCHS
from bench.core.spec import ALGOS


@dataclass(frozen=True)
class Setup:
    algo: str
    arch: str
    batch_size: int
    dataset: str | None = None  # None: the arch's default data set


@dataclass(frozen=True)
class Suite:
    setups: tuple[Setup, ...]
    steps: int  # each setup's generator iterations (--steps overrides)
    warmup: int  # at most this many left out of the timing (a smaller --warmup wins)
    about: str  # one line for --help


BATCHES = (64, 256, 1024)
# The GPU suite's data: the embedded MNIST for mlp; for the 32x32 and 64x64 RGB nets,
# uniform noise in their shape, since no SVHN or CelebA can be carried to a GPU machine
# and a step's time does not depend on the pixels (their quality rows mean nothing).
GPU_DATA = {"mlp": "mnist", "dcgan32": "noise32", "dcgan64": "noise64"}
# Most informative first: WGAN-GP (the main job) before WGAN before GAN; within an
# algorithm the smallest batch (launch-bound, where frameworks and modes differ most)
# before the largest before the middle one; within a batch each net in turn.
GPU_ORDER = (64, 1024, 256)

SUITES = {
    "standard": Suite(tuple(Setup(a, r, b) for a in ALGOS for r in DENSE_ARCHS for b in BATCHES), 40, 10,
                      f"every algo x (mlp, toy_mlp) x batch {BATCHES}"),
    # The conv nets on the embedded MNIST with their sources' algorithms: a GPU's suite (on a
    # 2-core CPU one dcgan28 WGAN-GP step at batch 1024 is ~4 TFLOP, most of a minute).
    "conv": Suite(tuple(Setup(a, r, b) for a, r in (("wgan_gp", "dcgan28"), ("wgan", "dcgan28_small"))
                        for b in BATCHES), 40, 10,
                  "dcgan28 WGAN-GP and dcgan28_small WGAN on MNIST x those batches (GPU-sized)"),
    "gpu": Suite(tuple(Setup(a, r, b, GPU_DATA[r]) for a in ("wgan_gp", "wgan", "gan") for b in GPU_ORDER
                       for r in GPU_DATA), 40, 10,
                 "WGAN-GP, WGAN, GAN x (mlp on MNIST, dcgan32 and dcgan64 on noise) x batch 64, 1024, 256, "
                 "in that priority order"),
}
