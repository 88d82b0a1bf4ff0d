"""Evidence that every backend learns, and learns the same: three studies, run by hand.

    python -m bench.tools.evidence                      # goals: long runs scored against goals
    python -m bench.tools.evidence --quick              # 20 steps each: checks the plumbing only
    python -m bench.tools.evidence --seeds 8            # several seeds a backend: bench.tools.seeds
    python -m bench.tools.evidence --horizon            # the parity horizon: bench.tools.horizon

The seeds and horizon studies are resumable (call again with the same --out) and take
--budget; their modules say what they run. The goals study (40-60 minutes per backend on a
2-core CPU, minutes on a GPU):

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
import json
import operator
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import backends
from bench import default_results, tolerant_console
from bench.analysis import classifier, quality, report, tables
from bench.core import data as datasets
from bench.core.files import make_dir, read_text, write_atomic
from bench.core.spec import RunSpec
from bench.run.plan import parse_duration
from bench.tools import horizon, seeds
from bench.tools.runs import available, run_to_end


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


def train(setup: Setup, backend: str, mode: str, steps: int, eval_every: int, device: str, out: Path) -> Path:
    run_dir = out / f"{setup.dataset}-{backend}-{mode}"
    cmd = [sys.executable, "-m", "bench", "run", "--backends", backend, "--modes", mode, *setup.args,
           "--dataset", setup.dataset, "--steps", str(steps), "--eval-every", str(eval_every),
           "--warmup", str(min(20, steps // 2)), "--checkpoint-every", str(eval_every), "--device", device,
           "--out", str(run_dir)]  # checkpoints: `run_bench.py --resume DIR` continues a run cut short
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    run_to_end(cmd)  # a failed backend is a row in its timings.csv
    return run_dir


def ensure_quality(run_dir: Path) -> pd.DataFrame:
    """The run's quality.csv; written here from its raw evaluations if the runner did not score them."""
    path = run_dir / "quality.csv"
    if not path.exists():
        rows = []
        for job_file in sorted((run_dir / "raw").glob("*.job.json")):
            job = json.loads(read_text(job_file))
            rows += quality.score_run(run_dir, job["backend"], job["mode"], RunSpec.from_json(job["spec"]), job["tag"])
        write_atomic(path, pd.DataFrame(rows, columns=list(quality.QUALITY_COLUMNS)).to_csv(index=False))
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.tools.evidence", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--backends", default=",".join(backends.REGISTRY), help="comma list")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--out", type=Path, help="results folder; the same one again resumes a seeds or horizon study "
                   "(default: results/evidence-<time>, or results/seeds-<time>, results/horizon-<time>)")
    study = p.add_mutually_exclusive_group()
    study.add_argument("--seeds", type=int, metavar="N", help="the multi-seed study with N seeds a backend "
                       f"({', '.join(s.name for s in seeds.SETUPS)})")
    study.add_argument("--horizon", action="store_true", help="the parity horizon study "
                       f"({', '.join(s.name for s in horizon.SETUPS)})")
    p.add_argument("--setups", default="", help="seeds or horizon: comma list of their setups (default: all)")
    p.add_argument("--steps", type=int, help="seeds or horizon: generator iterations a run (default: the setup's)")
    p.add_argument("--budget", metavar="DURATION", help="seeds or horizon: stop starting runs after this long "
                   "(e.g. 40m); calling again with the same --out goes on")
    p.add_argument("--all-modes", action="store_true", help="horizon: tf eager too (slow)")
    p.add_argument("--datasets", default=",".join(s.dataset for s in SETUPS), help="goals: comma list")
    p.add_argument("--quick", action="store_true", help=f"goals: {QUICK_STEPS} steps each, the plumbing only")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if (args.seeds is not None and args.seeds < 1) or (args.steps is not None and args.steps < 1):
        p.error("--seeds and --steps must be positive")
    try:
        deadline = time.monotonic() + parse_duration(args.budget) if args.budget else None
    except ValueError as e:
        p.error(f"--budget: {e}")
    names = [b for b in args.backends.split(",") if b]
    if unknown := [b for b in names if b not in backends.REGISTRY]:
        p.error(f"--backends: unknown {', '.join(unknown)}; choose from {', '.join(backends.REGISTRY)}")
    if unknown := [d for d in args.datasets.split(",") if d and d not in {s.dataset for s in SETUPS}]:
        p.error(f"--datasets: unknown {', '.join(unknown)}; choose from {', '.join(s.dataset for s in SETUPS)}")
    study = "seeds" if args.seeds is not None else "horizon" if args.horizon else "evidence"
    known = {"seeds": seeds.SETUPS, "horizon": horizon.SETUPS}.get(study, ())
    picked = [s for s in args.setups.split(",") if s]
    unknown = [s for s in picked if s not in {k.name for k in known}]
    if unknown:
        p.error(f"--setups: unknown {', '.join(unknown)}; choose from {', '.join(k.name for k in known) or 'none'} "
                f"(--setups is for --seeds and --horizon)")
    chosen = [k for k in known if not picked or k.name in picked]
    out = (args.out or default_results() / f"{study}-{time.strftime('%Y%m%d-%H%M%S')}").expanduser().resolve()
    if why := make_dir(out):
        p.error(f"--out {out} cannot be made: {why}")
    names = available(names)
    if args.seeds is not None:
        return seeds.main(args.seeds, names, out, args.steps, chosen, args.device, deadline)
    if args.horizon:
        return horizon.main(out, args.steps, chosen, args.all_modes, args.device, deadline)
    return goals(args, [(n, backends.entry(n).default_modes[0]) for n in names], out)


def goals(args: argparse.Namespace, runs: list[tuple[str, str]], out: Path) -> int:
    setups = [s for s in SETUPS if s.dataset in args.datasets.split(",")]
    sections, dirs, ok = [], [], True
    for setup in setups:
        steps, every = (QUICK_STEPS, QUICK_EVAL) if args.quick else (setup.steps, setup.eval_every)
        rows = [{"run": "real data", **real_scores(setup.dataset)}]
        for backend, mode in runs:
            run_dir = train(setup, backend, mode, steps, every, args.device, out)
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
        print(f"\nreport: {report.build(dirs, out)}")
    return 0 if ok and runs else 1


if __name__ == "__main__":
    tolerant_console()
    sys.exit(main())
