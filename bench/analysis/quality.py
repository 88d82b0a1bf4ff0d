"""Sample-quality metrics, framework-neutral (NumPy, SciPy, POT), and the scoring of a run.

Toy 2-D sets (generated vs N fresh target points, N = the number generated, 1000 by default):
  w1       exact Wasserstein-1 distance (ot.emd2, Euclidean cost, uniform weights). Two
           independent 1000-point samples of the target itself are about 0.07 apart on
           8gaussians (0.10 on 25gaussians, 0.07 on swissroll): that is the floor.
  modes    8gaussians / 25gaussians only: modes covered. A sample belongs to a mode if it
           lies within 3 std of that mode's center; a mode is covered when at least
           COVER_SHARE (20%) of its fair share N/K of the samples belong to it (25 of 1000
           for 8 modes), the rule of PacGAN's "20 of 2500 for 25 modes", scaled.
  hq_frac  the same sets: fraction of samples within 3 std of any center (real data: 0.989,
           the mass of a 2-D Gaussian inside 3 std).
MNIST (classifier of bench.analysis.classifier, trained on the embedded set):
  fd          Frechet distance between Gaussians fitted to its 128-d features of the
              generated images and of the whole real data set.
  classes     digit classes covered: classes predicted (argmax) for at least COVER_SHARE
              of their fair share, i.e. for >= 2% of the samples.
  kl_uniform  KL(predicted-class histogram || uniform): 0 for balanced classes, log 10 = 2.30
              for a single class.
  The 1,000 held-out real images score fd 0.9, classes 10, kl_uniform 0.006; the 500 real
  zeros fd 154, classes 1, kl_uniform 2.25; uniform noise fd 272.
Image sets:
  swd      sliced Wasserstein-1 distance in pixel space, SWD_PROJECTIONS fixed random
           directions (seed SWD_SEED), against as many real images drawn with a fixed seed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from scipy.spatial.distance import cdist

from bench.analysis import classifier
from bench.core import data as datasets
from bench.core import schema
from bench.core.spec import RunSpec

QUALITY_COLUMNS = schema.names("quality.csv")  # the setup columns as in losses.csv, so a suite's setups stay apart
COVER_SHARE = 0.2  # a mode or class is covered with >= this fraction of its fair share of samples
RADIUS = 3.0  # in std: a sample within this of a mode's center belongs to it
SWD_PROJECTIONS, SWD_SEED = 128, 0
TARGET_SEED = (7, 0)  # fresh target / real reference draws, apart from the data pool (3, 0)
POT_OFF = tuple(f"POT_BACKEND_DISABLE_{k}" for k in ("PYTORCH", "TENSORFLOW", "JAX", "CUPY"))


def _import_pot():
    """POT registers a backend for every array library installed, importing PyTorch, TensorFlow
    and JAX (~20 s in every runner and report process) though it is handed NumPy arrays only:
    its own switches turn them off for the import, and the environment is left as it was."""
    saved = {k: os.environ.get(k) for k in POT_OFF}
    os.environ.update(dict.fromkeys(POT_OFF, "1"))
    try:
        import ot
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    return ot


ot = _import_pot()


MODES = {name: m.modes() for name, m in datasets.MIXTURES.items()}


def wasserstein1(x: np.ndarray, y: np.ndarray) -> float:
    """Exact W1 between two point sets with uniform weights."""
    cost = cdist(x.astype(np.float64), y.astype(np.float64))  # exact, unlike ot.dist's |x|^2+|y|^2-2xy
    return float(ot.emd2([], [], cost, numItermax=10_000_000))


def target_samples(name: str, n: int) -> np.ndarray:
    """n fresh points of a toy set, the same every call."""
    return datasets.TOY[name](np.random.default_rng(TARGET_SEED), n)


def _assigned(x: np.ndarray, centers: np.ndarray, std: float) -> np.ndarray:
    """Index of the nearest center for each sample, -1 where that is farther than RADIUS std."""
    d = np.linalg.norm(x[:, None, :] - centers[None], axis=2)
    nearest = d.argmin(axis=1)
    return np.where(d[np.arange(len(x)), nearest] <= RADIUS * std, nearest, -1)


def _covered(labels: np.ndarray, k: int) -> int:
    """How many of k categories hold at least COVER_SHARE of their fair share len/k."""
    counts = np.bincount(labels[labels >= 0], minlength=k)
    return int(np.sum(counts >= max(1.0, COVER_SHARE * len(labels) / k)))


def modes_covered(x: np.ndarray, centers: np.ndarray, std: float) -> int:
    return _covered(_assigned(x, centers, std), len(centers))


def high_quality_fraction(x: np.ndarray, centers: np.ndarray, std: float) -> float:
    return float(np.mean(_assigned(x, centers, std) >= 0))


def frechet_distance(f: np.ndarray, g: np.ndarray) -> float:
    """|mu_f - mu_g|^2 + tr(C_f + C_g - 2 (C_f C_g)^1/2), via symmetric square roots (stays real)."""
    (mu_f, c_f), (mu_g, c_g) = _gaussian(f), _gaussian(g)
    return _frechet(mu_f, c_f, mu_g, c_g)


def _gaussian(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = f.astype(np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _frechet(mu_f: np.ndarray, c_f: np.ndarray, mu_g: np.ndarray, c_g: np.ndarray) -> float:
    w, v = np.linalg.eigh(c_f)
    root_f = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    # tr((C_f C_g)^1/2) = tr((R C_g R)^1/2) with R = C_f^1/2, and R C_g R is symmetric PSD.
    tr_cross = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root_f @ c_g @ root_f), 0, None)))
    return float(np.sum((mu_f - mu_g) ** 2) + np.trace(c_f) + np.trace(c_g) - 2 * tr_cross)


def classes_covered(pred: np.ndarray, k: int = 10) -> int:
    return _covered(pred, k)


def kl_from_uniform(pred: np.ndarray, k: int = 10) -> float:
    p = np.bincount(pred, minlength=k) / len(pred)
    p = p[p > 0]  # 0 log 0 = 0
    return float(np.sum(p * np.log(p * k)))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray) -> float:
    return float(ot.sliced_wasserstein_distance(x.astype(np.float64), y.astype(np.float64),
                                                n_projections=SWD_PROJECTIONS, p=1, seed=SWD_SEED))


@functools.lru_cache(maxsize=4)
def _real_images(dataset: str, data_dir: str | None) -> np.ndarray:
    x = datasets.load(dataset, data_dir).x
    return x.reshape(len(x), -1)


@functools.lru_cache(maxsize=4)
def _real_features(dataset: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    return _gaussian(classifier.load().features(_real_images(dataset, data_dir)))


def toy_metrics(x: np.ndarray, dataset: str) -> dict[str, float]:
    out = {"w1": wasserstein1(x, target_samples(dataset, len(x)))}
    if dataset in MODES:
        centers, std = MODES[dataset]
        out.update(modes=modes_covered(x, centers, std), hq_frac=high_quality_fraction(x, centers, std))
    return out


def mnist_metrics(x: np.ndarray, dataset: str = "mnist", data_dir: str | None = None) -> dict[str, float]:
    clf = classifier.load()
    pred = clf.predict(x)
    mu, cov = _gaussian(clf.features(x))
    return {"fd": _frechet(mu, cov, *_real_features(dataset, data_dir)), "classes": classes_covered(pred),
            "kl_uniform": kl_from_uniform(pred)}


def image_metrics(x: np.ndarray, dataset: str, data_dir: str | None = None) -> dict[str, float]:
    real = _real_images(dataset, data_dir)
    ref = real[np.random.default_rng(TARGET_SEED).choice(len(real), min(len(x), len(real)), replace=False)]
    out = mnist_metrics(x, dataset, data_dir) if dataset == "mnist" else {}
    return {**out, "swd": sliced_wasserstein(x, ref)}


def score(samples: np.ndarray, dataset: str, data_dir: str | None = None) -> dict[str, float]:
    """Every metric that applies to this data set, for one (N, *sample_shape) batch of samples."""
    x = samples.reshape(len(samples), -1).astype(np.float64)
    return toy_metrics(x, dataset) if dataset in datasets.TOY else image_metrics(x, dataset, data_dir)


def score_run(run_dir: Path, backend: str, mode: str, spec: RunSpec, tag: str | None = None) -> list[dict]:
    """quality.csv rows (QUALITY_COLUMNS) for every evaluation in raw/<tag>.evals.npz; [] if it is absent.
    tag defaults to "<backend>-<mode>" (pass the runner's tag when it carries a seed suffix)."""
    path = Path(run_dir) / "raw" / f"{tag or f'{backend}-{mode}'}.evals.npz"
    if not path.exists():
        return []
    with np.load(path) as ev:
        steps, walls, samples = ev["step"], ev["wall_s"], ev["samples"]
    base = {"backend": backend, "mode": mode, "algo": spec.algo.name, "arch": spec.arch, "dataset": spec.dataset,
            "batch_size": spec.batch_size, "devices": spec.devices, "seed": spec.seed}
    return [{**base, "step": int(step), "wall_s": float(wall), "metric": metric, "value": float(value)}
            for step, wall, batch in zip(steps, walls, samples, strict=True)
            if np.all(np.isfinite(batch))  # a diverged generator's NaN samples have no quality
            for metric, value in score(batch, spec.dataset, spec.data_dir).items()]
