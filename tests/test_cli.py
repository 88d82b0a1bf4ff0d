"""run_bench.py end to end (a tiny run) and its refusal of bad input before any training."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, require

import backends
from bench.core import schema
from bench.run.rundir import LOSS_COLUMNS, TIMING_COLUMNS

TINY = ["--steps", "4", "--warmup", "2", "--block", "2", "--batch-size", "8"]


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_bench.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_smoke_run_writes_every_file(tmp_path):
    require("torch")
    out = tmp_path / "run"
    r = run_bench("--backends", "torch", "--modes", "eager", "--algo", "wgan_gp", *TINY, "--out", str(out))
    assert r.returncode == 0, r.stderr
    losses, timings = pd.read_csv(out / "losses.csv"), pd.read_csv(out / "timings.csv")
    assert tuple(losses.columns) == LOSS_COLUMNS and tuple(timings.columns) == TIMING_COLUMNS
    assert len(losses) == 4 and losses["step"].tolist() == [0, 1, 2, 3]
    assert losses[["d_loss", "g_loss", "w_estimate", "gp"]].notna().all().all()
    row = timings.iloc[0]
    assert row["status"] == "ok" and row["step_ms_median"] > 0 and row["framework"] == "torch"
    assert row["step_ms_min"] <= row["step_ms_median"] <= row["step_ms_max"]
    assert row["peak_gflops"] > 0 and row["achieved_gflops"] > 0 and row["pct_of_peak"] > 0  # the probe ran
    assert (out / "samples" / "torch-eager.npy").exists() and (out / "samples" / "torch-eager.png").exists()
    env = json.loads((out / "env.json").read_text())
    assert env["complete"] and "run_bench.py" in env["command"] and env["versions"]["torch"]
    assert "torch-eager" in env["backends"] and env["git_commit"] is not None
    assert "| torch | eager | ok | 1 |" in (out / "summary.md").read_text()  # one round: --steps 4 is short
    assert env["schema_version"] == schema.SCHEMA_VERSION


def test_gan_rows_leave_wasserstein_columns_empty(tmp_path):
    require("torch")
    out = tmp_path / "gan"
    r = run_bench("--backends", "torch", "--modes", "eager", "--algo", "gan", *TINY, "--no-report", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert not (out / "report.md").exists() and f"run_bench.py report {out}" in r.stdout
    losses = pd.read_csv(out / "losses.csv")
    assert losses["w_estimate"].isna().all() and losses["gp"].isna().all()
    assert losses["d_real"].between(0, 1).all()


BAD = [
    (["--backends", "torch,mxnet"], "unknown backend 'mxnet'; choose from torch, tf, jax"),
    (["--algo", "lsgan"], "unknown algorithm 'lsgan'; choose from gan, wgan, wgan_gp"),
    (["--arch", "resnet"], "unknown architecture 'resnet'; choose from mlp, mlp_z10, toy_mlp, dcgan28"),
    (["--dataset", "cifar"], "unknown data set 'cifar'; choose from mnist, svhn, celeba, 8gaussians"),
    (["--preset", "seed999"], "unknown preset 'seed999'; choose from seed000-wgan-gp-svhn, seed001-gan-mlp-mnist"),
    (["--preset", "seed000-wgan-gp-svhn"], "put train_32x32.mat (SVHN) in a directory and pass --data-dir DIR"),
    (["--preset", "paper-wgan"], "put img_align_celeba/ (CelebA's aligned JPEGs) in a directory"),
    (["--preset", "paper-wgan-gp-mnist"], "or pass --embedded-mnist for the 5,000-image subset"),
    (["--dataset", "svhn", "--embedded-mnist"], "--embedded-mnist is for the mnist data set"),
    (["--arch", "dcgan32", "--dataset", "mnist"], "dcgan32 does not fit data set mnist; use mlp, mlp_z10, dcgan28,"),
    (["--modes", "turbo"], "unknown mode 'turbo'"),
    (["--backends", "torch", "--modes", "scan"], "selects no mode of torch (it has eager, compile, func)"),
    (["--steps", "0"], "--steps must be positive"),
    (["--batch-size", "-4"], "--batch-size must be positive"),
    (["--n-critic", "0"], "--n-critic must be positive"),
    (["--gp-lambda", "-1"], "--gp-lambda must be positive"),
    (["--algo", "wgan", "--clip", "-0.01"], "--clip must be positive"),
    (["--arch", "toy_mlp", "--dataset", "mnist"], "architecture toy_mlp does not fit data set mnist; use mlp"),
    (["--steps", "10", "--warmup", "10"], "leaves no timed step of --steps 10: --warmup at most 8 works with "
                                          "--block 2, or leave both out"),
    (["--steps", "2", "--warmup", "1", "--block", "2"], "no block would be timed; --block at most 1 works with "
                                                        "--warmup 1, --warmup at most 0 works with --block 2"),
    (["--repeats", "0"], "--repeats must be positive, got 0"),
    (["--data-dir", "/nonexistent/mnist"], "is not a directory"),
    (["--devices", "0"], "--devices takes distinct positive integers, got '0'"),
    (["--devices", "1,1"], "--devices takes distinct positive integers"),
    (["--devices", "two"], "--devices takes a comma list of positive integers, got 'two'"),
    (["--devices", "1,3", "--batch-size", "64"], "batch size 64 does not split evenly over 3 devices"),
    (["--ray", "--ray-address", "ray://head:10001"], "pass one of them"),
    (["--backends", "torch,torch"], "--backends names torch more than once"),
    (["--backends", "torch", "--modes", "eager,eager"], "--modes names eager more than once"),
    (["--modes", "all,eager"], "--modes all stands alone"),
    (["--modes", "default,eager"], "--modes default stands alone"),
    (["--timeout", "nan"], "--timeout must be a finite number, got nan"),
    (["--timeout", "inf"], "--timeout must be a finite number, got inf"),
    (["--timeout", "-1"], "--timeout must be positive"),
    (["--gp-lambda", "nan"], "--gp-lambda must be a finite number"),
    (["--algo", "wgan", "--clip", "inf"], "--clip must be a finite number"),
    (["--seed", "-1"], "--seed must not be negative"),
    (["--seeds", "1,-2"], "--seeds needs distinct non-negative integers"),
    (["--eval-samples", "0"], "--eval-samples must be positive"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must not be negative"),
    (["--snapshot-every", "-5"], "--snapshot-every must not be negative"),
    (["--perturb-ulps", "-1"], "--perturb-ulps must not be negative"),
    (["--algo", "gan", "--gp-lambda", "10"], "--gp-lambda is a setting of wgan_gp; gan has none"),
    (["--algo", "wgan_gp", "--clip", "0.01"], "--clip is a setting of wgan; wgan_gp has none"),
    (["--preset", "paper-wgan-gp-toy", "--clip", "0.01"], "--clip is a setting of wgan; wgan_gp has none"),
    (["--suite", "standard", "--gp-lambda", "5", "--batch-size", "8"], "drop --batch-size, --gp-lambda"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_exits_before_training(tmp_path, capsys, args, message):
    """In process, since main() is all run_bench.py runs; the exit status itself is checked below."""
    from bench.run import cli

    out = tmp_path / "never"
    assert cli.main([*args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_input_exit_status_of_the_script(tmp_path):
    out = tmp_path / "never"
    r = run_bench("--backends", "torch,mxnet", "--out", str(out), timeout=60)
    assert r.returncode == 2 and "unknown backend 'mxnet'" in r.stderr and not out.exists()


def test_list_presets_names_every_source():
    r = run_bench("--list-presets", timeout=60)
    assert r.returncode == 0
    for name in ("seed000-wgan-gp-svhn", "seed004-wgan-dcgan-mnist", "paper-wgan-gp-toy", "paper-wgan"):
        assert name in r.stdout
    assert "clip 0.04 before each critic update" in r.stdout and "source: seeds/004" in r.stdout


def test_existing_run_directory_is_never_overwritten(tmp_path):
    out = tmp_path / "done"
    out.mkdir()
    (out / "losses.csv").write_text("precious\n")
    r = run_bench("--backends", "torch", "--out", str(out), timeout=60)
    assert r.returncode == 2 and "exists and is not empty" in r.stderr
    assert (out / "losses.csv").read_text() == "precious\n"


@pytest.mark.parametrize("suite,n,archs", [("standard", 18, {"mlp", "toy_mlp"}),
                                           ("conv", 6, {"dcgan28", "dcgan28_small"}),
                                           ("gpu", 27, {"mlp", "dcgan32", "dcgan64"})])
def test_suite_plans_every_setup_and_mode(tmp_path, suite, n, archs):
    from bench.core import suites
    from bench.run import cli

    argv = ["--suite", suite, "--out", str(tmp_path / "s")]
    plan = cli.plan_from_args(cli.parser().parse_args(argv), ["run_bench.py", *argv])
    assert len(plan.specs) == n and {s.arch for s in plan.specs} == archs
    assert {s.batch_size for s in plan.specs} == set(suites.BATCHES)
    assert len(plan.runs) == sum(len(e.modes) for e in backends.REGISTRY.values())
    assert plan.repeats == 1  # 40 steps a setup: too short for timing rounds to be cheap beside them


def test_progress_in_a_log_prints_each_quarter_and_at_least_every_minute(monkeypatch, capsys):
    from bench.run import procs as runner

    clock = [0.0]
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(runner.sys.stderr, "isatty", lambda: False)
    p = runner.Progress("torch-eager")
    for step, t in [(10, 1.0), (20, 2.0), (25, 3.0), (30, 4.0), (40, 4.0 + p.LOG_EVERY_S), (41, 70.0), (100, 71.0)]:
        clock[0] = t
        p.update(step, 100, 1.0, 0.0)
    steps = [line.split()[2] for line in capsys.readouterr().err.splitlines()]
    # a new quarter at 10 (from none), 25 and 100; 40 only because a minute passed without a line
    assert steps == ["10/100", "25/100", "40/100", "100/100"]


def test_cli_starts_without_plotting_or_data_frame_libraries():
    """Refusing bad input, --help and the worker launch should not wait for matplotlib or pandas."""
    code = "import sys, bench.run.cli; print(sorted({'matplotlib', 'pandas'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def _plan(*argv: str):
    from bench.run import cli

    return cli.plan_from_args(cli.parser().parse_args(list(argv)), ["run_bench.py", *argv])


@pytest.mark.parametrize("steps,warmup,block", [(1, 0, 1), (2, 1, 1), (5, 2, 1), (10, 4, 2), (30, 14, 7),
                                                (40, 20, 10), (2000, 20, 10)])
def test_warmup_and_block_follow_the_steps(tmp_path, steps, warmup, block):
    """Any --steps times at least one whole block after its warm-up; long runs get 20 / 10."""
    (spec,) = _plan("--steps", str(steps), "--out", str(tmp_path / "r")).specs
    assert (spec.warmup, spec.block) == (warmup, block)
    assert spec.warmup <= (steps - 1) // block * block  # the last block starts after the warm-up


def test_explicit_warmup_or_block_is_kept(tmp_path):
    (spec,) = _plan("--steps", "10", "--block", "5", "--out", str(tmp_path / "r")).specs
    assert (spec.warmup, spec.block) == (5, 5)
    (spec,) = _plan("--steps", "10", "--warmup", "0", "--out", str(tmp_path / "r")).specs
    assert (spec.warmup, spec.block) == (0, 2)


def test_repeats_are_planned_round_after_round(tmp_path):
    from bench.run import plan as plan_module

    plan = _plan("--backends", "torch,jax", "--repeats", "3", "--out", str(tmp_path / "r"))
    ts = plan_module.tasks(plan)
    n = len(plan.runs)
    assert [t.repeat for t in ts] == [r for r in range(3) for _ in range(n)]
    assert [(t.backend, t.mode) for t in ts] == list(plan.runs) * 3  # A B C A B C ...
    train, timing = ts[0].spec, ts[n].spec
    assert train.steps == 2000 and timing.steps == train.warmup + plan_module.REPEAT_BLOCKS * train.block
    assert timing.eval_every == 0 and ts[n].tag == f"{ts[0].tag}-r1"
    assert _plan("--out", str(tmp_path / "d")).repeats == 3  # the main command's default
    assert _plan("--steps", "10", "--out", str(tmp_path / "s")).repeats == 1  # a short run: one round


def test_ten_steps_in_two_rounds_end_to_end(tmp_path):
    """--steps 10 with no other timing flag runs, times what it can, and says how much; a second
    round times blocks only, and the summary reports the median over both rounds."""
    require("torch")
    out = tmp_path / "ten"
    r = run_bench("--backends", "torch", "--modes", "eager", "--steps", "10", "--batch-size", "8", "--repeats", "2",
                  "--no-report", "--out", str(out))
    assert r.returncode == 0, r.stderr
    timings, blocks = pd.read_csv(out / "timings.csv"), pd.read_csv(out / "blocks.csv")
    assert tuple(blocks.columns) == schema.names("blocks.csv")
    assert timings["repeat"].tolist() == [0, 1] and (timings["timed_steps"] == 6).all()
    assert blocks.groupby("repeat")["timed"].sum().tolist() == [3, 3]
    assert len(pd.read_csv(out / "losses.csv")) == 10  # round 1's losses are round 0's again: not recorded
    assert not (out / "samples" / "torch-eager-r1.png").exists()
    assert "| torch | eager | ok | 2 |" in r.stdout and "Fastest mode of each framework" in r.stdout
