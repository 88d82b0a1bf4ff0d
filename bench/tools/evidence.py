"""Evidence that every backend learns, not only that they agree: WGAN-GP on 8gaussians and MNIST.

A benchmark script, run by hand (40-60 minutes per backend on a 2-core CPU, minutes on a GPU):

    python -m bench.tools.evidence                      # every installed backend, first default mode
    python -m bench.tools.evidence --quick              # 20 steps each: checks the plumbing only

Each (data set, backend) trains in its own run_bench.py process and run directory under
--out, with quality scored every --eval-every steps. Then one report.md over all of them
is built in --out, and a table of final metrics is printed beside the real data's own
scores, with the goals:

    8gaussians  all 8 modes covered and W1 <= 0.15 (real data: W1 0.07, the floor)
    mnist       all 10 digit classes covered and KL from uniform <= 0.1; that the digits
                are recognisable shows in the report's samples figure

Exit status 0 only if every backend met every goal.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import operator
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import backends
from bench import default_results
from bench.analysis import classifier, quality, report, tables
from bench.core import data as datasets
from bench.core.files import read_text
from bench.core.spec import RunSpec


@dataclass(frozen=True)
class Setup:
    dataset: str
    steps: int
    eval_every: int
    goals: dict[str, tuple[str, float]]  # metric -> (">=" or "<=", bound)
    args: tuple[str, ...] = ("--algo", "wgan_gp")


SETUPS = (
    # gan_toy.py's own settings: its lambda 0.1, not the paper's 10 ("smaller lambda seems to help
    # for toy tasks"; measured here: with 10, W1 still ~1.3 after 500 steps, with 0.1 it is 0.18).
    # 8,000 of its 100,000 iterations: at 2,000 the samples sit on all 8 modes but not yet within 3 std,
    # so the strict mode count swings between evaluations; by 4,000-5,000 they are tight.
    Setup("8gaussians", 8000, 500, {"modes": (">=", 8), "w1": ("<=", 0.15)}, ("--preset", "paper-wgan-gp-toy")),
    Setup("mnist", 10000, 1000, {"classes": (">=", 10), "kl_uniform": ("<=", 0.1)}),
)
QUICK_STEPS, QUICK_EVAL = 20, 10
COMPARE = {">=": operator.ge, "<=": operator.le}


def available(names: list[str]) -> list[tuple[str, str]]:
    """(backend, its first default mode) for each requested backend whose framework is installed."""
    out = []
    for name in names:
        e = backends.entry(name)
        if importlib.util.find_spec(e.framework) is None:
            print(f"skipping {name}: {e.framework} is not installed ({e.install})", file=sys.stderr)
        else:
            out.append((name, e.default_modes[0]))
    return out


def train(setup: Setup, backend: str, mode: str, steps: int, eval_every: int, device: str, out: Path) -> Path:
    run_dir = out / f"{setup.dataset}-{backend}-{mode}"
    cmd = [sys.executable, "-m", "bench", "run", "--backends", backend, "--modes", mode, *setup.args,
           "--dataset", setup.dataset, "--steps", str(steps), "--eval-every", str(eval_every),
           "--warmup", str(min(20, steps // 2)), "--checkpoint-every", str(eval_every), "--device", device,
           "--out", str(run_dir)]  # checkpoints: `run_bench.py --resume DIR` continues a run cut short
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=False)  # a failed backend is a row in its timings.csv
    return run_dir


def ensure_quality(run_dir: Path) -> pd.DataFrame:
    """The run's quality.csv; written here from its raw evaluations if the runner did not score them."""
    path = run_dir / "quality.csv"
    if not path.exists():
        rows = []
        for job_file in sorted((run_dir / "raw").glob("*.job.json")):
            job = json.loads(read_text(job_file))
            rows += quality.score_run(run_dir, job["backend"], job["mode"], RunSpec.from_json(job["spec"]), job["tag"])
        pd.DataFrame(rows, columns=list(quality.QUALITY_COLUMNS)).to_csv(path, index=False)
    return pd.read_csv(path)


def final_metrics(q: pd.DataFrame) -> dict[str, float]:
    last = q[q["step"] == q["step"].max()] if not q.empty else q
    return dict(zip(last["metric"], last["value"], strict=True))


def goal_history(setup: Setup, q: pd.DataFrame) -> dict[str, float | str]:
    """When the goals were first met, and how often they held from then on: a single final
    evaluation can catch a generator between modes, so the table shows the whole record."""
    met = [step for step, g in q.groupby("step") if verdict(setup, dict(zip(g["metric"], g["value"], strict=True)))]
    if not met:
        return {"first_met": "never", "held_after": ""}
    later = q.loc[q["step"] >= met[0], "step"].nunique()
    return {"first_met": int(met[0]), "held_after": f"{len(met)}/{later}"}


def real_scores(dataset: str, n: int = 1000) -> dict[str, float]:
    """What the data set itself scores, as a reference row: held-out images, or fresh pool points."""
    ds = datasets.load(dataset)
    x = ds.x[classifier.split(len(ds.x))[1]] if dataset == "mnist" else ds.x[:n]
    return quality.score(x, dataset)


def verdict(setup: Setup, metrics: dict[str, float]) -> bool:
    return all(m in metrics and COMPARE[op](metrics[m], bound) for m, (op, bound) in setup.goals.items())


def table(rows: list[dict]) -> str:
    return tables.markdown_dicts(rows).rstrip("\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tools.evidence", description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=",".join(backends.REGISTRY), help="comma list")
    p.add_argument("--datasets", default=",".join(s.dataset for s in SETUPS), help="comma list")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps each: the plumbing, not the goals")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--out", type=Path, default=default_results() / f"evidence-{time.strftime('%Y%m%d-%H%M%S')}")
    args = p.parse_args(argv)
    runs = available([b for b in args.backends.split(",") if b])
    setups = [s for s in SETUPS if s.dataset in args.datasets.split(",")]
    sections, dirs, ok = [], [], True
    for setup in setups:
        steps, every = (QUICK_STEPS, QUICK_EVAL) if args.quick else (setup.steps, setup.eval_every)
        rows = [{"run": "real data", **real_scores(setup.dataset)}]
        for backend, mode in runs:
            run_dir = train(setup, backend, mode, steps, every, args.device, args.out)
            q = ensure_quality(run_dir)
            metrics = final_metrics(q)
            passed = verdict(setup, metrics)
            ok &= passed
            rows.append({"run": f"{backend}-{mode}", **metrics, "steps": steps, "goal": "met" if passed else "MISSED",
                         **goal_history(setup, q)})
            dirs.append(run_dir)
        goals = ", ".join(f"{m} {op} {bound:g}" for m, (op, bound) in setup.goals.items())
        sections.append(f"WGAN-GP on {setup.dataset} (goal: {goals})\n{table(rows)}\n")
    print("\n".join(sections))
    if dirs:
        print(f"\nreport: {report.build(dirs, args.out)}")
    return 0 if ok and runs else 1


if __name__ == "__main__":
    sys.exit(main())
