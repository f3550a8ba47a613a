"""The statistics every table and decision uses: median and IQR of raw repeats, and a two-sided
Mann-Whitney U test. One definition each, so a ratio printed anywhere means the same thing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    median: float | None
    iqr: float | None
    q1: float | None
    q3: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"median": self.median, "iqr": self.iqr, "q1": self.q1, "q3": self.q3}


def summary(values: Sequence[float] | None) -> Summary:
    """Median and inter-quartile range of the repeats (all None without values)."""
    if values is None or len(values) == 0:
        return Summary(None, None, None, None)
    q1, med, q3 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return Summary(float(med), float(q3 - q1), float(q1), float(q3))


def median(values: Sequence[float] | None) -> float | None:
    return summary(values).median


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value, or None when there are too few repeats (< 3 each) to ever reach significance."""
    if len(a) < 3 or len(b) < 3:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(list(a), list(b), alternative="two-sided").pvalue)


def ratio_interval(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95, draws: int = 4000, seed: int = 0
) -> tuple[float, float] | None:
    """Bootstrap interval of median(a) / median(b) (resampling each side with replacement); None without values."""
    if len(a) == 0 or len(b) == 0:
        return None
    rng = np.random.default_rng(seed)
    xa = np.median(rng.choice(np.asarray(a, dtype=float), (draws, len(a))), axis=1)
    xb = np.median(rng.choice(np.asarray(b, dtype=float), (draws, len(b))), axis=1)
    low, high = np.percentile(xa / xb, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def slower_p(candidate: Sequence[float], best: Sequence[float], margin: float = 1.0) -> float:
    """One-sided p that `candidate` is slower than `best` by more than `margin` (a factor): Welch's t-test on log
    times (timings are close to log-normal, and with 3 repeats a rank test can never reach 0.05). Identical
    samples give 1."""
    from scipy.stats import ttest_ind

    x = np.log(np.asarray(candidate, dtype=float)) - math.log(margin)
    y = np.log(np.asarray(best, dtype=float))
    if len(x) < 2 or len(y) < 2:
        return 1.0
    if np.ptp(x) == 0 and np.ptp(y) == 0:  # no spread at all (e.g. bytes): the means decide
        return 0.0 if x.mean() > y.mean() else 1.0
    p = ttest_ind(x, y, equal_var=False, alternative="greater").pvalue
    return 1.0 if np.isnan(p) else float(p)


def block_noise(rounds: Mapping[str, Sequence[float]]) -> tuple[float, int] | None:
    """The noise of interleaved rounds as (variance, degrees of freedom): every point measured once in each of
    the same rounds, log time = point + round + noise (a randomized complete block design: a round's drift is
    shared by its points and cancels). Points with fewer rounds than the most are left out, and points that
    share one measurement count once; None without two points and two rounds."""
    count = max((len(v) for v in rounds.values()), default=0)
    complete = {tuple(v) for v in rounds.values() if len(v) == count}  # a measurement shared by twins counts once
    if len(complete) < 2 or count < 2:
        return None
    y = np.log(np.asarray(sorted(complete), dtype=float))
    residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    df = (y.shape[0] - 1) * (count - 1)
    return float((residual**2).sum() / df), df


def block_slower_p(rounds: Mapping[str, Sequence[float]], candidate: str, best: str, margin: float = 1.0) -> float:
    """One-sided p that `candidate` is slower than `best` by more than `margin` (a factor), both measured in the
    same interleaved rounds, from the difference of their mean log times against the noise of all the points in
    those rounds (`block_noise`): with many points, two rounds already show a clear loss. After one round there
    is no noise to measure, and nothing is significant."""
    from scipy.stats import t

    if (gap := _block_gap(rounds, candidate, best)) is None:
        return 1.0
    difference, se, df = gap
    difference -= math.log(margin)
    if se <= 0:
        return 0.0 if difference > 0 else 1.0
    return float(t.sf(difference / se, df))


def block_ratio_interval(
    rounds: Mapping[str, Sequence[float]], candidate: str, best: str, level: float = 0.95
) -> tuple[float, float] | None:
    """The interval of `candidate`'s time over `best`'s (the geometric mean over the rounds), both measured in the
    same interleaved rounds, against the noise of all the points in those rounds (`block_noise`): the interval
    that goes with `block_slower_p`. A round's drift cancels, which a bootstrap of each side's median does not do
    (on a 10k grid of five rounds, for a 1.11x: [0.91, 1.52] from the medians, [0.95, 1.37] from the blocks). None
    where there is no noise to measure."""
    from scipy.stats import t

    if (gap := _block_gap(rounds, candidate, best)) is None:
        return None
    difference, se, df = gap
    half = float(t.ppf((1 + level) / 2, df)) * se
    return math.exp(difference - half), math.exp(difference + half)


def _block_gap(rounds: Mapping[str, Sequence[float]], candidate: str, best: str) -> tuple[float, float, int] | None:
    """(mean log time of `candidate` - that of `best`, its standard error, degrees of freedom) from the noise of
    the rounds (`block_noise`), or None without it."""
    noise = block_noise(rounds)
    x, y = np.log(np.asarray(rounds[candidate], dtype=float)), np.log(np.asarray(rounds[best], dtype=float))
    if noise is None or len(x) != len(y):
        return None
    variance, df = noise
    return float(x.mean() - y.mean()), float(np.sqrt(2 * variance / len(x))), df


def paired_slowdown(
    candidate: Sequence[float], reference: Sequence[float], margin: float
) -> tuple[float, float] | None:
    """(ratio, p) when `candidate` is significantly slower than `reference` by more than `margin` (a factor), else
    None: the ratio (`paired_ratio`) is below 1 / margin and a one-sided paired t-test on log times
    says it is slower by more than `margin` (p < ALPHA; with `margin` 1, slower at all). Both are per-round values of
    the same interleaved rounds; the candidate may have run only the first ones (points leave a race, they never
    join), and the reference's are cut to those. Paired, a round's drift cancels: on 100k Fused `rows-1024x16` read
    500 random rows 0.78x as fast as the default in five rounds, which Mann-Whitney across the rounds could not tell
    from the drift (p = 0.056; paired, slower at all: 0.006). Only the pair's own rounds count: pooling the noise of
    every point in them (`block_slower_p`) let one erratic point (anndata-default+zarrs on lazy-rows, 0.40-0.72 s
    against 0.38-0.41 s) hide a 0.86x slowdown (pooled p = 0.078; paired: 0.020)."""
    if math.isinf(margin) or not (found := paired_ratio(candidate, reference, margin)):
        return None
    ratio, p = found
    return (ratio, p) if ratio * margin < 1 and p < ALPHA else None


def paired_ratio(
    candidate: Sequence[float], reference: Sequence[float], margin: float = 1.0
) -> tuple[float, float] | None:
    """(ratio reference / candidate, one-sided paired p that `candidate` is slower by more than `margin`) over the
    candidate's rounds and the reference's same rounds (`paired_slowdown`'s test, without its thresholds), or None
    when there is no test: fewer than two rounds, or a time that is not positive. The ratio is the geometric mean
    of the rounds' own ratios: the test's own estimate (it is beyond `margin` exactly when p < 0.5), and a round's
    drift cancels in it; the ratio of the two medians can take them from different rounds
    (`scripts/slowdown_rule_simulation.py`, 8 % noise a round: with rule 4's test before, which took that ratio, a
    workload truly at 0.85x the default got through in 14 % of verifications with a drift of 20 % a round and in 7 %
    with 5 %; with this one, 4 % in both)."""
    count = len(candidate)
    if count < 2 or len(reference) < count:
        return None
    pair = {"candidate": list(candidate), "reference": list(reference[:count])}
    if min(*pair["candidate"], *pair["reference"]) <= 0:  # no log time, and no ratio
        return None
    ratio = math.exp(float(np.mean(np.log(pair["reference"]) - np.log(pair["candidate"]))))
    return ratio, block_slower_p(pair, "candidate", "reference", margin)
