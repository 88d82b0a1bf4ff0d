"""Sweeps as Ray tasks (--ray): the rows land in one run directory with the losses of a local run;
a failed task is retried once, answers (diverged, unavailable) never; a resumed task gets its
checkpoint on the node; SIGTERM cancels the running task and takes its worker down."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, require, running_workers, small_spec
from fake_backends import fake_registry

import backends
from bench.run import cluster, worker
from bench.run.environment import environment
from bench.run.plan import Plan
from bench.run.runner import execute

ray = pytest.importorskip("ray")  # an optional extra

TINY = ["--steps", "4", "--warmup", "2", "--block", "2", "--batch-size", "8"]


def read(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_bench.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_ray_sweep_matches_the_local_sweep(tmp_path):
    """run_bench.py --ray (its own local Ray) over two seeds: one timings.csv, losses.csv and report,
    and bit for bit the losses of the same sweep without Ray."""
    require("torch")
    args = ["--backends", "torch", "--modes", "eager", "--algo", "wgan_gp", "--seeds", "0,1", "--device", "cpu", *TINY]
    on_ray, local = tmp_path / "ray", tmp_path / "local"
    r = run_bench(*args, "--ray", "--out", str(on_ray))
    assert r.returncode == 0, r.stderr
    assert "ray: starting a local Ray instance" in r.stderr and "[2/2 tasks done]" in r.stderr
    assert run_bench(*args, "--no-report", "--out", str(local)).returncode == 0
    timings = read(on_ray / "timings.csv")
    assert sorted(r["seed"] for r in timings) == ["0", "1"] and all(r["status"] == "ok" for r in timings)
    assert [r["threads"] for r in timings] == [r["threads"] for r in read(local / "timings.csv")]
    key = ["seed", "step"]
    got = pd.read_csv(on_ray / "losses.csv").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(got, pd.read_csv(local / "losses.csv").sort_values(key, ignore_index=True),
                                  check_exact=True)
    for tag in ("torch-eager-seed0", "torch-eager-seed1"):
        with np.load(on_ray / "raw" / f"{tag}.npz") as a, np.load(local / "raw" / f"{tag}.npz") as b:
            for k in b.files:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{tag} {k}")  # full precision, not the CSV's
        assert (on_ray / "samples" / f"{tag}.png").exists()
        job = json.loads((on_ray / "raw" / f"{tag}.job.json").read_text())
        assert job["work_dir"] == str(on_ray / "raw")  # the node's temporary paths are not left behind
    assert (on_ray / "report.md").exists() and json.loads((on_ray / "env.json").read_text())["complete"]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One small Ray for the tests below; run_tasks uses it as it finds it (and leaves it up)."""
    flaky = tmp_path_factory.mktemp("flaky")
    os.environ["GANBENCH_FAKE_FLAKY_DIR"] = str(flaky)  # set before ray.init: its workers inherit the environment
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address="local", num_cpus=2, object_store_memory=80 * 1024**2, include_dashboard=False,
             log_to_driver=False)
    signal.signal(signal.SIGTERM, handler)  # ray.init's own would end pytest
    yield flaky
    ray.shutdown()
    del os.environ["GANBENCH_FAKE_FLAKY_DIR"]


@pytest.fixture
def fakes(monkeypatch):
    for name, e in fake_registry().items():
        monkeypatch.setitem(backends.REGISTRY, name, e)


def plan(out: Path, runs, steps=6, timeout=60.0, warmup=2, **spec_over) -> Plan:
    spec = dataclasses.replace(small_spec("wgan_gp", "mlp", batch=4, steps=steps), warmup=warmup, block=2, **spec_over)
    return Plan((spec,), tuple(runs), "cpu", out, timeout, "test", ray="local")


def attempts(out: Path, tag: str) -> int:
    return (out / "logs" / f"{tag}.log").read_text().count("--- ray attempt")


def test_a_failed_task_is_retried_once(tmp_path, local_ray, fakes):
    runs = [("fake", m) for m in ("ok", "crash", "flaky", "diverge")] + [("absent", "x")]
    out = tmp_path / "run"
    assert execute(plan(out, runs)) == 1
    rows = {r["mode"]: r for r in read(out / "timings.csv")}
    assert len(rows) == len(runs)
    crash, flaky, ok = rows["crash"], rows["flaky"], rows["ok"]
    assert crash["status"] == "failed" and crash["note"].startswith("failed after one retry; attempt 1: ")
    assert crash["note"].count("RuntimeError: deliberate crash in train") == 2
    assert attempts(out, "fake-crash") == 2
    assert (out / "logs" / "fake-crash.log").read_text().count("RuntimeError: deliberate crash in train\n") == 2
    assert flaky["status"] == "ok" and flaky["note"] == ("ok after one retry; attempt 1: RuntimeError: deliberate "
                                                         "crash on the first attempt; attempt 2: ok")
    assert attempts(out, "fake-flaky") == 2 and (local_ray / "flaky.attempted").exists()
    assert ok["status"] == "ok" and ok["note"] == "" and float(ok["step_ms_median"]) > 0
    assert attempts(out, "fake-ok") == 1 and (out / "samples" / "fake-ok.png").exists()
    assert rows["diverge"]["status"] == "diverged" and attempts(out, "fake-diverge") == 1  # answers: no retry
    assert rows["x"]["status"] == "unavailable" and attempts(out, "absent-x") == 1
    losses = pd.read_csv(out / "losses.csv")
    assert losses.groupby("mode").size().to_dict() == {"ok": 6, "flaky": 6, "diverge": 3}
    np.testing.assert_array_equal(losses[losses["mode"] == "flaky"]["d_loss"], losses[losses["mode"] == "ok"]["d_loss"])
    assert json.loads((out / "env.json").read_text())["complete"]


def test_resume_ships_the_checkpoint_to_the_node(tmp_path, local_ray, fakes):
    """A 2-step run's checkpoint (shipped back from the node), marked, resumes a 6-step run on the node."""
    first = tmp_path / "first"
    assert execute(plan(first, [("fake", "ok")], steps=2, warmup=0, checkpoint_every=2)) == 0
    state, step, metrics, evals = worker.load_checkpoint(first / "checkpoints" / "fake-ok.npz")
    assert step == 2
    metrics["d_loss"] = [np.full(2, 42.0)]  # only a run that resumed from this file reports these
    out = tmp_path / "resumed"
    p = plan(out, [("fake", "ok")], checkpoint_every=2)
    (out / "checkpoints").mkdir(parents=True)
    worker.save_checkpoint(out / "checkpoints" / "fake-ok.npz", state, step, metrics, evals)
    (out / "env.json").write_text(json.dumps(environment(p), default=str))
    assert execute(p, resume=True) == 0
    losses = pd.read_csv(out / "losses.csv")
    assert losses["step"].tolist() == list(range(6)) and losses["d_loss"].tolist()[:2] == [42.0, 42.0]
    assert worker.load_checkpoint(out / "checkpoints" / "fake-ok.npz")[1] == 6  # the node's, shipped back


def _workers(tag: str) -> dict[int, str]:
    """Workers running `tag` from a Ray task's temporary directory."""
    return running_workers(f"ganbench-ray-{tag}-")


@pytest.mark.parametrize("cancel_s", [cluster.CANCEL_S, 0.0], ids=["polite", "forced"])
def test_sigterm_cancels_the_running_task(tmp_path, local_ray, fakes, monkeypatch, cancel_s):
    """Polite: the task stops its worker and removes its directory. Forced (a task that has
    not stopped in CANCEL_S): Ray kills the task, the worker dies with it, the driver
    removes the directory (the node being this machine)."""
    monkeypatch.setattr(cluster, "CANCEL_S", cancel_s)
    out = tmp_path / "run"
    seen: dict[int, str] = {}

    def interrupt() -> None:  # once the hanging worker runs on the node
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not seen:
            seen.update(_workers("fake-hang"))
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=interrupt, daemon=True).start()
    assert execute(plan(out, [("fake", "hang")], timeout=300)) == 143
    assert seen, "the hanging worker never started"
    assert json.loads((out / "env.json").read_text())["interrupted"] == "SIGTERM"
    deadline = time.monotonic() + 15  # the cancelled task kills its worker and removes its directory
    while time.monotonic() < deadline and (_workers("fake-hang") or any(Path(j).exists() for j in seen.values())):
        time.sleep(0.2)
    assert not _workers("fake-hang") and not any(Path(j).exists() for j in seen.values())
