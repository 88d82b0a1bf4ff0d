"""The multi-seed learning study: several seeds of every backend's idiomatic and fastest mode.

    python -m bench.tools.evidence --seeds 8                      # every setup below
    python -m bench.tools.evidence --seeds 8 --setups wgan_gp-mnist --budget 40m

Each setup is one run of the runner (--modes default, --seeds 0..N-1, quality scored every
EVALS-th of the run) in --out/<setup>/, seed after seed, so a run cut short by --budget or a
signal holds whole seeds of every backend; calling again resumes it. Then
bench.analysis.seeds compares the final scores of every pair of runs: seeds.csv, seeds.md
and one plot per setup of each metric over training (mean over seeds, lowest to highest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.analysis import plots, seeds, tables
from bench.core.files import write_atomic
from bench.tools.runs import run_or_resume, task_minutes


@dataclass(frozen=True)
class Setup:
    name: str
    args: tuple[str, ...]
    steps: int = 3000


SETUPS = (
    Setup("wgan_gp-mnist", ("--algo", "wgan_gp", "--arch", "mlp", "--dataset", "mnist")),
    Setup("wgan-mnist", ("--algo", "wgan", "--arch", "mlp", "--dataset", "mnist")),
    Setup("wgan_gp-8gaussians", ("--preset", "paper-wgan-gp-toy")),
)
EVALS = 10  # quality evaluations per run


def section(setup: Setup, run_dir: Path, steps: int) -> tuple[list[dict], str]:
    q = pd.read_csv(run_dir / "quality.csv") if (run_dir / "quality.csv").exists() else pd.DataFrame()
    final = seeds.finals(q)
    rows = [{"setup": setup.name, **r} for r in seeds.pairs(final)]
    head = (f"### {setup.name}, {steps} steps ({' '.join(setup.args)})\n\n"
            f"{task_minutes(run_dir):.0f} minutes of training and scoring on this machine (env.json tasks_s).\n\n")
    if final.empty:
        return rows, head + "not measured yet: no run has finished."
    per_run: dict[str, dict] = {}
    for (run, metric), v in final.groupby(["run", "metric"], sort=False)["value"]:
        per_run.setdefault(run, {"run": run, "seeds": len(v)})[metric] = \
            f"{tables.cell(v.mean())} ± {tables.cell(v.std(ddof=1) if len(v) > 1 else float('nan'))}"
    plots.seed_curves({seeds.label(b, m): g for (b, m), g in q.groupby(["backend", "mode"], sort=False)},
                      run_dir.parent / f"seeds-{setup.name}.png", f"{setup.name}: quality over training")
    return rows, (head + "Final scores, mean ± standard deviation over seeds:\n\n"
                  + tables.markdown_dicts(list(per_run.values()))
                  + f"\n\nEvery pair: difference of means a - b [expanded bootstrap 95% interval] and the verdict "
                  f"against the margin, {seeds.MARGIN:.0%} of the pair's mean (seeds.csv has the margins). "
                  f"{seeds.tally(rows)}:\n\n"
                  + tables.markdown_dicts(seeds.by_pair(rows))
                  + (f"\n\n{ahead}" if (ahead := seeds.outlook(rows)) else ""))


def main(n_seeds: int, backends: list[str], out: Path, steps: int | None, chosen: list[Setup], device: str,
         deadline: float | None) -> int:
    rows, sections, done = [], [], True
    for setup in chosen:
        n = steps or setup.steps
        every = max(1, n // EVALS)
        args = [*setup.args, "--backends", ",".join(backends), "--modes", "default", "--steps", str(n),
                "--seeds", ",".join(map(str, range(n_seeds))), "--eval-every", str(every),
                "--checkpoint-every", str(every), "--repeats", "1", "--device", device, "--no-report"]
        done &= run_or_resume(args, out / setup.name, deadline)
        r, text = section(setup, out / setup.name, n)
        rows += r
        sections.append(text)
    table = pd.DataFrame(rows)
    if "seeds_to_decide" in table:  # a count, blank where decided: not a float column
        table["seeds_to_decide"] = table["seeds_to_decide"].astype("Int64")
    write_atomic(out / "seeds.csv", table.to_csv(index=False))
    write_atomic(out / "seeds.md", "# Do they learn the same? Final quality over seeds\n\n"
                 + seeds.__doc__.split("\n\n", 1)[1] + "\n" + "\n\n".join(sections) + "\n")
    print("\n\n".join(sections))
    print(f"\nseeds: {out / 'seeds.md'}" + ("" if done else " (some runs are not finished: call again)"))
    return 0 if done else 1
