"""Do the backends learn equally well? Final quality over seeds, every pair of runs compared.

One seed per backend cannot tell "trains as well" from luck. With several seeds of each
(backend, mode), every metric's difference of means between every pair gets a bootstrap 95%
interval (bench.analysis.stats.mean_difference), paired by seed: a seed fixes the init and
the input stream in every backend, so over the seeds both ran the per-seed differences are
resampled and the variation between seeds (far larger than between backends) cancels out.
The verdict reads the interval against an equivalence margin, 10% (MARGIN) of the pair's mean:
equivalent (the interval within +-margin), different (wholly outside it) or undecided at
this number of seeds. Below 6 seeds a side there is no interval and no verdict: a bootstrap
interval stays inside the range of its values, which misses the mean too often to be a 95%
interval (bench.analysis.stats.min_values).
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from bench.analysis import stats, tables

MARGIN = 0.10  # of the pair's mean value: the difference a user would call "not the same"
KEYS = ["backend", "mode", "seed"]


def label(backend: str, mode: str) -> str:
    return f"{backend}-{mode}"


def finals(quality: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluation: columns run, seed, metric, value. A run that stopped short of the
    others' last step (diverged, cut) scores what it had then: dropping it would flatter its backend."""
    if quality.empty:
        return pd.DataFrame(columns=["run", "seed", "metric", "value"])
    last = quality.groupby(KEYS)["step"].transform("max")
    q = quality[quality["step"] == last]
    return pd.DataFrame({"run": [label(b, m) for b, m in zip(q["backend"], q["mode"], strict=True)],
                         "seed": q["seed"].to_numpy(), "metric": q["metric"].to_numpy(),
                         "value": q["value"].to_numpy()})


def pairs(final: pd.DataFrame, margin: float = MARGIN) -> list[dict]:
    """One row per (metric, pair of runs): means, seeds, difference with interval, margin, verdict."""
    rows = []
    for metric, g in final.groupby("metric", sort=False):
        values = {run: v.set_index("seed")["value"] for run, v in g.groupby("run", sort=False)}
        for a, b in combinations(values, 2):
            both = values[a].index.intersection(values[b].index)  # the seeds both ran: paired
            d = stats.mean_difference(values[a][both].to_numpy(), values[b][both].to_numpy(), paired=True)
            m = margin * abs(values[a][both].mean() + values[b][both].mean()) / 2
            rows.append({"metric": metric, "a": a, "b": b, "mean_a": values[a][both].mean(),
                         "mean_b": values[b][both].mean(), "seeds": len(both), "a_minus_b": d.value, "lo": d.lo,
                         "hi": d.hi, "margin": m, "verdict": stats.equivalence(d, m)})
    return rows


def by_pair(rows: list[dict]) -> list[dict]:
    """pairs() as one row per pair of runs, a cell per metric: 'a-b [lo, hi] verdict'."""
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        cell = f"{tables.cell(r['a_minus_b'])} [{tables.cell(r['lo'])}, {tables.cell(r['hi'])}] {r['verdict']}"
        out.setdefault((r["a"], r["b"]), {"a": r["a"], "b": r["b"]})[r["metric"]] = cell
    return list(out.values())


def tally(rows: list[dict]) -> str:
    """'N verdicts over P pairs and M metrics: a equivalent, b undecided, c different'."""
    counts = {v: sum(r["verdict"].startswith(v) for r in rows) for v in ("equivalent", "undecided", "different")}
    n_pairs, n_metrics = len({(r["a"], r["b"]) for r in rows}), len({r["metric"] for r in rows})
    return (f"{len(rows)} verdicts over {n_pairs} pairs and {n_metrics} metrics: "
            + ", ".join(f"{n} {v}" for v, n in counts.items()))
