"""bench.tools.evidence's verdicts: the goals at the final evaluation, and their record over the run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import ROOT, require

from bench.tools import evidence
from bench.tools.runs import output_of

TOY = next(s for s in evidence.SETUPS if s.dataset == "8gaussians")


def _quality(record: list[tuple[int, float, float]]) -> pd.DataFrame:
    rows = [{"step": step, "metric": m, "value": v} for step, modes, w1 in record for m, v in (("modes", modes),
                                                                                               ("w1", w1))]
    return pd.DataFrame(rows)


def test_goals_are_judged_at_the_end_and_recorded_from_their_first_meeting():
    q = _quality([(500, 8, 0.3), (1000, 8, 0.12), (1500, 6, 0.11), (2000, 8, 0.10)])
    assert evidence.verdict(TOY, evidence.final_metrics(q))
    assert evidence.goal_history(TOY, q) == {"first_met": 1000, "held_after": "2/3"}
    q = _quality([(500, 8, 0.3), (1000, 8, 0.12), (1500, 7, 0.11)])
    assert not evidence.verdict(TOY, evidence.final_metrics(q))
    assert evidence.goal_history(TOY, q) == {"first_met": 1000, "held_after": "1/2"}


def test_a_missing_metric_or_a_goal_never_met_is_a_miss():
    q = _quality([(500, 7, 0.1), (1000, 8, 0.2)])
    assert evidence.goal_history(TOY, q) == {"first_met": "never", "held_after": ""}
    assert not evidence.verdict(TOY, {"modes": 8})


# A stand-in for the runner: closes slowly on SIGTERM, so that only a caller that waits sees "closed".
RUNNER = """
import pathlib, signal, sys, time
flag = pathlib.Path(sys.argv[1])
def close(*_):
    time.sleep(1)
    flag.write_text("closed")
    sys.exit(143)
signal.signal(signal.SIGTERM, close)
flag.write_text("running")
time.sleep(60)
"""
STUDY = "import sys; from bench.tools.runs import {0}; {0}([sys.executable, '-c', *sys.argv[1:]])"


@pytest.mark.parametrize("call", ["run_to_end", "output_of"])
def test_a_stopped_study_stops_its_run_and_waits_for_it(tmp_path, call):
    """SIGTERM to a study (the evidence tool; overhead and profile_step keep their child's
    output) reaches the run it started, which closes its files; the study ends after it, with
    143, and leaves no runner behind."""
    flag = tmp_path / "runner"
    study = subprocess.Popen([sys.executable, "-c", STUDY.format(call), RUNNER, str(flag)], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    study.send_signal(signal.SIGTERM)
    assert study.wait(timeout=60) == 143
    assert flag.read_text() == "closed"


def test_output_of_keeps_both_streams_and_the_exit_status():
    r = output_of([sys.executable, "-c", "import sys; print('out é'); print('err', file=sys.stderr); sys.exit(3)"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out é\n", "err\n")


def test_the_seeds_study_trains_scores_compares_and_then_only_reports(tmp_path):
    """The study's driver end to end, tiny: two seeds of jax's two default modes on the toy
    preset, 4 steps. A second call finds the run complete and trains nothing."""
    require("jax")
    cmd = [sys.executable, "-m", "bench.tools.evidence", "--seeds", "2", "--setups", "wgan_gp-8gaussians",
           "--steps", "4", "--backends", "jax", "--device", "cpu", "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    q = pd.read_csv(tmp_path / "wgan_gp-8gaussians" / "quality.csv")
    assert sorted(set(zip(q["mode"], q["seed"], strict=True))) == [("jit", 0), ("jit", 1), ("scan", 0), ("scan", 1)]
    pairs = pd.read_csv(tmp_path / "seeds.csv")
    assert list(zip(pairs["a"], pairs["b"], strict=True)) == [("jax-jit", "jax-scan")] * 3
    assert set(pairs["metric"]) == {"w1", "modes", "hq_frac"}
    # two seeds: no interval yet; jit and scan train the same numbers, so six seeds would decide
    assert pairs["verdict"].str.startswith("undecided: no interval").all()
    assert pairs["seeds_to_decide"].dtype.kind == "i" and (pairs["seeds_to_decide"] == 6).all()
    assert "wgan_gp-8gaussians, 4 steps" in (tmp_path / "seeds.md").read_text(encoding="utf-8")
    assert (tmp_path / "seeds-wgan_gp-8gaussians.png").stat().st_size > 0
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "bench run" not in again.stderr, again.stderr[-3000:]
