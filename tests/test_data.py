"""Data loaders on real formats (files the tests write), the embedded MNIST, the toy sets,
and the input stream."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bench.core import data
from bench.core.spec import ALGOS, WGAN
from bench.core.stream import InputStream


def write_idx(path, arr: np.ndarray, gz: bool) -> None:
    raw = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    sfx = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", imgs, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", labels, gz)
    ds = data.load("mnist", str(tmp_path))
    assert ds.x.shape == (12, 784) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x * 255, imgs.reshape(12, -1), atol=1e-4)
    np.testing.assert_array_equal(ds.labels, labels)


def test_mnist_idx_errors_name_the_file(tmp_path):
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte"):
        data.load("mnist", str(tmp_path))
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 10, 28, 28)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + b"\x00" * 99)
    with pytest.raises(data.DataError, match="header says"):
        data.load("mnist", str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(data.DataError, match="bad magic"):
        data.load("mnist", str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(data.DataError, match="cannot read"):
        data.load("mnist", str(tmp_path))


def test_embedded_mnist_is_real_and_balanced():
    ds = data.load("mnist")
    assert ds.x.shape == (5000, 784) and 0.0 <= ds.x.min() and ds.x.max() == 1.0
    assert np.bincount(ds.labels).tolist() == [500] * 10
    assert 0.1 < ds.x.mean() < 0.15  # MNIST's mean intensity is about 0.13


def test_toy_sets_match_gan_toy():
    x = data.load("8gaussians").x
    diag = [(a / 2**0.5, b / 2**0.5) for a in (1, -1) for b in (1, -1)]
    centers = 2 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), *diag])
    d = np.linalg.norm(x[:, None] * 1.414 - centers[None], axis=2)
    assert np.all(d.min(1) < 0.02 * 6) and len(np.unique(d.argmin(1))) == 8
    g25 = data.load("25gaussians").x * 2.828
    assert np.abs(g25 - np.round(g25 / 2) * 2).max() < 0.05 * 6
    roll = data.load("swissroll").x
    assert roll.shape == (data.POOL, 2) and np.abs(roll).max() < 2.5


def test_stream_is_a_function_of_seed_and_step():
    s = InputStream(3, ALGOS["wgan_gp"], 8, 4, 1, 100)
    whole = s.block(0, 6).arrays()
    parts = [b.arrays() for b in s.blocks(0, 6, 4)]
    for k in whole:
        np.testing.assert_array_equal(whole[k], np.concatenate([p[k] for p in parts]))
    assert whole["alpha"].shape == (6, 5, 8, 1) and 0 <= whole["alpha"].min() and whole["alpha"].max() <= 1
    assert whole["idx"].max() < 100
    other = InputStream(4, ALGOS["wgan_gp"], 8, 4, 1, 100).block(0, 6).arrays()
    assert not np.array_equal(whole["z_g"], other["z_g"])


def test_blocks_split_where_the_critic_schedule_changes():
    import dataclasses

    arjovsky = dataclasses.replace(WGAN, n_critic_warm=100, warm_steps=25, warm_every=500)
    s = InputStream(0, arjovsky, 2, 3, 1, 10)
    blocks = [(b.start, b.steps, b.n_critic) for b in s.blocks(20, 31, 4)]
    assert blocks == [(20, 4, 100), (24, 1, 100), (25, 4, 5), (29, 2, 5)]
    assert arjovsky.critic_updates(500) == 100 and arjovsky.critic_updates(501) == 5


def write_svhn(path, n: int = 6):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1))  # SVHN labels 1..10, 10 meaning the digit 0
    savemat(path / data.SVHN_FILE, {"X": x, "y": y})
    return x, y


def test_svhn_mat_round_trip(tmp_path):
    x, y = write_svhn(tmp_path)
    ds = data.load("svhn", str(tmp_path))
    assert ds.x.shape == (6, 32, 32, 3) and ds.x.dtype == np.float32
    np.testing.assert_allclose(ds.x * 255, x.transpose(3, 0, 1, 2), atol=1e-4)
    np.testing.assert_array_equal(ds.labels, y.ravel() % 10)


def test_svhn_errors_name_the_file(tmp_path):
    with pytest.raises(data.DataError, match="expected train_32x32.mat"):
        data.load("svhn", str(tmp_path))
    with pytest.raises(data.DataError, match="not embedded: put train_32x32.mat"):
        data.load("svhn")
    (tmp_path / data.SVHN_FILE).write_bytes(b"MATLAB 5.0 MAT-file, but cut short")
    with pytest.raises(data.DataError, match="train_32x32.mat: not a readable MATLAB file"):
        data.load("svhn", str(tmp_path))
    from scipy.io import savemat

    savemat(tmp_path / data.SVHN_FILE, {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(data.DataError, match=r"expected X of shape \(32, 32, 3, N\)"):
        data.load("svhn", str(tmp_path))


def write_celeba(folder, n: int = 3, size=(178, 218)):
    """Aligned-CelebA-sized JPEGs: red inside the central 108x108 square, blue outside."""
    from PIL import Image

    folder.mkdir(parents=True)
    w, h = size
    for i in range(n):
        a = np.zeros((h, w, 3), np.uint8)
        a[..., 2] = 255
        top, left = (h - 108) // 2, (w - 108) // 2
        a[top : top + 108, left : left + 108] = (255, 0, 0)
        Image.fromarray(a).save(folder / f"{i + 1:06d}.jpg", quality=95)


def test_celeba_center_crop_resize_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_celeba(tmp_path / "d" / data.CELEBA_DIR)
    ds = data.load("celeba", str(tmp_path / "d"))
    assert ds.x.shape == (3, 64, 64, 3) and ds.x.dtype == np.float32
    # the crop kept exactly the red square (JPEG blurs its edge by a pixel or so)
    inner = ds.x[:, 2:-2, 2:-2]
    assert inner[..., 0].min() > 0.9 and inner[..., 2].max() < 0.1
    cached = list((tmp_path / "cache" / "ganbench").glob("celeba64-3-*.npy"))
    assert len(cached) == 1
    np.testing.assert_array_equal(data.load("celeba", str(tmp_path / "d")).x, ds.x)  # read back from the cache


def test_celeba_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="expected img_align_celeba/"):
        data.load("celeba", str(tmp_path / "empty"))
    write_celeba(tmp_path / "small", n=1, size=(90, 90))
    with pytest.raises(data.DataError, match="smaller than the 108x108 center crop"):
        data.load("celeba", str(tmp_path / "small"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "000001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(data.DataError, match="000001.jpg: not a readable image"):
        data.load("celeba", str(tmp_path / "bad"))


def test_range_mapping_round_trips():
    x = np.linspace(0, 1, 11, dtype=np.float32)
    y = data.to_range(x, (-1.0, 1.0))
    assert y.min() == -1 and y.max() == 1 and y.dtype == np.float32
    np.testing.assert_allclose(data.from_range(y, (-1.0, 1.0)), x, atol=1e-7)
    assert data.to_range(x, None) is x
