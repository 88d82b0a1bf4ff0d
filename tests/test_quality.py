"""Quality metrics on inputs whose answer is known, the committed classifier, and scoring a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.analysis import classifier, quality
from bench.core import data as datasets
from bench.core.spec import WGAN_GP, RunSpec


@pytest.fixture(scope="module")
def mnist() -> datasets.Dataset:
    return datasets.load("mnist")


def test_w1_identical_is_zero_and_shift_is_its_length():
    x = np.random.default_rng(0).normal(size=(200, 2))
    v = np.array([0.3, -0.4])
    assert quality.wasserstein1(x, x) == pytest.approx(0, abs=1e-12)
    assert quality.wasserstein1(x, x + v) == pytest.approx(np.linalg.norm(v), rel=1e-9)


def test_target_samples_are_fixed():
    np.testing.assert_array_equal(quality.target_samples("swissroll", 50), quality.target_samples("swissroll", 50))


@pytest.mark.parametrize("name", ["8gaussians", "25gaussians"])
def test_mode_centers_match_the_data_generators(name):
    centers, std = quality.MODES[name]
    real = quality.target_samples(name, 2000)
    assert quality.modes_covered(real, centers, std) == len(centers)
    assert quality.high_quality_fraction(real, centers, std) == pytest.approx(1 - np.exp(-quality.RADIUS**2 / 2),
                                                                              abs=0.01)


def test_modes_covered_counts_only_the_modes_hit():
    centers, std = quality.MODES["8gaussians"]
    x = np.repeat(centers[[0, 3, 5]], 100, axis=0)
    assert quality.modes_covered(x, centers, std) == 3


def test_modes_covered_needs_a_fair_share():
    centers, std = quality.MODES["8gaussians"]  # 400 samples: fair share 50, threshold 10
    x = np.concatenate([np.repeat(centers[:1], 391, axis=0), np.repeat(centers[1:2], 9, axis=0)])
    assert quality.modes_covered(x, centers, std) == 1


def test_high_quality_fraction():
    centers, std = quality.MODES["8gaussians"]
    near = centers[:4] + [2.9 * std, 0]
    far = centers[:4] + [3.1 * std, 0]
    assert quality.high_quality_fraction(np.concatenate([near, far, far, far]), centers, std) == 0.25


def test_frechet_distance_zero_for_itself_and_grows_with_shift():
    f = np.random.default_rng(1).normal(size=(500, 16))
    assert quality.frechet_distance(f, f) == pytest.approx(0, abs=1e-8)
    shifts = [quality.frechet_distance(f, f + s) for s in (0.5, 1.0, 2.0)]
    assert shifts == pytest.approx([16 * s**2 for s in (0.5, 1.0, 2.0)], rel=1e-6)


def test_classes_and_kl_on_real_digits(mnist):
    _, test = classifier.split(len(mnist.x))
    pred = classifier.load().predict(mnist.x[test])
    assert quality.classes_covered(pred) == 10
    assert quality.kl_from_uniform(pred) < 0.02


def test_classes_and_kl_on_one_digit(mnist):
    pred = classifier.load().predict(mnist.x[mnist.labels == 0])
    assert quality.classes_covered(pred) == 1
    assert quality.kl_from_uniform(pred) == pytest.approx(np.log(10), abs=0.1)


def test_sliced_wasserstein_identical_is_zero():
    x = np.random.default_rng(2).uniform(size=(100, 784))
    assert quality.sliced_wasserstein(x, x) == pytest.approx(0, abs=1e-12)
    assert quality.sliced_wasserstein(x, x + 0.1) > 0


def test_classifier_reaches_its_recorded_accuracy(mnist):
    clf = classifier.load()
    _, test = classifier.split(len(mnist.x))
    assert clf.test_accuracy >= 0.94
    assert classifier.accuracy(clf, mnist.x[test], mnist.labels[test]) == pytest.approx(clf.test_accuracy, abs=1e-3)


def test_real_mnist_scores_well_and_blank_images_do_not(mnist):
    _, test = classifier.split(len(mnist.x))
    good, blank = quality.score(mnist.x[test], "mnist"), quality.score(np.zeros((200, 784)), "mnist")
    assert set(good) == {"fd", "classes", "kl_uniform", "swd"}
    assert good["fd"] < 5 < blank["fd"] and good["swd"] < blank["swd"]


def test_score_run_reads_evals(tmp_path):
    spec = RunSpec(WGAN_GP, "toy_mlp", "8gaussians", 16, 20, eval_every=10)
    centers, _ = quality.MODES["8gaussians"]
    samples = np.stack([np.zeros((100, 2)), np.repeat(centers, 125, axis=0)[::10], np.full((100, 2), np.nan)])
    (tmp_path / "raw").mkdir()
    np.savez(tmp_path / "raw" / "jax-jit-seed3.evals.npz", step=np.array([10, 20, 30]),
             wall_s=np.array([1.0, 2.0, 3.0]), samples=samples.astype(np.float32))
    assert quality.score_run(tmp_path, "jax", "jit", spec) == []
    rows = quality.score_run(tmp_path, "jax", "jit", spec, tag="jax-jit-seed3")
    assert all(set(r) == set(quality.QUALITY_COLUMNS) for r in rows)
    assert {r["step"] for r in rows} == {10, 20}  # the NaN samples of step 30 are not scored
    final = {r["metric"]: r["value"] for r in rows if r["step"] == 20}
    assert final["modes"] == 8 and final["hq_frac"] == 1.0
    assert {r["metric"]: r["value"] for r in rows if r["step"] == 10}["modes"] == 0


def test_scoring_imports_no_framework_and_leaves_the_environment():
    """POT would import every framework installed (~20 s in every runner and report process)."""
    code = ("import os, sys, bench.analysis.quality; "
            "print(sorted({'torch', 'tensorflow', 'jax'} & set(sys.modules)), [k for k in os.environ if 'POT_' in k])")
    r = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[] []", r.stdout + r.stderr
