"""`ganbench compare BASE NEW` on fabricated run directories, and on the committed reference runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from bench.analysis import compare, report
from bench.core import schema
from bench.run.rundir import RunDir

ROWS = (("torch", "eager", 20.0), ("jax", "jit", 8.0))
SETUP = {"algo": "wgan_gp", "arch": "mlp", "dataset": "mnist", "batch_size": 64, "devices": 1, "seed": 0}
VERSIONS = {"numpy": "2.0", "torch": "2.13.0", "jax": "0.10.2"}
REFERENCE = ROOT / "results" / "reference"


def fake_run(d: Path, scale: float = 1.0, noise: float = 0.03, rng_seed: int = 0, loss_scale: float = 1.0,
             versions: dict | None = None, rounds: int = 3, blocks: int = 20) -> Path:
    """A run as the runner writes it: `rounds` interleaved rounds of `blocks` timed blocks, each
    block's ms/step the row's time x scale with relative noise; 50 steps of losses; final quality."""
    rng = np.random.default_rng(rng_seed)
    run = RunDir(d)
    run.write_json("env.json", {"schema_version": schema.SCHEMA_VERSION, "device": "cpu", "cpu": "a CPU",
                                "versions": versions or VERSIONS, "complete": True})
    for backend, mode, ms in ROWS:
        base = {"backend": backend, "mode": mode, **SETUP}
        for r in range(rounds):
            times = ms * scale * (1 + noise * rng.standard_normal(blocks))
            run.append("blocks.csv", schema.names("blocks.csv"), [
                {**base, "repeat": r, "start": 10 * i, "steps": 10, "ms_per_step": t, "timed": 1}
                for i, t in enumerate(times)])
            run.append("timings.csv", schema.names("timings.csv"), [
                {**base, "repeat": r, "status": "ok", "steps": 10 * blocks, "device": "cpu", "threads": 2,
                 "precision": "fp32", "step_ms_median": float(np.median(times))}])
        steps = np.arange(50)
        run.append("losses.csv", schema.names("losses.csv"), [
            {**base, "step": int(s), "d_loss": loss_scale * np.cos(s / 7), "g_loss": loss_scale * np.sin(s / 5)}
            for s in steps])
        run.append("quality.csv", schema.names("quality.csv"), [
            {**base, "step": 50, "wall_s": 1.0, "metric": "classes", "value": 10 if loss_scale == 1 else 9}])
    return d


def run_compare(tmp_path: Path, base: Path, new: Path, *flags: str) -> tuple[int, str]:
    """compare.main in process (what `ganbench compare` runs); its exit status and the markdown."""
    out = tmp_path / f"cmp-{base.name}-{new.name}"
    rc = compare.main([str(base), str(new), "--out", str(out), *flags])
    return rc, (out / "compare.md").read_text() if (out / "compare.md").exists() else ""


def test_identical_runs_pass_and_say_so(tmp_path):
    base = fake_run(tmp_path / "base")
    new = tmp_path / "new"
    shutil.copytree(base, new)
    rc, md = run_compare(tmp_path, base, new, "--max-slowdown", "5")
    assert rc == 0
    assert md.count("same within noise") == 2 and "FAIL |" not in md
    assert md.count("| identical | yes (same seed and versions) |") == 2
    assert "10 → 10 (+0)" in md and "| results schema version |" not in md  # nothing in the env differs
    assert (tmp_path / "cmp-base-new" / "compare.png").stat().st_size > 0


def test_a_run_1_5x_slower_fails_the_gate(tmp_path):
    base, new = fake_run(tmp_path / "base"), fake_run(tmp_path / "new", scale=1.5, rng_seed=1)
    rc, md = run_compare(tmp_path, base, new, "--max-slowdown", "10")
    assert rc == 1
    assert md.count("| slower | FAIL |") == 2 and "FAILED: --max-slowdown 10%" in md
    assert run_compare(tmp_path / "more", base, new, "--max-slowdown", "60")[0] == 0  # 1.5x is within 60%
    assert run_compare(tmp_path / "none", base, new)[0] == 0  # without the gate, a report only


def test_noise_alone_passes(tmp_path):
    """The same times with fresh noise: no verdict, no failure, even with a 0% allowance."""
    base, new = fake_run(tmp_path / "base", noise=0.1), fake_run(tmp_path / "new", noise=0.1, rng_seed=7)
    rc, md = run_compare(tmp_path, base, new, "--max-slowdown", "0")
    assert rc == 0 and md.count("same within noise") == 2


def test_different_losses_and_versions_are_reported(tmp_path):
    base = fake_run(tmp_path / "base")
    new = fake_run(tmp_path / "new", loss_scale=1.001, versions={**VERSIONS, "torch": "2.14.0"})
    rc, md = run_compare(tmp_path, base, new)
    assert rc == 0
    assert md.count("differ: max rel 0.001 | no (versions differ) |") == 2
    assert "10 → 9 (-1)" in md
    assert "| torch | 2.13.0 | 2.14.0 |" in md and "| numpy |" not in md


def test_a_newer_schema_is_refused(tmp_path, capsys):
    base, new = fake_run(tmp_path / "base"), fake_run(tmp_path / "new")
    env = json.loads((new / "env.json").read_text())
    (new / "env.json").write_text(json.dumps({**env, "schema_version": schema.SCHEMA_VERSION + 1}))
    rc, _ = run_compare(tmp_path, base, new)
    assert rc == 2
    err = capsys.readouterr().err
    assert f"results schema version {schema.SCHEMA_VERSION + 1}" in err and "update ganbench" in err


def test_not_a_run_directory_is_refused(tmp_path, capsys):
    base = fake_run(tmp_path / "base")
    assert compare.main([str(base), str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "has no timings.csv" in capsys.readouterr().err and not (tmp_path / "c").exists()


LAYOUTS = sorted(p.parent for p in REFERENCE.rglob("timings.csv"))


@pytest.mark.parametrize("run", LAYOUTS, ids=[str(p.relative_to(REFERENCE)) for p in LAYOUTS])
def test_every_committed_layout_reads(run):
    """report and compare read every run committed under results/reference/, whatever its layout."""
    (loaded,) = report.load_runs([run])
    assert loaded.version in schema.LAYOUTS and not loaded.tables["timings"].empty
    assert "Fastest mode of each framework" in report.summary([run])
    speed, _, failed = compare.speed_table(loaded, loaded, 5.0)
    assert not failed and not speed.empty and (speed["new / base [95% CI]"].str.startswith("1 ")).all()


def test_the_console_command_compares_the_reference_runs(tmp_path):
    """The README's example: the 2-core CPU against the H100 (layout 0 both: no block times)."""
    base, new = REFERENCE / "cpu-2core" / "wgan_gp-mlp-mnist", REFERENCE / "nvidia-h100" / "wgan_gp-mlp-mnist"
    r = subprocess.run([sys.executable, "run_bench.py", "compare", str(base), str(new), "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "| jax | scan |" in r.stdout and "NVIDIA H100" in r.stdout and "differ: max rel" in r.stdout
