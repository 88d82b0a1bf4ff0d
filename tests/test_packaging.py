"""A non-editable install works away from the checkout: every package and asset is in the
wheel, and results land under the caller's ./results."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
from conftest import ROOT, require


def test_installed_package_runs_from_any_directory(tmp_path):
    require("torch")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(ROOT)], check=True, timeout=300, capture_output=True)
    assert (site / "bench" / "analysis" / "assets" / "mnist_mlp.npz").is_file()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    # the installed copy only: the checkout is neither the working directory nor on the path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import bench, backends; print(bench.__file__, backends.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(w.startswith(str(site)) for w in where), where
    r = subprocess.run([sys.executable, "-m", "bench", "run", "--backends", "torch", "--modes", "eager",
                        "--steps", "3", "--warmup", "1", "--block", "1", "--batch-size", "8"],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (cwd / "results").iterdir()
    t = pd.read_csv(run / "timings.csv")
    assert list(t["status"]) == ["ok"]
    assert (run / "quality.csv").is_file()  # the classifier's weights came with the wheel
