"""The one input stream every backend consumes.

Step s draws from its own NumPy generator seeded by (seed, s), so any block of steps is
reproducible on its own (resume needs only the step number) and every backend sees the
same real-batch indices, z and alpha. All of it is made on the host, outside the clock.
Real batches are drawn independently with replacement, or (epochs) read in order from
epoch e's permutation, itself seeded by (seed, e): critic update j of the run, counted by
Algo.updates_before, takes batch j of the concatenated epochs' full batches.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from bench.core.spec import Algo, RunSpec

TRAIN, SAMPLE, EVAL, INTERP, EPOCH = 0, 1, 4, 5, 6  # stream tags, kept apart from init (2) and data (3)


@dataclass(frozen=True)
class Block:
    """K consecutive generator iterations that share one critic-update count C."""

    start: int
    idx: np.ndarray  # (K, C, B) int32: real-batch indices, one batch per critic update
    z_d: np.ndarray  # (K, C, B, Z) float32: z for each critic update
    alpha: np.ndarray  # (K, C, B, 1, ...) float32: GP mixing weight, one per sample
    z_g: np.ndarray  # (K, B, Z) float32: z for the generator update

    @property
    def steps(self) -> int:
        return self.idx.shape[0]

    @property
    def n_critic(self) -> int:
        return self.idx.shape[1]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"idx": self.idx, "z_d": self.z_d, "alpha": self.alpha, "z_g": self.z_g}


def replica_rows(arrays: dict[str, np.ndarray], replica: int, replicas: int) -> dict[str, np.ndarray]:
    """Replica r of N's share of Block.arrays(): rows [r B/N, (r+1) B/N) of every batch (the batch
    axis follows K, C in idx, z_d and alpha, and K in z_g). RunSpec guarantees N divides B."""
    b = arrays["z_g"].shape[1] // replicas
    rows = slice(replica * b, (replica + 1) * b)
    return {k: np.ascontiguousarray(v[:, rows] if k == "z_g" else v[:, :, rows]) for k, v in arrays.items()}


@dataclass(frozen=True)
class InputStream:
    seed: int
    algo: Algo
    batch_size: int
    z_dim: int
    x_rank: int  # rank of one sample, so alpha broadcasts without a reshape
    n_data: int
    z_dist: str = "normal"  # RunSpec.z_dist
    batches: str = "independent"  # RunSpec.batches

    @classmethod
    def for_spec(cls, spec: RunSpec, z_dim: int, x_rank: int, n_data: int) -> InputStream:
        return cls(spec.seed, spec.algo, spec.batch_size, z_dim, x_rank, n_data, spec.z_dist, spec.batches)

    def __post_init__(self) -> None:
        if self.batches == "epochs" and self.n_data < self.batch_size:
            raise ValueError(f"an epoch of {self.n_data} samples holds no full batch of {self.batch_size}")

    def _z(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.z_dist == "uniform":
            return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        return rng.standard_normal(shape, dtype=np.float32)

    def _epoch_batches(self, first: int, count: int) -> np.ndarray:
        """Batches first .. first+count-1 of the run's epochs, (count, B)."""
        per_epoch = self.n_data // self.batch_size
        rows = [_permutation(self.seed, e, self.n_data)[r * self.batch_size:(r + 1) * self.batch_size]
                for e, r in (divmod(j, per_epoch) for j in range(first, first + count))]
        return np.stack(rows).astype(np.int32)

    def step(self, s: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng([TRAIN, self.seed, s])
        c, b = self.algo.critic_updates(s), self.batch_size
        if self.batches == "epochs":
            idx = self._epoch_batches(self.algo.updates_before(s), c)
        else:
            idx = rng.integers(0, self.n_data, size=(c, b), dtype=np.int64).astype(np.int32)
        z_d = self._z(rng, (c, b, self.z_dim))
        alpha = rng.uniform(size=(c, b) + (1,) * self.x_rank).astype(np.float32)
        z_g = self._z(rng, (b, self.z_dim))
        return idx, z_d, alpha, z_g

    def block(self, start: int, stop: int) -> Block:
        parts = [self.step(s) for s in range(start, stop)]
        return Block(start, *(np.stack(p) for p in zip(*parts, strict=True)))

    def blocks(self, start: int, stop: int, size: int, cuts: tuple[int, ...] = ()) -> Iterator[Block]:
        """Blocks of at most `size` steps, cut wherever the critic-update count changes and at
        every multiple of each non-zero period in `cuts` (where the worker evaluates or saves)."""
        s = start
        while s < stop:
            e, c = s + 1, self.algo.critic_updates(s)
            while (e < min(stop, s + size) and self.algo.critic_updates(e) == c
                   and not any(p and e % p == 0 for p in cuts)):
                e += 1
            yield self.block(s, e)
            s = e

    def fixed_z(self, n: int) -> np.ndarray:
        """z for the sample grids, the same in every backend and run with this seed."""
        return self._z(np.random.default_rng([SAMPLE, self.seed]), (n, self.z_dim))

    def eval_z(self, n: int) -> np.ndarray:
        """z for the quality metrics, apart from the grid's so a grid is not what is scored."""
        return self._z(np.random.default_rng([EVAL, self.seed]), (n, self.z_dim))

    def interp_z(self, rows: int = 4, steps: int = 10) -> np.ndarray:
        """`rows` straight lines in z, `steps` points each, for the latent interpolation strip."""
        ends = self._z(np.random.default_rng([INTERP, self.seed]), (rows, 2, self.z_dim))
        t = np.linspace(0, 1, steps, dtype=np.float32)[None, :, None]
        return ((1 - t) * ends[:, :1] + t * ends[:, 1:]).reshape(rows * steps, self.z_dim)


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """Epoch `epoch`'s order of the n samples (a step's critic updates span an epoch or two)."""
    return np.random.default_rng([EPOCH, seed, epoch]).permutation(n)
