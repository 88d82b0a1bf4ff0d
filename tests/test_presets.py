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
from bench.core import presets
from bench.core.data import CELEBA_DIR
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


def test_seed004_values_are_the_posts():
    a = presets.get("seed004-wgan-dcgan-mnist").algo
    assert (a.clip, a.clip_before_update, a.n_critic) == (0.04, True, 2)
    assert (a.d_opt.name, a.d_opt.lr, a.d_opt.beta1, a.d_opt.beta2) == ("adam", 4e-4, 0.5, 0.999)
    assert a.g_opt == a.d_opt


def test_paper_wgan_schedule():
    a = presets.get("paper-wgan").algo
    assert (a.d_opt.name, a.d_opt.lr, a.clip) == ("rmsprop", 5e-5, 0.01)
    assert [a.critic_updates(s) for s in (0, 24, 25, 499, 500, 1000)] == [100, 100, 5, 5, 100, 100]


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
