"""The parity horizon: for how many steps a float32 run still computes the float64 run's numbers.

Every run of one setup starts from the same NumPy init and reads the same input stream, so
the only thing between a float32 run and the float64 reference is rounding, and rounding
grows: in a GAN the critic and generator feed each other's errors back. Each run gets two
distances from the reference, per step:

  loss     the larger of |d_loss - ref| and |g_loss - ref|, each over its scale: the
           reference's mean |value| over the trailing WINDOW steps (a loss that crosses zero
           would make a plain relative difference meaningless there)
  weights  ||theta - theta_ref|| / ||theta_ref|| over every parameter of both nets, at the
           steps the runs saved their weights (--snapshot-every)

and the step at which each first reaches 1e-4, 1e-3, 1e-2 and 1e-1. The rounding-only
baseline is a set of runs that differ from the reference by rounding alone: the reference's
own code in float32, as is and with its initial weights moved one or two ulps. Rounding
reaches a threshold sooner in one such run than in another (a ReLU's kink crossed one way
or the other, an adaptive optimizer turning a noise-sized gradient into a full step), so a
run is judged against the earliest of them: one that crosses a threshold more than EARLY
times sooner leaves the baseline early; the verdict names the quantity, threshold and steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

THRESHOLDS = (1e-4, 1e-3, 1e-2, 1e-1)
LOSSES = ("d_loss", "g_loss")
QUANTITIES = ("loss", "weights")
WINDOW = 20  # steps of the reference's trailing mean |value| that scale a loss distance
EARLY = 2.0  # a crossing this many times sooner than the baseline's leaves it


@dataclass(frozen=True)
class Trace:
    """One run's distances from the reference: per quantity, (steps, distances)."""

    label: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]]


def losses(run_dir: Path, tag: str) -> dict[str, np.ndarray]:
    """The run's per-step metrics as the worker saved them (float64, unrounded)."""
    with np.load(Path(run_dir) / "raw" / f"{tag}.npz") as z:
        return {k: z[k] for k in z.files}


def snapshot_steps(run_dir: Path, tag: str) -> list[int]:
    folder = Path(run_dir) / "raw" / f"{tag}.snapshots"
    return sorted(int(f.stem) for f in folder.glob("*.npz")) if folder.is_dir() else []


def _weights(run_dir: Path, tag: str, step: int) -> np.ndarray:
    with np.load(Path(run_dir) / "raw" / f"{tag}.snapshots" / f"{step:07d}.npz") as z:
        return np.concatenate([z[k].astype(np.float64).ravel() for k in sorted(z.files)])


def trailing_scale(ref: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean |ref| over each step's trailing window (itself included), never below the smallest
    normal float64, so that a distance is always defined."""
    a = np.abs(np.asarray(ref, dtype=np.float64))
    c = np.concatenate([[0.0], np.cumsum(a)])
    idx = np.arange(len(a))
    lo = np.maximum(0, idx + 1 - window)
    return np.maximum((c[idx + 1] - c[lo]) / (idx + 1 - lo), np.finfo(np.float64).tiny)


def loss_distance(run: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(steps, distance) over the steps both runs reached."""
    n = min(len(run["step"]), len(ref["step"]))
    d = [np.abs(run[k][:n] - ref[k][:n]) / trailing_scale(ref[k][:n]) for k in LOSSES]
    return np.asarray(ref["step"][:n]), np.max(d, axis=0)


def weight_distance(run_dir: Path, tag: str, ref_dir: Path, ref_tag: str) -> tuple[np.ndarray, np.ndarray]:
    steps = sorted(set(snapshot_steps(run_dir, tag)) & set(snapshot_steps(ref_dir, ref_tag)))
    dist = []
    for s in steps:
        r = _weights(ref_dir, ref_tag, s)
        dist.append(np.linalg.norm(_weights(run_dir, tag, s) - r) / np.linalg.norm(r))
    return np.asarray(steps, dtype=np.int64), np.asarray(dist)


def trace(label: str, run_dir: Path, tag: str, ref_dir: Path, ref_tag: str) -> Trace:
    return Trace(label, {"loss": loss_distance(losses(run_dir, tag), losses(ref_dir, ref_tag)),
                         "weights": weight_distance(run_dir, tag, ref_dir, ref_tag)})


def crossing(steps: np.ndarray, dist: np.ndarray, threshold: float) -> int | None:
    """The first step whose distance reaches threshold; None if none within the run."""
    hit = np.flatnonzero(np.asarray(dist) >= threshold)
    return int(steps[hit[0]]) if hit.size else None


def crossings(t: Trace) -> dict[tuple[str, float], int | None]:
    return {(q, th): crossing(*t.curves[q], th) for q in QUANTITIES for th in THRESHOLDS}


def leaves(run: Trace, baselines: Sequence[Trace], horizon: int) -> list[str]:
    """Where run crosses a threshold more than EARLY times sooner than the earliest baseline run
    does (a threshold no baseline reaches counts as reached just after horizon), soonest first."""
    out = []
    mine, base = crossings(run), [crossings(b) for b in baselines]
    for (q, th), step in mine.items():
        b = min((c[(q, th)] for c in base if c[(q, th)] is not None), default=None)
        if step is not None and EARLY * step < (b if b is not None else horizon + 1):
            out.append((step, f"{q} reaches {th:.0e} at step {step} (baseline: "
                              f"{b if b is not None else f'not within {horizon}'})"))
    return [text for _, text in sorted(out)]


def verdict(run: Trace, baselines: Sequence[Trace], horizon: int) -> str:
    early = leaves(run, baselines, horizon)
    return f"leaves the baseline early: {'; '.join(early)}" if early else "tracks the rounding baseline"
