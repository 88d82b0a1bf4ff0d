"""report.build on run directories written here (CSVs in the documented columns) and on a real tiny run."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from bench.analysis import report
from bench.analysis.quality import QUALITY_COLUMNS
from bench.core.spec import WGAN, RunSpec
from bench.run.rundir import LOSS_COLUMNS, TIMING_COLUMNS

SPEC = RunSpec(WGAN, "toy_mlp", "8gaussians", 16, 6, warmup=0, eval_every=3)
RUNS = (("torch", "eager", "ok"), ("jax", "jit", "ok"), ("tf", "graph", "failed"))


def _images(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


def write_run(d: Path, device: str, seeds: tuple[int, ...], quality: bool, new_env: bool,
              spec: RunSpec = SPEC) -> Path:
    """A run directory as the runner writes it: jax differs from torch by 1e-6, tf failed at once."""
    for sub in ("samples", "raw"):
        (d / sub).mkdir(parents=True)
    env = {"device": device, "python": "3.x", "versions": {"numpy": np.__version__}, "complete": True,
           "backends": {"torch-eager": {"threads": "2"}}}
    env.update({"plan": {"specs": [json.loads(spec.to_json())]}} if new_env else {"spec": json.loads(spec.to_json())})
    (d / "env.json").write_text(json.dumps(env))
    losses, timings, qual = [], [], []
    for seed in seeds:
        for k, (backend, mode, status) in enumerate(RUNS):
            base = {"backend": backend, "mode": mode, "algo": "wgan", "arch": "toy_mlp", "dataset": "8gaussians",
                    "batch_size": spec.batch_size, "seed": seed}
            ok = status == "ok"
            timings.append({**base, "status": status, "device": device, "steps": 6 if ok else 0,
                            **({"step_ms_median": 2.0 + k, "step_ms_min": 1.5 + k, "step_ms_max": 3.0 + k}
                               if ok else {"note": "RuntimeError: boom | see log"})})
            if not ok:
                continue
            tag = f"{backend}-{mode}" + (f"-seed{seed}" if len(seeds) > 1 else "")
            job = {"backend": backend, "mode": mode, "tag": tag, "spec": dataclasses.replace(spec, seed=seed).to_json()}
            (d / "raw" / f"{tag}.job.json").write_text(json.dumps(job))
            for step in range(6):
                v = 2 + np.sin(step + seed) + 1e-6 * k  # smallest at step + seed = 5
                losses.append({**base, "step": step, "d_loss": v, "g_loss": -v, "w_estimate": 2 * v,
                               "d_real": v, "d_fake": -v})
            qual += [{**base, "step": step, "wall_s": step / 10, "metric": metric, "value": value + seed}
                     for step in (3, 6) for metric, value in (("w1", 1 / step), ("modes", step + 2))]
            rng = np.random.default_rng(seed)
            np.save(d / "samples" / f"{tag}.npy", rng.normal(size=(64, 2)).astype(np.float32))
            np.save(d / "samples" / f"{tag}.interp.npy", rng.normal(size=(4, 10, 2)).astype(np.float32))
            np.savez(d / "raw" / f"{tag}.final.npz", **{"D.0.w": rng.uniform(-0.01, 0.01, (2, 512)),
                                                        "D.0.b": np.zeros(512), "D.0.w:v": np.ones((2, 512))})
    for name, cols, rows in (("losses", LOSS_COLUMNS, losses), ("timings", TIMING_COLUMNS, timings),
                             ("quality", QUALITY_COLUMNS, qual if quality else [])):
        if rows:
            pd.DataFrame(rows).reindex(columns=cols).to_csv(d / f"{name}.csv", index=False)
    return d


def check_links(path: Path) -> str:
    md = path.read_text()
    images = _images(md)
    assert images and all((path.parent / p).is_file() for p in images), images
    return md


def test_report_of_one_run_with_seeds(tmp_path):
    run = write_run(tmp_path / "run", "cpu", (0, 1, 2), quality=True, new_env=True)
    md = check_links(report.build([run], run))
    parity = report.parity_table(report._merged(report.load_runs([run]), "losses"))
    assert list(parity["backend"]) == ["jax"] and parity["steps"].iloc[0] == 6
    abs_diff, rel_diff = (float(x) for x in parity["d_loss (abs / rel)"].iloc[0].split(" / "))
    assert abs_diff == pytest.approx(1e-6, rel=1e-2) and rel_diff == pytest.approx(1e-6 / (2 + np.sin(5)), rel=1e-2)
    assert "w1" in md and "±" in md  # final quality, mean ± std over the three seeds
    assert "failed" in md and "boom / see log" in md  # the failed row, its note made table-safe
    for section in ("Step time", "Losses and parity", "Quality", "Samples", "Latent interpolation", "Critic weights",
                    "Environment"):
        assert f"## {section}" in md


def test_report_merges_runs_and_survives_missing_files(tmp_path):
    cpu = write_run(tmp_path / "cpu-run", "cpu", (0,), quality=True, new_env=False)
    gpu = write_run(tmp_path / "gpu-run", "gpu", (0,), quality=False, new_env=True)
    (gpu / "losses.csv").unlink()
    out = report.build([cpu, gpu], tmp_path / "merged")
    md = check_links(out)
    assert "| gpu | torch | eager |" in md and "| cpu | torch | eager |" in md
    assert "| cpu | jax | jit | cpu/torch-eager |" in md  # parity row of the cpu run only


def test_report_keeps_setups_apart(tmp_path):
    small = write_run(tmp_path / "b16", "cpu", (0,), quality=True, new_env=True)
    large = write_run(tmp_path / "b32", "cpu", (0,), quality=True, new_env=True,
                      spec=dataclasses.replace(SPEC, batch_size=32))
    md = check_links(report.build([small, large], tmp_path / "merged"))
    for section in md.split("\n## ")[1:4]:  # step time, losses and parity, quality: one sub-section per setup
        assert "### wgan / toy_mlp / 8gaussians / batch 16" in section and "batch 32" in section
    assert len(list((tmp_path / "merged" / "plots").glob("samples-*.png"))) == 2


def test_report_without_quality_or_env(tmp_path):
    run = write_run(tmp_path / "old", "cpu", (0,), quality=False, new_env=False)
    (run / "env.json").unlink()
    md = check_links(report.build([run], run))
    assert "_no quality.csv in these runs_" in md


def test_report_of_a_real_tiny_run(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "run_bench.py", "--backends", "torch", "--modes", "eager", "--steps", "4",
           "--warmup", "2", "--block", "2", "--batch-size", "8", "--out", str(out)]
    pytest.importorskip("torch")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = check_links(report.build([out], out))
    assert "| cpu | torch | eager |" in md
