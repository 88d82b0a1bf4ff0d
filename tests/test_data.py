"""Data loaders on real formats (files the tests write), the embedded MNIST, the toy sets,
and the input stream."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from bench import data
from bench.spec import ALGOS, WGAN
from bench.stream import InputStream


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
