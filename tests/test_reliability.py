"""Failures stay contained: crashes, segfaults, kills, hangs, divergence, missing
frameworks, interrupts; checkpoints resume to the same losses, across backends too."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, require, running_workers, small_spec
from fake_backends import fake_registry

import backends
from bench.run import worker
from bench.run.cli import UsageError, resume_plan
from bench.run.plan import Plan
from bench.run.runner import execute


@pytest.fixture
def fakes(monkeypatch):
    for name, e in fake_registry().items():
        monkeypatch.setitem(backends.REGISTRY, name, e)


def plan(out: Path, runs, steps=6, timeout=60.0, **spec_over) -> Plan:
    spec = dataclasses.replace(small_spec("wgan_gp", "mlp", batch=4, steps=steps), warmup=2, block=2, **spec_over)
    return Plan((spec,), tuple(runs), "cpu", out, timeout, "test")


def read(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_every_failure_is_contained(tmp_path, fakes):
    runs = [("fake", m) for m in ("ok", "crash", "segfault", "killed", "hang", "diverge")]
    runs += [("absent", "x"), ("gone", "x")]
    out = tmp_path / "run"
    code = execute(plan(out, runs, timeout=10))  # a hang is cut after 10 s without a finished block
    assert code == 1  # a requested backend did not finish
    rows = {(r["backend"], r["mode"]): r for r in read(out / "timings.csv")}
    assert len(rows) == len(runs)
    assert rows["fake", "ok"]["status"] == "ok" and float(rows["fake", "ok"]["step_ms_median"]) > 0
    assert rows["fake", "crash"]["status"] == "failed" and "deliberate crash" in rows["fake", "crash"]["note"]
    assert "RuntimeError: deliberate crash" in (out / "logs" / "fake-crash.log").read_text()
    for mode, sig in (("segfault", signal.SIGSEGV), ("killed", signal.SIGKILL)):
        assert rows["fake", mode]["status"] == "failed" and f"code {-sig}" in rows["fake", mode]["note"]
    assert rows["fake", "hang"]["status"] == "failed" and "no step finished in 10 s" in rows["fake", "hang"]["note"]
    assert rows["fake", "diverge"]["status"] == "diverged" and "at step 3" in rows["fake", "diverge"]["note"]
    absent, gone = rows["absent", "x"], rows["gone", "x"]
    assert absent["status"] == "unavailable" and "pip install 'ganbench[absent]'" in absent["note"]
    assert gone["status"] == "unavailable" and "not_a_real_framework_ganbench" in gone["note"]
    losses = pd.read_csv(out / "losses.csv")
    assert losses[["d_loss", "g_loss"]].notna().all().all()  # no NaN row slipped through
    assert losses.groupby("mode").size().to_dict() == {"ok": 6, "diverge": 3}
    assert json.loads((out / "env.json").read_text())["complete"]


DRIVER = """
import json, sys
import backends
from tests.fake_backends import fake_registry
from bench.run.plan import Plan
from bench.run.runner import execute
backends.REGISTRY.update(fake_registry())
plan = Plan.from_dict(json.loads(open(sys.argv[1]).read()))
sys.exit(execute(plan, resume=sys.argv[2] == "resume"))
"""


def test_a_run_that_keeps_stepping_outlives_the_timeout(tmp_path, fakes):
    """The timeout catches a hang (no block finished for that long), not a long run: 50 blocks
    of 0.2 s take longer than the 8 s allowed, each well within it (and the worker's start)."""
    out = tmp_path / "run"
    assert execute(plan(out, [("fake", "slow")], steps=100, timeout=8.0)) == 0
    row = read(out / "timings.csv")[0]
    assert row["status"] == "ok" and row["steps"] == "100"


def test_resume_runs_a_failed_task_again(tmp_path, fakes, monkeypatch):
    """A finished run with a failed task (a crash, a timeout) can be resumed: that task runs
    again and its row replaces the failed one; the log keeps the failure."""
    monkeypatch.setenv("GANBENCH_FAKE_FLAKY_DIR", str(tmp_path))  # "flaky" crashes on its first attempt only
    out = tmp_path / "run"
    p = plan(out, [("fake", "ok"), ("fake", "flaky")])
    assert execute(p) == 1
    assert [r["status"] for r in read(out / "timings.csv")] == ["ok", "failed"]
    assert execute(resume_plan(out), resume=True) == 0
    assert [(r["mode"], r["status"]) for r in read(out / "timings.csv")] == [("ok", "ok"), ("flaky", "ok")]
    losses = pd.read_csv(out / "losses.csv")
    assert losses.groupby("mode")["step"].apply(list).to_dict() == {"ok": list(range(6)), "flaky": list(range(6))}
    assert "deliberate crash on the first attempt" in (out / "logs" / "fake-flaky.log").read_text()
    with pytest.raises(UsageError, match="no task in it failed"):
        resume_plan(out)


def test_sigterm_keeps_valid_rows_and_resume_finishes(tmp_path):
    """SIGTERM mid-run: whole rows only, env.json says interrupted, exit 143; --resume then
    finishes from the checkpoint with the same losses as a straight run."""
    out = tmp_path / "run"
    p = plan(out, [("fake", "ok"), ("fake", "slow")], steps=40, checkpoint_every=4)
    (tmp_path / "plan.json").write_text(json.dumps(p.to_dict()))
    (tmp_path / "driver.py").write_text(DRIVER)
    cmd = [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "plan.json")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*cmd, "fresh"], cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:  # wait until the slow backend is well under way
        if line.startswith("fake-slow") and "/40 steps" in line and int(line.split("/40")[0].split()[-1]) >= 12:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    env_json = json.loads((out / "env.json").read_text())
    assert env_json["interrupted"] == "SIGTERM" and not env_json["complete"]
    assert [r["mode"] for r in read(out / "timings.csv")] == ["ok"]  # whole rows only
    assert (out / "checkpoints" / "fake-slow.npz").exists()
    r = subprocess.run([*cmd, "resume"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [r["mode"] for r in read(out / "timings.csv")] == ["ok", "slow"]
    losses = pd.read_csv(out / "losses.csv")
    slow, ok = losses[losses["mode"] == "slow"], losses[losses["mode"] == "ok"]
    assert slow["step"].tolist() == list(range(40))
    np.testing.assert_allclose(slow["d_loss"].to_numpy(), ok["d_loss"].to_numpy(), rtol=1e-12)
    assert json.loads((out / "env.json").read_text())["complete"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_a_killed_runner(tmp_path):
    """SIGKILL leaves the runner no chance to clean up (a force-cancelled Ray task, the OOM
    killer): its worker must not train on as an orphan."""
    out = tmp_path / "run"
    p = plan(out, [("fake", "hang")], timeout=300)
    (tmp_path / "plan.json").write_text(json.dumps(p.to_dict()))
    (tmp_path / "driver.py").write_text(DRIVER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "plan.json"), "fresh"],
                            cwd=ROOT, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not running_workers(str(out)):
        time.sleep(0.2)
    assert running_workers(str(out)), "the worker never started"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running_workers(str(out)):
        time.sleep(0.2)
    assert not running_workers(str(out))


def _job(tmp_path: Path, backend: str, mode: str, spec, tag: str, ckpt: Path) -> dict:
    for d in ("raw", "samples"):
        (tmp_path / d).mkdir(exist_ok=True)
    e = backends.entry(backend)
    return {"backend": backend, "module": e.module, "mode": mode, "device": "cpu", "spec": spec.to_json(),
            "tag": tag, "work_dir": str(tmp_path / "raw"), "samples_dir": str(tmp_path / "samples"),
            "checkpoint": str(ckpt)}


def _losses(tmp_path: Path, tag: str) -> dict[str, np.ndarray]:
    z = np.load(tmp_path / "raw" / f"{tag}.npz")
    return {k: z[k] for k in z.files}


@pytest.mark.parametrize("resume_in,mode", [("torch", None), ("tf", None), ("jax", None), ("torch", "func")])
def test_checkpoint_resumes_to_the_same_losses(tmp_path, resume_in, mode):
    """4 steps in torch with a checkpoint at 2, then the rest from that checkpoint in `resume_in`
    (its first mode, or `mode`), equal a straight 4-step torch run (exactly for torch eager, within
    parity tolerance across backends and modes)."""
    require("torch")
    require(resume_in)
    spec = dataclasses.replace(small_spec("wgan_gp", "mlp", batch=8, steps=4), warmup=0, block=2)
    assert worker.run(_job(tmp_path, "torch", "eager", spec, "straight", tmp_path / "none.npz"))["status"] == "ok"
    ckpt = tmp_path / "ckpt.npz"
    first = dataclasses.replace(spec, steps=2, checkpoint_every=2)
    assert worker.run(_job(tmp_path, "torch", "eager", first, "part", ckpt))["status"] == "ok"
    mode = mode or backends.entry(resume_in).modes[0]
    res = worker.run(_job(tmp_path, resume_in, mode, dataclasses.replace(spec, checkpoint_every=2), "resumed", ckpt))
    assert res["status"] == "ok" and res["resumed_from"] == 2
    want, got = _losses(tmp_path, "straight"), _losses(tmp_path, "resumed")
    tol = {"rtol": 0, "atol": 0} if (resume_in, mode) == ("torch", "eager") else {"rtol": 1e-4, "atol": 1e-6}
    for k in ("d_loss", "g_loss", "w_estimate", "gp"):
        np.testing.assert_allclose(got[k], want[k], err_msg=k, **tol)
