"""Every preset: its values are its source's, flags override them, and it trains a few
steps in every backend through the worker, on small data files in the real formats."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import require
from test_data import write_celeba, write_svhn

import backends
from bench.core import presets, reference
from bench.core.data import CELEBA_DIR
from bench.core.nets import ARCHS, BatchNorm, Conv, ConvT, Crop, Dense, init_weights
from bench.core.spec import RunSpec
from bench.run import cli, worker

# The idiomatic mode of each backend: a preset is about the setup, the modes are tested elsewhere.
MODE = {"torch": "eager", "tf": "graph", "jax": "jit"}


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("data")
    (root / "svhn").mkdir()
    write_svhn(root / "svhn", n=8)
    write_celeba(root / "celeba" / CELEBA_DIR, n=6)
    return {"svhn": str(root / "svhn"), "celeba": str(root / "celeba")}


def _plan(*argv: str):
    return cli.plan_from_args(cli.parser().parse_args(list(argv)), ["run_bench.py", *argv])


def _preset_args(p: presets.Preset, data_dirs: dict[str, str]) -> list[str]:
    return ["--preset", p.name, *(["--data-dir", data_dirs[p.dataset]] if p.dataset in data_dirs else []),
            *(["--embedded-mnist"] if p.dataset == "mnist" else [])]


def test_every_source_has_a_preset():
    seeds = {p.source.split(" ")[0] for p in presets.PRESETS.values() if p.source.startswith("seeds/")}
    assert seeds == {f"seeds/00{i}" for i in range(5)}
    assert {"paper-wgan-gp-toy", "paper-wgan-gp-mnist", "paper-wgan"} <= set(presets.PRESETS)


def _values(name: str) -> dict:
    """A preset's distinguishing values, as the tests below pin them."""
    p = presets.get(name)
    a, arch = p.algo, ARCHS[p.arch]
    o = a.d_opt
    return {"batch": p.batch_size, "z": (arch.z_dim, p.z_dist), "opt": (o.name, o.lr, o.beta1, o.beta2, o.eps)
            if o.is_adam else (o.name, o.lr, o.alpha, o.eps), "same_opt": a.g_opt == o,
            "clip": (a.clip, a.clip_before_update) if a.clip else None, "lambda": a.gp_lambda,
            "init": p.init or arch.init, "batches": p.batches, "steps": p.source_steps}


# Each source's values, from its code (file and line: /work/notes/issue20-facts.md's tables)
SOURCES = {
    "seed000-wgan-gp-svhn": {"batch": 64, "z": (128, "normal"), "opt": ("adam", 1e-4, 0.5, 0.9, 1e-8),
                             "same_opt": True, "clip": None, "lambda": 10.0, "init": "uniform_fan_in",
                             "batches": "epochs", "steps": 140 * (73_257 // 64) // 5},
    "seed002-wgan-mlp-mnist": {"batch": 32, "z": (10, "normal"), "opt": ("rmsprop", 1e-4, 0.99, 1e-8),
                               "same_opt": True, "clip": (0.01, False), "lambda": None, "init": "torch",
                               "batches": "epochs", "steps": 1_000_000},
    "seed002-wgan-mlp-mnist-tf": {"batch": 32, "z": (10, "uniform"), "opt": ("rmsprop_tf1", 1e-4, 0.9, 1e-10),
                                  "same_opt": True, "clip": (0.01, False), "lambda": None, "init": "he_normal",
                                  "batches": "epochs", "steps": 1_000_000},
    "seed003-wgan-dcgan-celeba": {"batch": 64, "z": (100, "uniform"), "opt": ("rmsprop_tf1", 5e-5, 0.9, 1e-10),
                                  "same_opt": True, "clip": (0.01, False), "lambda": None, "init": "dcgan_truncated",
                                  "batches": "epochs", "steps": 100_000},
    "seed004-wgan-dcgan-mnist": {"batch": 64, "z": (100, "normal"), "opt": ("adam", 4e-4, 0.5, 0.999, 1e-8),
                                 "same_opt": True, "clip": (0.04, True), "lambda": None, "init": "torch",
                                 "batches": "epochs", "steps": 50 * (60_000 // 64) // 2},
    "paper-wgan-gp-toy": {"batch": 256, "z": (2, "normal"), "opt": ("adam_tf1", 1e-4, 0.5, 0.9, 1e-8),
                          "same_opt": True, "clip": None, "lambda": 0.1, "init": "he_glorot_out",
                          "batches": "independent", "steps": 99_999},
    "paper-wgan-gp-mnist": {"batch": 50, "z": (128, "normal"), "opt": ("adam_tf1", 1e-4, 0.5, 0.9, 1e-8),
                            "same_opt": True, "clip": None, "lambda": 10.0, "init": "tflib",
                            "batches": "epochs", "steps": 199_999},
    "paper-wgan": {"batch": 64, "z": (100, "normal"), "opt": ("rmsprop", 5e-5, 0.99, 1e-8),
                   "same_opt": True, "clip": (0.01, True), "lambda": None, "init": "dcgan",
                   "batches": "epochs", "steps": 227_862},
}


@pytest.mark.parametrize("name", SOURCES)
def test_preset_values_are_the_sources(name):
    assert _values(name) == SOURCES[name]


def test_schedules_count_as_their_sources():
    """seed 000: G at critic index i % 5 == 4, before that update; seed 003: itr from 1, 25 for
    itr < 25 or itr % 500 == 0; Arjovsky: gen_iterations from 0, 100 for < 25 or % 500 == 0;
    gan_toy, gan_mnist, seed 004: constant."""
    seed000 = presets.get("seed000-wgan-gp-svhn").algo
    assert [seed000.critic_updates(s) for s in range(3)] == [4, 5, 5]
    assert seed000.updates_before(32_032) == 160_160 - 1  # the last critic update follows the last G
    seed003 = presets.get("seed003-wgan-dcgan-celeba").algo
    assert [seed003.critic_updates(s) for s in (0, 23, 24, 498, 499, 500)] == [25, 25, 5, 5, 25, 5]
    assert seed003.updates_before(100_000) == 504_480
    arjovsky = presets.get("paper-wgan").algo
    assert [arjovsky.critic_updates(s) for s in (0, 24, 25, 499, 500, 1000)] == [100, 100, 5, 5, 100, 100]
    for name in ("paper-wgan-gp-toy", "paper-wgan-gp-mnist", "seed004-wgan-dcgan-mnist", "seed002-wgan-mlp-mnist"):
        a = presets.get(name).algo
        assert {a.critic_updates(s) for s in range(1001)} == {a.n_critic}, name
    assert presets.get("seed004-wgan-dcgan-mnist").algo.n_critic == 2


def test_seed003_networks_and_sampling():
    """G 100 -> Dense 4x4x1024 -> 1024-512-256-128-3; the critic's last conv is 4x4 stride 2
    'SAME' to a 2x2 map; batch norm a TF moving average, read when sampling."""
    p = presets.get("seed003-wgan-dcgan-celeba")
    arch = ARCHS[p.arch]
    assert arch.generator[0] == Dense(100, 4 * 4 * 1024, bias=False)
    assert [lay.c_out for lay in arch.generator if isinstance(lay, ConvT)] == [512, 256, 128, 3]
    assert [lay.c_out for lay in arch.critic if isinstance(lay, Conv)] == [64, 128, 256, 512, 1]
    w = init_weights(arch, 0)
    score = reference.forward(arch.critic, w, "D", np.zeros((1, 64, 64, 3)))
    assert score.shape == (1, 4)  # the 2x2 map, flattened
    bns = [lay for lay in (*arch.generator, *arch.critic) if isinstance(lay, BatchNorm)]
    assert {(b.momentum, b.eps, b.unbiased, b.var_start) for b in bns} == {(0.1, 1e-5, False, 0.0)}
    assert p.sample_running_stats and not any(q.sample_running_stats for q in presets.PRESETS.values() if q != p)
    assert not any(lay.bias for lay in (*arch.generator, *arch.critic) if isinstance(lay, Dense | Conv | ConvT))


def test_arjovsky_and_gan_mnist_networks():
    assert ARCHS[presets.get("paper-wgan").arch].critic[-2] == Conv(512, 1, 4, 1, 0, bias=False)
    assert [lay.c_out for lay in ARCHS[presets.get("paper-wgan").arch].generator if isinstance(lay, ConvT)] == \
        [512, 256, 128, 64, 3]
    g = ARCHS[presets.get("paper-wgan-gp-mnist").arch].generator
    assert g[0] == Dense(128, 4 * 4 * 256) and Crop(7, 7) in g


def test_list_presets_shows_each_length_and_only_true_deviations():
    text = presets.describe()
    for p in presets.PRESETS.values():
        assert f"{p.source_steps:,} generator iterations" in text
        for note in p.notes:
            assert f"differs: {note}" in text
    # fixed, so no longer declared
    for gone in ("not in the post: seed 001's", "as main.py", "torch.optim.RMSprop (alpha 0.99"):
        assert gone not in text


def test_preset_sets_everything_and_flags_override(tmp_path, data_dirs):
    spec = _plan(*_preset_args(presets.get("paper-wgan-gp-toy"), data_dirs), "--out", str(tmp_path / "a")).specs[0]
    assert (spec.arch, spec.dataset, spec.batch_size, spec.algo.gp_lambda) == ("toy_mlp", "8gaussians", 256, 0.1)
    assert spec.preset == "paper-wgan-gp-toy"
    spec = _plan("--preset", "paper-wgan-gp-toy", "--gp-lambda", "10", "--batch-size", "32", "--n-critic", "3",
                 "--out", str(tmp_path / "b")).specs[0]
    assert (spec.batch_size, spec.algo.gp_lambda, spec.algo.n_critic) == (32, 10.0, 3)
    assert spec.algo.d_opt.lr == 1e-4  # the rest stays the preset's
    spec = _plan("--preset", "seed001-gan-mlp-mnist", "--embedded-mnist", "--out", str(tmp_path / "c")).specs[0]
    assert (spec.init, spec.algo.name, spec.algo.d_opt.lr) == ("he_normal", "gan", 1e-3)
    p = presets.get("seed003-wgan-dcgan-celeba")
    spec = _plan(*_preset_args(p, data_dirs), "--out", str(tmp_path / "d")).specs[0]
    assert (spec.z_dist, spec.batches, spec.sample_running_stats, spec.init) == ("uniform", "epochs", True, None)
    spec = _plan(*_preset_args(p, data_dirs), "--arch", "dcgan64", "--out", str(tmp_path / "e")).specs[0]
    assert (spec.z_dist, spec.sample_running_stats, spec.init) == ("uniform", False, None)  # not its own arch


@pytest.mark.parametrize("backend", tuple(backends.REGISTRY))
@pytest.mark.parametrize("name", tuple(presets.PRESETS))
def test_preset_trains_in_every_backend(tmp_path, data_dirs, monkeypatch, name, backend):
    require(backend)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(worker.PEAK_PROBE, "cpu", (256, 1))  # the peak probe is tested with the CLI runs
    p = presets.get(name)
    spec = _plan(*_preset_args(p, data_dirs), "--out", str(tmp_path / "unused")).specs[0]
    # A few tiny steps: batch 4, and Arjovsky's 100-update warm phase cut to 2 updates.
    algo = dataclasses.replace(spec.algo, n_critic_warm=2 if spec.algo.n_critic_warm else None)
    spec = dataclasses.replace(spec, algo=algo, batch_size=4, steps=2, warmup=0, block=1, eval_samples=16,
                               grid_samples=4)
    assert RunSpec.from_json(spec.to_json()) == spec
    (tmp_path / "samples").mkdir()
    e = backends.entry(backend)
    job = {"backend": backend, "module": e.module, "install": e.install, "mode": MODE[backend], "device": "cpu",
           "spec": spec.to_json(), "tag": f"{backend}-{name}", "work_dir": str(tmp_path), "checkpoint": None,
           "samples_dir": str(tmp_path / "samples")}
    result = worker.run(job)
    assert result["status"] == "ok", json.dumps(result)
    assert result["steps_done"] == 2
    with np.load(tmp_path / f"{backend}-{name}.npz") as m:
        assert np.all(np.isfinite(m["d_loss"])) and len(m["d_loss"]) == 2
    samples = np.load(tmp_path / "samples" / f"{backend}-{name}.npy")
    if p.arch != "toy_mlp":  # images come back in the data's [0, 1], whatever the generator's range
        assert samples.min() >= 0 and samples.max() <= 1
