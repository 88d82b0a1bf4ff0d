"""Do the backends learn equally well? Final quality over seeds, every pair of runs compared.

One seed per backend cannot tell "trains as well" from luck. With several seeds of each
(backend, mode), every metric's difference of means between every pair gets a bootstrap 95%
interval (bench.analysis.stats.mean_difference), paired by seed: a seed fixes the init and
the input stream in every backend, so over the seeds both ran the per-seed differences are
resampled and the variation between seeds cancels out, as far as the two runs still follow
one trajectory (past the parity horizon they are in effect two draws, and their differences
scatter like the seeds). An undecided verdict comes with a projection: the seeds a side that
would decide it if the seeds to come scattered as these did (seeds_to_decide).
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
            x, y = values[a][both].to_numpy(), values[b][both].to_numpy()
            d = stats.mean_difference(x, y, paired=True)
            m = margin * abs(x.mean() + y.mean()) / 2
            verdict = stats.equivalence(d, m)
            ahead = stats.seeds_to_decide(x, y, m, paired=True) if verdict.startswith("undecided") else None
            rows.append({"metric": metric, "a": a, "b": b, "mean_a": x.mean(), "mean_b": y.mean(),
                         "seeds": len(both), "a_minus_b": d.value, "lo": d.lo, "hi": d.hi, "margin": m,
                         "verdict": verdict, "seeds_to_decide": ahead})
    return rows


def by_pair(rows: list[dict]) -> list[dict]:
    """pairs() as one row per pair of runs, a cell per metric: 'a-b [lo, hi] verdict'."""
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        cell = f"{tables.cell(r['a_minus_b'])} [{tables.cell(r['lo'])}, {tables.cell(r['hi'])}] {r['verdict']}"
        out.setdefault((r["a"], r["b"]), {"a": r["a"], "b": r["b"]})[r["metric"]] = cell
    return list(out.values())


def outlook(rows: list[dict]) -> str:
    """How many seeds the undecided verdicts would take, at the spread seen ('' if none can say)."""
    undecided = [r for r in rows if r["verdict"].startswith("undecided") and r["seeds"] > 1]
    ahead = sorted(r["seeds_to_decide"] for r in undecided if r["seeds_to_decide"] is not None)
    never = len(undecided) - len(ahead)
    parts = []
    if ahead:
        span = f"{ahead[0]}" if ahead[0] == ahead[-1] else f"{ahead[0]}-{ahead[-1]} (median {ahead[len(ahead) // 2]})"
        parts.append(f"the undecided verdicts would take {span} seeds a side to decide")
    if never:
        parts.append(f"{never} {'of them' if ahead else 'undecided verdicts'} not even {stats.MOST_SEEDS:,} "
                     "(a difference too near the margin)")
    return f"If the seeds to come scattered as these did, {'; '.join(parts)}." if parts else ""


def tally(rows: list[dict]) -> str:
    """'N verdicts over P pairs and M metrics: a equivalent, b undecided, c different'."""
    counts = {v: sum(r["verdict"].startswith(v) for r in rows) for v in ("equivalent", "undecided", "different")}
    n_pairs, n_metrics = len({(r["a"], r["b"]) for r in rows}), len({r["metric"] for r in rows})
    return (f"{len(rows)} verdicts over {n_pairs} pairs and {n_metrics} metrics: "
            + ", ".join(f"{n} {v}" for v, n in counts.items()))
