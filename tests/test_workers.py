"""Long-lived workers and --budget: one worker per (backend, mode) trains a suite's setups in
turn with the losses of one process per setup; a worker killed in one setup leaves the others'
rows ok; a budget that fits part of a suite writes those rows and names the rest."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import require, small_spec
from fake_backends import fake_registry

import backends
from bench.core.spec import ALGOS
from bench.run import cli, procs
from bench.run.budget import Budget
from bench.run.plan import Plan, Task
from bench.run.runner import execute


@pytest.fixture
def fakes(monkeypatch):
    for name, e in fake_registry().items():
        monkeypatch.setitem(backends.REGISTRY, name, e)


@pytest.fixture
def spawned(monkeypatch) -> list[str]:
    """The module of every worker process started, in order."""
    started: list[str] = []
    init = procs.Worker.__init__

    def counting(self, module, *args, **kw):
        started.append(module)
        init(self, module, *args, **kw)

    monkeypatch.setattr(procs.Worker, "__init__", counting)
    return started


def suite(out: Path, runs, batches=(4, 8, 16), steps=6, budget=None, algo="wgan_gp", **over) -> Plan:
    specs = tuple(dataclasses.replace(small_spec(algo, "mlp", batch=b, steps=steps), warmup=2, block=2, **over)
                  for b in batches)
    return Plan(specs, tuple(runs), "cpu", out, 60.0, "test", budget=budget)


def read(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def pids(out: Path) -> dict[str, int]:
    return {tag: info["pid"] for tag, info in json.loads((out / "env.json").read_text())["backends"].items() if info}


def test_one_worker_trains_every_setup_and_a_killed_one_is_replaced(tmp_path, fakes, spawned):
    """Three setups x (ok, segfault_b8): each mode's worker trains its setups in turn; the
    segfault in the batch-8 setup fails that row alone, and a new worker takes the next setup."""
    out = tmp_path / "run"
    assert execute(suite(out, [("fake", "ok"), ("fake", "segfault_b8")])) == 1
    rows = {(r["batch_size"], r["mode"]): r for r in read(out / "timings.csv")}
    assert len(rows) == 6
    bad = rows["8", "segfault_b8"]
    assert bad["status"] == "failed" and "code -11" in bad["note"]
    assert all(r["status"] == "ok" for k, r in rows.items() if k != ("8", "segfault_b8"))
    p = pids(out)
    assert len({p[f"wgan_gp-mlp-b{b}-fake-ok"] for b in (4, 8, 16)}) == 1  # one worker for all three
    assert p["wgan_gp-mlp-b4-fake-segfault_b8"] != p["wgan_gp-mlp-b16-fake-segfault_b8"]  # replaced
    assert spawned == ["tests.fake_backends"] * 3  # ok's, segfault_b8's, and its replacement
    losses = pd.read_csv(out / "losses.csv")  # the rows after the crash are whole and the same
    for b in (4, 16):
        got = losses[(losses["batch_size"] == b)].groupby("mode")["d_loss"].apply(list)
        assert got["ok"] == got["segfault_b8"] and len(got["ok"]) == 6


def test_a_budget_that_fits_part_of_a_suite_writes_those_rows_and_names_the_rest(tmp_path, fakes):
    """fake-slow takes 0.2 s a block. The first setup always starts; the batch-256 one is
    estimated at 64 times the batch-4 one's measured cost and is left out; the run is then
    complete, and --resume runs what was left out."""
    out = tmp_path / "run"
    p = suite(out, [("fake", "slow")], batches=(4, 256), budget=8.0)
    assert execute(p) == 1  # not every task ran
    rows = {r["batch_size"]: r for r in read(out / "timings.csv")}
    assert rows["4"]["status"] == "ok"
    left = rows["256"]
    assert left["status"] == "skipped" and left["note"].startswith("left out by --budget 8 s: estimated ")
    summary = (out / "summary.md").read_text()
    assert "--budget 8 s" in summary and "## Left out: 1 task(s)" in summary
    assert f"wgan_gp / mlp / batch 256: fake-slow (seed 0, 1 device(s)): {left['note']}" in summary
    # fake-slow sleeps 0.2 s a block, so the timed and warm-up blocks are most of the tasks' wall time
    env = json.loads((out / "env.json").read_text())
    spent = summary.split("## Where the time went")[1]
    assert f"{env['tasks_s'] / 60:.1f} min of tasks" in spent and "Wall / (timed + compilation) = " in spent
    assert json.loads((out / "env.json").read_text())["complete"]
    assert set(pd.read_csv(out / "losses.csv")["batch_size"]) == {4}  # nothing of the left-out task
    # --resume retries it under this call's --budget, if given; the first call's does not carry over
    assert cli.resume_plan(out, budget="30s").budget == 30 and cli.resume_plan(out).budget is None
    with pytest.raises(cli.UsageError, match="--budget: not a duration"):
        cli.resume_plan(out, budget="soon")
    assert execute(cli.resume_plan(out, budget="8s"), resume=True) == 0  # alone, as the first task, it starts
    assert [(r["batch_size"], r["status"]) for r in read(out / "timings.csv")] == [("4", "ok"), ("256", "ok")]


def test_a_task_running_when_the_budget_ends_is_stopped(tmp_path, fakes):
    out = tmp_path / "run"
    assert execute(suite(out, [("fake", "hang"), ("fake", "ok")], batches=(4,), budget=3.0)) == 1
    rows = {r["mode"]: r for r in read(out / "timings.csv")}
    assert rows["hang"]["status"] == "skipped" and rows["hang"]["note"].startswith("stopped at the end of --budget 3 s")
    assert rows["ok"]["status"] == "skipped" and rows["ok"]["note"].startswith("left out by --budget 3 s")


@pytest.mark.parametrize("text", ["0", "soon", "-5m", "5 m"])
def test_a_bad_budget_is_refused_before_anything_runs(tmp_path, capsys, text):
    out = tmp_path / "run"
    assert cli.main([f"--budget={text}", "--backends", "torch", "--out", str(out)]) == 2
    assert "--budget" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_a_long_lived_worker_gives_the_losses_of_one_process_per_setup(tmp_path, spawned, name):
    """GAN and WGAN-GP trained one after the other by one worker equal each trained in a process of its own."""
    require(name)
    mode = backends.entry(name).modes[0]
    specs = [dataclasses.replace(small_spec(a, "mlp", batch=8, steps=4), warmup=2, block=2) for a in ("gan", "wgan_gp")]
    shared = tmp_path / "shared"
    assert execute(Plan(tuple(specs), ((name, mode),), "cpu", shared, 300.0, "test", report=False)) == 0
    assert len(spawned) == 1
    together = pd.read_csv(shared / "losses.csv")
    for spec in specs:
        alone = tmp_path / spec.algo.name
        assert execute(Plan((spec,), ((name, mode),), "cpu", alone, 300.0, "test", report=False)) == 0
        want = pd.read_csv(alone / "losses.csv")
        got = together[together["algo"] == spec.algo.name].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert len(spawned) == 3


def test_the_budget_estimates_from_the_most_similar_measurement():
    spec = small_spec("wgan_gp", "mlp", batch=64, steps=40)

    def task(backend: str, mode: str, **over) -> Task:
        return Task(backend, mode, dataclasses.replace(spec, **over), "tag")

    budget = Budget.starting_now(100.0)
    assert budget.estimate(task("jax", "jit"), worker_running=False) == 0  # nothing measured: the first one starts
    budget.measured(task("torch", "eager"), 10.0, start_s=3.0)
    budget.measured(task("tf", "eager"), 50.0, start_s=6.0)
    budget.measured(task("tf", "graph"), 20.0, start_s=None)
    assert budget.estimate(task("torch", "eager", batch_size=256), True) == 40.0  # its own, x the work
    assert budget.estimate(task("torch", "eager", batch_size=16), True) == 10.0  # never scaled down
    assert budget.estimate(task("torch", "eager", algo=ALGOS["gan"]), True) == 20.0  # another algo: slowest x 2
    assert budget.estimate(task("tf", "xla"), False) == 6.0 + 2 * 20.0  # another mode: median x 2, its start
    assert budget.estimate(task("jax", "jit"), False) == 2 * 6.0 + 2 * 20.0  # unseen backend: twice the slowest start
    assert budget.estimate(task("jax", "jit", arch="toy_mlp", dataset="8gaussians"), True) == 2 * 20.0  # any: median
    assert budget.why_not(task("torch", "eager"), True) is None
    note = budget.why_not(task("torch", "eager", batch_size=1024), True)
    assert note.startswith("left out by --budget 100 s: estimated 2.7 min, ")
