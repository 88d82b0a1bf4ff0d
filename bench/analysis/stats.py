"""Medians and ratios of step times, and differences of mean scores, with 95% bootstrap intervals.

A measurement is a list of rounds (a process that trained or timed one backend and mode),
each a 1-D array of per-block ms/step. Each round counts once, however many blocks it has
(a training round has hundreds, a timing round a few): the estimate is the mean of the
rounds' medians. The bootstrap resamples rounds with replacement, then the blocks within
each drawn round, so drift between rounds (the machine's state) and noise between blocks
both widen the interval. Ratios taken side by side (`paired=True`, the same rounds of one
interleaved run) are the geometric mean of the per-round ratios, and the bootstrap draws
the same rounds for both sides, so a slow moment of the machine cancels out.

Learning across seeds: the difference of two backends' mean scores, each side's seeds
resampled on their own (or the per-seed differences, paired), judged against an equivalence
margin (equivalent, different or undecided at this number of seeds). A percentile bootstrap
interval never leaves the range of its values, and n values of a symmetric distribution all
fall on one side of its mean with probability 2**(1 - n): from fewer than min_values() (6
for 95%) no 95% interval exists, so there is none and the verdict is undecided. Above it the
plain percentile interval is still too narrow at a few seeds (it covers 86-89% at 6-8 normal
values); the interval is Hesterberg's expanded percentile one (The American Statistician,
2015), its percentiles taken where the t interval's width puts them (expanded_level).

NumPy (and SciPy for the t quantile) and seeded, so a report reads the same every time it is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
MOST_SEEDS = 1000  # where seeds_to_decide stops looking: a projection past it says nothing useful
DRAWS = 1000  # enough for the 2.5% and 97.5% percentiles to settle to ~1%
SEED = 0

Rounds = Sequence[np.ndarray]


@dataclass(frozen=True)
class Interval:
    value: float  # the estimate on all the data
    lo: float  # NaN where the data cannot give an interval (fewer than two blocks)
    hi: float

    @property
    def known(self) -> bool:
        return not (np.isnan(self.lo) or np.isnan(self.hi))

    def excludes(self, x: float) -> bool:
        return self.known and not self.lo <= x <= self.hi

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.lo:.3g}, {self.hi:.3g}]" if self.known else f"{self.value:.3g} [n/a]"


def _rounds(rounds: Rounds) -> list[np.ndarray]:
    out = [np.asarray(r, dtype=np.float64).ravel() for r in rounds]
    out = [r[np.isfinite(r)] for r in out]
    return [r for r in out if r.size]


def _medians(rounds: list[np.ndarray]) -> np.ndarray:
    return np.array([np.median(r) for r in rounds])


def _draws(rounds: list[np.ndarray], picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(draws, rounds) medians of bootstrap samples: row i of picks names the rounds drawn (with
    repeats), each with its blocks resampled. Rounds are padded with NaN to one length, so all
    draws are one array."""
    n = np.array([r.size for r in rounds])
    padded = np.full((len(rounds), n.max()), np.nan)
    for i, r in enumerate(rounds):
        padded[i, : r.size] = r
    sizes = n[picks][..., None]  # (draws, rounds, 1)
    slot = np.arange(n.max())
    vals = padded[picks[..., None], (rng.random((*picks.shape, n.max())) * sizes).astype(int)]
    vals[np.broadcast_to(slot >= sizes, vals.shape)] = np.nan  # a short round draws only its own size
    return _row_medians(vals.reshape(-1, n.max())).reshape(picks.shape)


def _row_medians(x: np.ndarray) -> np.ndarray:
    """Median of each row's non-NaN values (np.nanmedian loops in Python over rows this long)."""
    x = np.sort(x, axis=1)  # NaN last
    k = np.isfinite(x).sum(axis=1)
    rows = np.arange(len(x))
    return (x[rows, (k - 1) // 2] + x[rows, k // 2]) / 2


def _interval(value: float, draws: np.ndarray, level: float) -> Interval:
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return Interval(value, float(lo), float(hi))


def min_values(level: float = LEVEL) -> int:
    """The fewest values a side from which a percentile bootstrap interval can reach `level`:
    the smallest n with 2**(1 - n) <= 1 - level."""
    return math.ceil(1 + math.log2(1 / (1 - level)) - 1e-9)


def expanded_level(n: int, level: float = LEVEL) -> float:
    """The level at which to read a bootstrap of the mean of n values so that the interval has
    the t interval's width: the normal quantile sqrt(n / (n - 1)) t_{n-1}, for the bootstrap's
    plug-in standard deviation and its normal-like tails. Tends to `level` as n grows."""
    from scipy.stats import norm, t  # the only use of scipy here: loaded when intervals of means are asked for

    return float(2 * norm.cdf(math.sqrt(n / (n - 1)) * t.ppf((1 + level) / 2, n - 1)) - 1)


def _too_few(*sides: list[np.ndarray]) -> bool:
    return any(sum(r.size for r in s) < 2 for s in sides)


def median(rounds: Rounds, level: float = LEVEL, draws: int = DRAWS, seed: int = SEED) -> Interval:
    """The mean of the rounds' median ms/step, with its bootstrap interval."""
    rs = _rounds(rounds)
    if not rs:
        return Interval(float("nan"), float("nan"), float("nan"))
    value = float(_medians(rs).mean())
    if _too_few(rs):
        return Interval(value, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boot = _draws(rs, rng.integers(len(rs), size=(draws, len(rs))), rng).mean(axis=1)
    return _interval(value, boot, level)


def ratio(num: Rounds, den: Rounds, paired: bool = False, level: float = LEVEL, draws: int = DRAWS,
          seed: int = SEED) -> Interval:
    """num's time over den's with its interval. paired: round i of num ran beside round i of
    den (an interleaved run): the geometric mean of the per-round ratios, both sides drawing the
    same rounds; rounds that only one side has (a failed repeat) make it unpaired: the ratio of
    the two means of round medians."""
    a, b = _rounds(num), _rounds(den)
    if not a or not b:
        return Interval(float("nan"), float("nan"), float("nan"))
    paired = paired and len(a) == len(b)

    def estimate(ma: np.ndarray, mb: np.ndarray) -> np.ndarray:  # (..., rounds) medians -> ratios
        return np.exp(np.log(ma / mb).mean(axis=-1)) if paired else ma.mean(axis=-1) / mb.mean(axis=-1)

    value = float(estimate(_medians(a), _medians(b)))
    if _too_few(a, b):
        return Interval(value, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    pa = rng.integers(len(a), size=(draws, len(a)))
    pb = pa if paired else rng.integers(len(b), size=(draws, len(b)))
    return _interval(value, estimate(_draws(a, pa, rng), _draws(b, pb, rng)), level)


def verdict(r: Interval, slower: str = "slower", faster: str = "faster") -> str:
    """For a time ratio new/base: a difference only when the interval excludes 1."""
    if not r.known:
        return "unknown: no interval (one value)"
    if not r.excludes(1.0):
        return "same within noise"
    return slower if r.lo > 1 else faster


def _finite(a: Sequence[float], b: Sequence[float], paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """The values to compare: paired, the pairs whose two values are both finite; else each
    side's finite values."""
    x, y = (np.asarray(v, dtype=np.float64) for v in (a, b))
    if paired:
        ok = np.isfinite(x) & np.isfinite(y)
        return x[ok], y[ok]
    return x[np.isfinite(x)], y[np.isfinite(y)]


def mean_difference(a: Sequence[float], b: Sequence[float], paired: bool = False, level: float = LEVEL,
                    draws: int = 10 * DRAWS, seed: int = SEED) -> Interval:
    """mean(a) - mean(b), with an expanded percentile bootstrap interval (its tails are read
    near 0.5% and 99.5% at 8 values: hence 10x the draws). Independent samples: each side
    resampled on its own, expanded for the smaller side. paired: a[i] and b[i] share what
    varies between pairs (a seed's init and input stream), so the per-pair differences are
    resampled and that variation cancels out. No interval from fewer than min_values(level) a
    side (pairs)."""
    x, y = _finite(a, b, paired)
    if paired:
        d = x - y
        if d.size < min_values(level):
            return Interval(float(d.mean()) if d.size else float("nan"), float("nan"), float("nan"))
        boot = d[np.random.default_rng(seed).integers(d.size, size=(draws, d.size))].mean(axis=1)
        return _interval(float(d.mean()), boot, expanded_level(d.size, level))
    if not x.size or not y.size:
        return Interval(float("nan"), float("nan"), float("nan"))
    value = float(x.mean() - y.mean())
    if min(x.size, y.size) < min_values(level):
        return Interval(value, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    boot = (x[rng.integers(x.size, size=(draws, x.size))].mean(axis=1)
            - y[rng.integers(y.size, size=(draws, y.size))].mean(axis=1))
    return _interval(value, boot, expanded_level(min(x.size, y.size), level))


def seeds_to_decide(a: Sequence[float], b: Sequence[float], margin: float, paired: bool = False,
                    level: float = LEVEL, most: int = MOST_SEEDS) -> int | None:
    """A projection for an undecided verdict: the fewest seeds a side, more than these, at
    which the interval around the difference seen would lie within +-margin or wholly outside
    it, if the seeds to come scattered as these did (the t interval's half-width, which the
    expanded interval has, shrinking as 1/sqrt(n)). None from fewer than two values a side, or
    where no number up to `most` would decide (a difference too near the margin)."""
    from scipy.stats import t

    x, y = _finite(a, b, paired)
    if min(x.size, y.size) < 2:
        return None
    diff = float(x.mean() - y.mean())
    spread = float(np.std(x - y, ddof=1)) if paired else math.hypot(x.std(ddof=1), y.std(ddof=1))
    n = np.arange(max(min_values(level), min(x.size, y.size) + 1), most + 1)
    half = t.ppf((1 + level) / 2, n - 1) * spread / np.sqrt(n)
    decided = n[(abs(diff) + half <= margin) | (abs(diff) - half > margin)]
    return int(decided[0]) if decided.size else None


def equivalence(d: Interval, margin: float) -> str:
    """A difference against an equivalence margin: equivalent when its whole interval lies within
    +-margin, different when wholly outside it, undecided otherwise (more seeds would tell)."""
    if not d.known:
        return f"undecided: no interval (fewer than {min_values()} seeds a side)"
    if -margin <= d.lo and d.hi <= margin:
        return "equivalent"
    if d.lo > margin or d.hi < -margin:
        return "different"
    return "undecided"
