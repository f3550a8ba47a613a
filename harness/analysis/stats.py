"""The statistics every table and decision uses: median and IQR of raw repeats, and a two-sided
Mann-Whitney U test. One definition each, so a ratio printed anywhere means the same thing."""

from __future__ import annotations

from collections.abc import Sequence
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
