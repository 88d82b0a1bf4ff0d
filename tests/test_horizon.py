"""The parity horizon and the multi-seed study: distances, crossings and verdicts on fabricated
inputs whose answer is known, and the run's instruments (weight snapshots, the one-ulp nudge)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import require, small_spec

from bench.analysis import horizon, seeds
from bench.core.files import save_arrays
from bench.core.nets import ARCHS, init_weights, nudged, param_shapes
from bench.run.plan import Plan
from bench.run.rundir import SUBDIRS
from bench.run.runner import execute
from bench.tools import runs


def curve(dist: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(len(dist)), np.asarray(dist)


def trace(label: str, loss: list[float], weights: list[float]) -> horizon.Trace:
    return horizon.Trace(label, {"loss": curve(loss), "weights": curve(weights)})


def test_a_loss_distance_is_scaled_by_the_references_recent_size_not_its_value_at_a_zero_crossing():
    ref = np.array([2.0, -2.0, 2.0, 0.0])  # crosses zero at the last step
    scale = horizon.trailing_scale(ref, window=2)
    np.testing.assert_allclose(scale, [2.0, 2.0, 2.0, 1.0])
    run = {"step": np.arange(4), "d_loss": ref + [0.0, 0.02, 0.0, 0.01], "g_loss": ref.copy()}
    steps, dist = horizon.loss_distance(run, {"step": np.arange(4), "d_loss": ref, "g_loss": ref})
    np.testing.assert_allclose(dist[:3], [0.0, 0.01, 0.0])
    assert dist[3] == pytest.approx(0.01 / horizon.trailing_scale(ref)[3])


def test_the_first_crossing_of_each_threshold_is_found_and_an_unreached_one_is_none():
    steps, dist = curve([1e-7, 5e-5, 2e-4, 1e-4, 3e-3, 0.2])
    assert [horizon.crossing(steps, dist, th) for th in horizon.THRESHOLDS] == [2, 4, 5, 5]
    assert horizon.crossing(steps, dist, 1.0) is None


def test_a_run_that_leaves_the_rounding_baseline_early_is_named_with_quantity_step_and_threshold():
    base = trace("baseline", [1e-5, 2e-4, 2e-3, 2e-2, 0.2, 0.2, 0.2, 0.2], [0.0] * 8)
    same = trace("same", [1e-6, 1e-5, 2e-4, 2e-3, 2e-2, 0.2, 0.2, 0.2], [0.0] * 8)  # one step later: fine
    early = trace("early", [1e-5, 2e-4, 2e-3, 2e-2, 0.2, 0.2, 0.2, 0.2], [0.0, 2e-4, 0.0, 0, 0, 0, 0, 0])
    assert horizon.verdict(same, [base], 8) == "tracks the rounding baseline"
    assert horizon.leaves(early, [base], 8) == ["weights reaches 1e-04 at step 1 (baseline: not within 8)"]
    assert horizon.verdict(early, [base], 8).startswith("leaves the baseline early: weights reaches 1e-04 at step 1")


def test_a_run_is_judged_against_the_earliest_of_several_rounding_only_runs():
    """One baseline run can meet a discrete event (a kink crossed, a noise-sized gradient made a
    full step) early and another late: the earliest crossing of any of them is the bar."""
    late = trace("late", [1e-6] * 8, [0.0] * 8)
    soon = trace("soon", [1e-6] * 8, [0.0, 2e-4, 2e-4, 0, 0, 0, 0, 0])
    early = trace("early", [1e-6] * 8, [0.0, 2e-4, 0.0, 0, 0, 0, 0, 0])
    assert horizon.leaves(early, [late], 8) == ["weights reaches 1e-04 at step 1 (baseline: not within 8)"]
    assert horizon.verdict(early, [late, soon], 8) == "tracks the rounding baseline"
    assert horizon.verdict(early, [soon, late], 8) == "tracks the rounding baseline"


def test_weight_distance_is_relative_over_both_nets(tmp_path):
    for run, scale in (("ref", 1.0), ("run", 1.001)):
        (tmp_path / run / "raw" / "t.snapshots").mkdir(parents=True)
        for step in (5, 10):
            save_arrays(tmp_path / run / "raw" / "t.snapshots" / f"{step:07d}.npz",
                        {"G.0.w": np.full(3, 2.0) * scale ** step, "D.0.w": np.full(1, 2.0)})
    steps, dist = horizon.weight_distance(tmp_path / "run", "t", tmp_path / "ref", "t")
    assert steps.tolist() == [5, 10]
    want = [np.linalg.norm(2.0 * (1.001 ** s - 1) * np.ones(3)) / np.linalg.norm(2.0 * np.ones(4)) for s in (5, 10)]
    np.testing.assert_allclose(dist, want)


def test_nudged_moves_every_parameter_one_float32_ulp_and_leaves_running_statistics():
    arch = ARCHS["dcgan28_small"]
    w = init_weights(arch, 0)
    n = nudged(w, arch, 1)
    for k in w:
        if k in param_shapes(arch):
            np.testing.assert_array_equal(n[k], np.nextafter(w[k], np.float32(np.inf)))
        else:
            np.testing.assert_array_equal(n[k], w[k])


def test_a_run_saves_weight_snapshots_and_a_one_ulp_nudge_changes_the_losses_at_rounding_level(tmp_path):
    require("torch")
    spec = dataclasses.replace(small_spec("wgan_gp", "mlp", batch=8, steps=4), block=2, snapshot_every=2)
    dirs = {}
    for name, ulps in (("plain", 0), ("ulp", 1)):
        dirs[name] = tmp_path / name
        plan = Plan((dataclasses.replace(spec, perturb_ulps=ulps),), (("torch", "eager"),), "cpu", dirs[name], 120.0,
                    "test", report=False)
        assert execute(plan) == 0
    assert horizon.snapshot_steps(dirs["ulp"], "torch-eager") == [2, 4]
    t = horizon.trace("ulp", dirs["ulp"], "torch-eager", dirs["plain"], "torch-eager")
    steps, loss = t.curves["loss"]
    assert steps.tolist() == [0, 1, 2, 3] and 0 < loss[0] < 1e-5
    assert 0 < t.curves["weights"][1][0] < 1e-5


def quality(values: dict[tuple[str, str], list[float]], last: int = 100) -> pd.DataFrame:
    rows = [{"backend": b, "mode": m, "seed": s, "step": step, "metric": "w1", "value": v * (2 if step < last else 1)}
            for (b, m), vs in values.items() for s, v in enumerate(vs) for step in (last // 2, last)]
    return pd.DataFrame(rows)


def test_the_seed_study_compares_final_scores_of_every_pair():
    q = quality({("torch", "eager"): [1.0, 1.02, 0.98, 1.0, 1.01, 0.99],
                 ("jax", "jit"): [1.0, 1.01, 0.99, 1.0, 1.0, 1.0],
                 ("tf", "graph"): [2.0, 2.02, 1.98, 2.0, 2.01, 1.99]})
    final = seeds.finals(q)
    assert set(final["value"]) <= {1.0, 1.02, 0.98, 1.01, 0.99, 2.0, 2.02, 1.98, 2.01, 1.99}  # the last step's only
    rows = {(r["a"], r["b"]): r for r in seeds.pairs(final)}
    assert rows["torch-eager", "jax-jit"]["verdict"] == "equivalent"
    assert rows["torch-eager", "tf-graph"]["verdict"] == "different"
    assert rows["torch-eager", "tf-graph"]["a_minus_b"] == pytest.approx(-1.0)
    assert rows["torch-eager", "tf-graph"]["margin"] == pytest.approx(0.15)
    assert seeds.by_pair(list(rows.values()))[0]["w1"].endswith("equivalent")
    one_seed = seeds.pairs(final[final["seed"] == 0])  # no interval from one value a side: undecided
    assert seeds.tally([*rows.values(), *one_seed]) == \
        "6 verdicts over 3 pairs and 1 metrics: 1 equivalent, 3 undecided, 2 different"
    assert all(r["seeds_to_decide"] is None for r in rows.values())  # decided: nothing to project
    assert [r["seeds_to_decide"] for r in one_seed] == [None] * 3  # one value: no spread to project from
    assert seeds.outlook([*rows.values(), *one_seed]) == ""  # nothing undecided with a spread to project from


def test_an_undecided_pair_says_how_many_seeds_would_decide_it():
    q = quality({("torch", "eager"): [1.0, 1.2, 0.8, 1.0, 1.2, 0.8], ("jax", "jit"): [1.0] * 6,
                 ("tf", "graph"): [1.1] * 6})
    rows = {(r["a"], r["b"]): r for r in seeds.pairs(seeds.finals(q))}
    assert rows["torch-eager", "jax-jit"]["verdict"] == "undecided"
    # differences 0, ±0.2: mean 0, spread 0.179, margin 0.1: t(0.975, 13) 0.179 / sqrt(14) = 0.103,
    # t(0.975, 14) 0.179 / sqrt(15) = 0.099
    assert rows["torch-eager", "jax-jit"]["seeds_to_decide"] == 15
    assert rows["torch-eager", "tf-graph"]["seeds_to_decide"] is None  # 0.1 apart, margin 0.105: ~5,000 seeds
    assert rows["jax-jit", "tf-graph"]["verdict"] == "equivalent"
    assert seeds.outlook(list(rows.values())) == ("If the seeds to come scattered as these did, the undecided "
                                                 "verdicts would take 15 seeds a side to decide; "
                                                 "1 of them not even 1,000 (a difference too near the margin).")


def test_a_run_cut_short_scores_its_last_evaluation_not_nothing():
    q = quality({("torch", "eager"): [1.0, 1.0]})
    q = q[~((q["seed"] == 1) & (q["step"] == 100))]  # seed 1 stopped at step 50, where it scored 2.0
    assert sorted(seeds.finals(q)["value"]) == [1.0, 2.0]


def test_a_study_resumes_a_run_a_budget_cut_short_but_not_a_finished_one(tmp_path):
    for sub in SUBDIRS:
        (tmp_path / sub).mkdir()
    (tmp_path / "env.json").write_text(json.dumps({"complete": True}))
    (tmp_path / "timings.csv").write_text("backend,mode,status\ntorch,eager,ok\njax,scan,skipped\n")
    assert not runs.complete(tmp_path)  # the skipped task still has to run
    (tmp_path / "timings.csv").write_text("backend,mode,status\ntorch,eager,ok\njax,scan,failed\n")
    assert runs.complete(tmp_path)  # a failure is a result; --resume is the user's call
    (tmp_path / "env.json").write_text(json.dumps({"complete": False, "tasks_s": 90.0}))
    assert not runs.complete(tmp_path)
    assert runs.task_minutes(tmp_path) == 1.5 and runs.task_minutes(tmp_path / "not-yet") == 0.0
