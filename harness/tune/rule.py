"""The rule, stated once here and in the README: a change is recommended only when, on the full data, (1) every
workload read back equal, (2) its store reads back under every required reader, (3) its store is at most
--max-size-ratio x anndata-default's, (4) no verified workload, in the objective or outside it (lazy-obs, lazy-gene,
...), is slower than anndata-default's by more than --max-slowdown (default 1.1): not with significance
(`stats.paired_slowdown`: the geometric mean of its rounds' ratios to the default's beyond that factor and a
one-sided paired p < 0.05 that it is slower by more than it), and not on that mean either (`unresolved`: beyond it
without significance; up to --deciding-rounds more rounds of that workload decide, `race.undecided`, and one still
beyond it after them rules the point out), and (5) it beats anndata-default on the objective: two-sided Mann-Whitney
p < 0.05 on the per-round objective values and the 95% bootstrap interval of the objective ratio (default /
candidate) entirely above 1. Of those, the best objective wins; when none qualifies the answer is "keep anndata's
default". `judge` gives every verified point its verdict under that rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..analysis import results
from ..analysis.stats import ALPHA, mann_whitney, median, paired_ratio, paired_slowdown, ratio_interval
from ..matrix import Point
from .request import TuneRequest
from .space import OBJECTIVES, round_scores


@dataclass
class Verdict:
    """One verified point against anndata-default on the full data."""

    point: Point
    objective: float | None = None  # median per-round objective (lower is better)
    ratio: float | None = None  # anndata-default's objective / this one's (> 1: better)
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    bytes: int | None = None
    bytes_ratio: float | None = None
    problems: list[str] = field(default_factory=list)  # why it cannot be recommended (correctness, size, slowdown)

    @property
    def correct(self) -> bool:
        return not any(p.startswith(("workload", "reader")) for p in self.problems)

    @property
    def beats(self) -> bool:
        """Better than anndata-default on the objective, significantly (the rule in the docstring)."""
        return (
            self.ratio is not None
            and self.ratio > 1
            and self.p_value is not None
            and self.p_value < ALPHA
            and self.interval is not None
            and self.interval[0] > 1
        )

    @property
    def qualifies(self) -> bool:
        return not self.problems and self.beats


def by_point(rows: list[dict[str, Any]], network: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{point id: {workload: row}} of the rows measured under `network`."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if results.network_of(row) == network:
            out.setdefault(row["point_id"], {})[row["workload"]] = row
    return out


def _store_bytes(rows_of: dict[str, dict[str, Any]]) -> int | None:
    return next((int(r["bytes"]) for w, r in sorted(rows_of.items()) if r.get("bytes") and w != "interop"), None)


def _values(ref: dict[str, Any], row: dict[str, Any]) -> tuple[list[float], list[float]] | None:
    """One workload's per-round values and anndata-default's, when both ran cleanly."""
    if ref.get("status") != "ok" or row.get("status") != "ok":
        return None
    return list(row.get("values") or []), list(ref.get("values") or [])


def slowdown(ref: dict[str, Any], row: dict[str, Any], max_slowdown: float) -> str | None:
    """Why one workload is significantly slower than anndata-default by more than `max_slowdown` (rule 4 of the
    module's docstring; with 1, slower at all), or None: `stats.paired_slowdown` of its per-round values against
    anndata-default's in the same rounds."""
    if not (values := _values(ref, row)) or not (found := paired_slowdown(*values, max_slowdown)):
        return None
    return f"{found[0]:.2f}x anndata-default, p = {found[1]:.3f}"


def paired(ref: dict[str, Any], row: dict[str, Any], margin: float = 1.0) -> tuple[float, float] | None:
    """(ratio to anndata-default, paired p that it is slower by more than `margin`) of one workload, whatever their
    size (`stats.paired_ratio`: rule 4's test without its thresholds), or None when there is no test."""
    return paired_ratio(*values, margin) if (values := _values(ref, row)) else None


def unresolved(ref: dict[str, Any], row: dict[str, Any], max_slowdown: float) -> tuple[float, float] | None:
    """(ratio, p) of a workload slower than anndata-default's round by round by more than --max-slowdown that
    rule 4's paired test does not find significantly beyond it (p >= 0.05): more rounds decide (`race.undecided`),
    and at their end it rules the point out; None otherwise."""
    if math.isinf(max_slowdown) or not (found := paired(ref, row, max_slowdown)):
        return None
    return found if found[0] * max_slowdown < 1 and found[1] >= ALPHA else None


def judge(
    request: TuneRequest, points: list[Point], rows: list[dict[str, Any]], slowdowns=True, pending=False
) -> list[Verdict]:
    """A verdict for every verified point (under the last network condition: what the search optimised for);
    `slowdowns=False` leaves rule 4 out (the race has a stricter test of its own, `race._slowed`); `pending`: more
    rounds may still decide a workload slower round by round without significance (`unresolved`), so it is not
    yet a problem."""
    by = by_point(rows, request.verify_networks[-1].label)
    reference = request.references()[0]
    ref_rows = by.get(reference.id, {})
    ref_scores, ref_bytes = round_scores(ref_rows, request.objective) or [], _store_bytes(ref_rows)
    verdicts, max_slowdown = [], request.constraints.max_slowdown
    for point in points:
        rows_of = by.get(point.id, {})
        verdict = Verdict(point, bytes=_store_bytes(rows_of))
        for workload, row in sorted(rows_of.items()):
            # a workload this machine cannot run (a read-only store's write, a peer that is not installed) only
            # matters when the objective needs it; a failure always does
            informational = workload not in OBJECTIVES[request.objective] and workload != "interop"
            if row.get("status") != "ok" and not (row.get("status") == "unsupported" and informational):
                kind = "reader" if workload == "interop" else "workload"
                verdict.problems.append(f"{kind} {workload}: {row.get('status')} {row.get('error', '')}"[:300])
            elif slowdowns and workload != "interop" and point.baseline != "anndata-default":
                ref, limit = ref_rows.get(workload, {}), f"--max-slowdown {max_slowdown:g}"
                if why := slowdown(ref, row, max_slowdown):
                    verdict.problems.append(f"slowdown {workload}: {why} exceeds {limit}")
                elif not pending and (found := unresolved(ref, row, max_slowdown)):  # no more rounds to come
                    verdict.problems.append(
                        f"slowdown {workload}: {found[0]:.2f}x anndata-default round by round over "
                        f"{len(row.get('values') or [])} rounds exceeds {limit} (not significantly: p = {found[1]:.3f})"
                    )
        if verdict.bytes and ref_bytes:
            verdict.bytes_ratio = verdict.bytes / ref_bytes
            if verdict.bytes_ratio > request.constraints.max_size_ratio and point.baseline != "anndata-default":
                verdict.problems.append(
                    f"size {verdict.bytes_ratio:.3f}x anndata-default's bytes exceeds "
                    f"--max-size-ratio {request.constraints.max_size_ratio:g}"
                )
        scores = round_scores(rows_of, request.objective)
        if scores and ref_scores:
            verdict.objective = median(scores)
            verdict.ratio = median(ref_scores) / verdict.objective
            verdict.p_value = mann_whitney(ref_scores, scores)
            verdict.interval = ratio_interval(ref_scores, scores)
        verdicts.append(verdict)
    return verdicts


def objectives(request: TuneRequest, rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Every verified point's per-round objective (under the last network condition), for those it measured."""
    by = by_point(rows, request.verify_networks[-1].label)
    return {pid: v for pid, rows_of in by.items() if (v := round_scores(rows_of, request.objective))}
