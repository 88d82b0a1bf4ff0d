"""bench.analysis.stats: bootstrap medians and ratios over rounds and blocks; differences of means over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from bench.analysis import stats


def rounds(rng: np.random.Generator, ms: float, n_rounds: int = 3, blocks: int = 30, noise: float = 0.05,
           drift: tuple[float, ...] | None = None) -> list[np.ndarray]:
    drift = drift or (1.0,) * n_rounds
    return [ms * d * (1 + noise * rng.standard_normal(blocks)) for d in drift[:n_rounds]]


def test_each_round_counts_once_however_many_blocks_it_has():
    """A long training round beside two short timing rounds: the estimate is the mean of the
    three rounds' medians, not the long round's median."""
    rs = [np.full(200, 10.0), np.full(5, 13.0), np.full(5, 16.0)]
    assert stats.median(rs).value == 13.0


def test_median_is_the_mean_of_round_medians_inside_its_interval():
    rs = rounds(np.random.default_rng(1), 10.0)
    m = stats.median(rs)
    assert m.value == np.mean([np.median(r) for r in rs])
    assert m.lo < m.value < m.hi and m.hi - m.lo < 0.1 * m.value
    assert stats.median(rs) == m  # seeded: a report reads the same every time


def test_more_blocks_narrow_the_interval():
    rng = np.random.default_rng(2)
    few, many = stats.median(rounds(rng, 10.0, blocks=10)), stats.median(rounds(rng, 10.0, blocks=300))
    assert many.hi - many.lo < few.hi - few.lo


def test_equal_times_are_the_same_within_noise():
    rng = np.random.default_rng(3)
    r = stats.ratio(rounds(rng, 10.0), rounds(rng, 10.0))
    assert r.lo < 1 < r.hi and stats.verdict(r) == "same within noise"


def test_a_slower_side_is_slower_and_a_faster_one_faster():
    rng = np.random.default_rng(4)
    base, slow = rounds(rng, 10.0), rounds(rng, 15.0)
    r = stats.ratio(slow, base)
    assert 1.4 < r.lo < r.value < r.hi < 1.6 and stats.verdict(r) == "slower"
    assert stats.verdict(stats.ratio(base, slow)) == "faster"


def test_pairing_rounds_cancels_the_machines_drift():
    """Two modes run side by side in rounds whose speed drifts by 2x: paired by round the 10%
    difference is clear, unpaired the drift swamps it."""
    rng = np.random.default_rng(5)
    drift = (1.0, 1.5, 2.0)
    a, b = rounds(rng, 11.0, noise=0.02, drift=drift), rounds(rng, 10.0, noise=0.02, drift=drift)
    paired, unpaired = stats.ratio(a, b, paired=True), stats.ratio(a, b)
    assert stats.verdict(paired) == "slower" and 1.05 < paired.lo < 1.1 < paired.hi < 1.15
    assert stats.verdict(unpaired) == "same within noise"


def test_one_value_has_no_interval():
    one = stats.median([np.array([5.0])])
    assert one.value == 5.0 and not one.known and str(one) == "5 [n/a]"
    r = stats.ratio([np.array([6.0])], [np.array([5.0])])
    assert r.value == 1.2 and not r.excludes(1.0) and stats.verdict(r).startswith("unknown")


def test_non_finite_blocks_and_empty_rounds_are_dropped():
    m = stats.median([np.array([1.0, np.nan, 3.0]), np.array([])])
    assert m.value == 2.0
    assert np.isnan(stats.median([]).value)


# Differences of mean scores over seeds, and the equivalence verdict


def test_the_difference_of_means_is_exact_and_its_interval_holds_it():
    d = stats.mean_difference([1.0, 2.0, 3.0, 1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 2.0, 0.0, 1.0])
    assert d.value == pytest.approx(1.5)
    assert d.lo < 1.5 < d.hi
    rng = np.random.default_rng(3)
    a, b = 10 + rng.normal(0, 1, 400), 7 + rng.normal(0, 1, 400)  # true difference 3, standard error 0.07
    d = stats.mean_difference(a, b)
    assert d.lo < 3 < d.hi and d.hi - d.lo < 0.4


def test_more_seeds_narrow_the_difference():
    rng = np.random.default_rng(4)
    widths = [(d := stats.mean_difference(rng.normal(0, 1, n), rng.normal(0, 1, n))).hi - d.lo for n in (8, 128)]
    assert widths[1] < widths[0] / 2


@pytest.mark.parametrize(("a", "b", "margin", "verdict"), [
    ([10.0, 10.1, 9.9, 10.0, 10.1, 9.9], [10.0, 9.9, 10.1, 10.05, 9.95, 10.0], 1.0, "equivalent"),  # far inside 1
    ([10.0, 10.1, 9.9, 10.0, 10.1, 9.9], [20.0, 19.9, 20.1, 20.0, 20.1, 19.9], 1.0, "different"),  # 10 apart
    ([0.0, 10.0, 0.0, 10.0, 0.0, 10.0], [5.0] * 6, 1.0, "undecided"),  # the interval straddles the margin
    ([10.0, 10.1, 9.9, 10.0, 10.1, 9.9], [10.6, 10.5, 10.7, 10.6, 10.5, 10.7], 1.0, "equivalent"),  # by less than 1
])
def test_the_verdict_reads_the_interval_against_the_margin(a, b, margin, verdict):
    assert stats.equivalence(stats.mean_difference(a, b), margin) == verdict


def test_below_six_seeds_a_side_no_95_percent_interval_exists():
    """However clear the difference: five values of a symmetric noise all sit on one side of
    its mean one time in 16, and a bootstrap interval never leaves their range, so it cannot
    cover 95%. Six (one time in 32) can."""
    assert stats.min_values(0.95) == 6 and stats.min_values(0.9) == 5 and stats.min_values(0.75) == 3
    a, b = [10.0, 10.1, 9.9, 10.0, 10.1, 9.9], [20.0, 19.9, 20.1, 20.0, 20.1, 19.9]
    five = stats.mean_difference(a[:5], b[:5], paired=True)
    assert five.value == pytest.approx(-10.0) and not five.known
    assert stats.equivalence(five, 1.0) == "undecided: no interval (fewer than 6 seeds a side)"
    assert stats.equivalence(stats.mean_difference(a, b, paired=True), 1.0) == "different"
    assert not stats.mean_difference(a[:5], b).known and stats.mean_difference(a, b).known  # unpaired: each side
    rng = np.random.default_rng(7)  # the reason, measured: the range of 5 misses the mean > 5% of the time
    x = rng.standard_normal((20000, 5))
    assert np.mean((x.min(axis=1) > 0) | (x.max(axis=1) < 0)) == pytest.approx(1 / 16, abs=0.006)


def test_the_interval_of_a_mean_difference_covers_95_percent_at_eight_seeds():
    """The plain percentile interval covers about 89% at 8 normal values; the expanded one the
    t interval's 95% (Monte Carlo over 1,000 studies of 8 paired seeds, true difference 0)."""
    rng = np.random.default_rng(11)
    hits = [(d := stats.mean_difference(rng.standard_normal(8), np.zeros(8), paired=True, draws=2000, seed=k)).lo
            <= 0 <= d.hi for k in range(1000)]
    assert 0.93 <= np.mean(hits) <= 0.97
    assert stats.expanded_level(8) == pytest.approx(0.9885, abs=1e-4) and stats.expanded_level(10**6) < 0.9501


UNIT = np.array([1.0, -1.0] * 3) * np.sqrt(5 / 6)  # six values, mean 0, sample standard deviation 1


@pytest.mark.parametrize(("a", "b", "margin", "paired", "seeds"), [
    (UNIT, np.zeros(6), 1.0, True, 7),  # t(0.975, 5) / sqrt(6) = 1.05 > 1; t(0.975, 6) / sqrt(7) = 0.92
    (UNIT + 3, np.zeros(6), 1.0, True, 7),  # already different at 6 (3 - 1.05 > 1): the next seed
    (UNIT + 1, np.zeros(6), 1.0, True, None),  # a difference on the margin: no number of seeds decides it
    (np.full(2, 0.5), np.zeros(2), 1.0, True, 6),  # no spread: the first interval decides
    (UNIT, -UNIT[::-1], 1.0, False, 11),  # unpaired: spread sqrt(2); t(0.975, 10) sqrt(2) / sqrt(11) = 0.95
    (UNIT[:1], np.zeros(1), 1.0, True, None),  # one value: no spread to project from
])
def test_the_seeds_an_undecided_verdict_would_take_are_projected_from_the_spread(a, b, margin, paired, seeds):
    assert stats.seeds_to_decide(a, b, margin, paired=paired) == seeds


def test_at_the_projected_seeds_the_interval_decides():
    """Six seeds leave it undecided; the same six differences repeated up to the projected
    count (their mean kept, their spread nearly) give an interval inside the margin."""
    d = np.array([0.5, -0.5, 1.0, -1.0, 0.2, -0.2])
    assert stats.equivalence(stats.mean_difference(d, np.zeros(6), paired=True), 0.5) == "undecided"
    n = stats.seeds_to_decide(d, np.zeros(6), 0.5, paired=True)
    more = np.resize(d, 6 * -(-n // 6))
    assert 6 < n <= more.size < n + 6
    assert stats.equivalence(stats.mean_difference(more, np.zeros(more.size), paired=True), 0.5) == "equivalent"


def test_one_seed_a_side_is_undecided_without_an_interval():
    d = stats.mean_difference([1.0], [2.0, 3.0])
    assert d.value == pytest.approx(-1.5) and not d.known
    assert stats.equivalence(d, 10.0).startswith("undecided: no interval")
    assert np.isnan(stats.mean_difference([np.nan], [1.0]).value)


def test_pairing_by_seed_cancels_the_variation_between_seeds():
    seeds = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])  # what a seed's init and stream decide
    a, b = seeds + 0.1, seeds - 0.1  # two backends 0.2 apart on every seed
    unpaired, paired = stats.mean_difference(a, b), stats.mean_difference(a, b, paired=True)
    assert unpaired.value == pytest.approx(0.2) and paired.value == pytest.approx(0.2)
    assert stats.equivalence(unpaired, 1.0) == "undecided"  # the seeds' spread swamps it
    assert paired.lo == pytest.approx(0.2) and paired.hi == pytest.approx(0.2)
    assert stats.equivalence(paired, 1.0) == "equivalent" and stats.equivalence(paired, 0.1) == "different"
