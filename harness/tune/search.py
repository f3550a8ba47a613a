"""Successive halving on row subsamples, with anndata's defaults in every rung and ties kept per layout.

Every candidate of the space that writes a store of its own at the full data size (`layout`) is
measured on a random row sample of n/27 rows, in interleaved rounds (`measure.rounds`: a new random
order each round, an untimed warm-up on a slice, at least 3 rounds), beside anndata's defaults, which
are scored like every candidate and never pruned. A candidate moves on to the next, three times larger
sample unless it is significantly slower than the best candidate of its own layout (the same sharding
policy; one-sided Welch test on the log of its per-round objective, p < 0.05): ties are kept, not a
fixed third, and the best of every layout always moves on. Layouts are compared with each other only on
the full data (the verification): a sample mis-ranks layouts that are close, measured on 100k
(`scripts/sample_transfer.py`, Spearman -0.2 over five Fused layouts within 8 % of each other on the full data,
at n/27 rows, whether the sample keeps the full data's shard count or its shard shape), because per-shard costs
and the parallelism of many shards do not scale with the rows; wider gaps it gets right about as often as
pipelines (23-24 of 30 pairs of layouts, 10-13 of 15 of pipelines in three 100k validations: README).
Candidates that write the same store at a sample's size share one measurement there. Before the first
rung's timed rounds one untimed write of every distinct store gives the bytes of the candidates that write it,
and what --max-size-ratio rules out is not timed (`size_pass`). Lazy workloads
read a fraction of the rows, so a sample asks the same question as the full data. The search stops as soon
as no more candidates are left than the verification races on the full data (`enough`): a larger sample
would rank them less well than the full data does. Under --finalists auto it also stops when the next rung is
expected to save the verification less than it costs and racing every survivor fits in the budget
(`estimate.race_them_all`): a rung that keeps nearly all its ties (on small data, where a sample's time is mostly fixed
cost) would only rank them by the sample's noise. The survivors of the last rung, then the best of what
it pruned, go to the verification.
Why this search: it needs no model of the response surface (shard size and pipeline interact), it
spends most time on promising points, and its cost is bounded by the first rung.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.stats import median, slower_p
from ..errors import HarnessError
from ..matrix import Point
from ..measure.rounds import run_rounds
from . import estimate
from .layout import Shapes, at_sample, dataset_shapes, fingerprint, store_fingerprint
from .samples import rung_sizes, subsample
from .space import Constraints, candidates, check_objective, round_scores

ETA = 3
ROUNDS = 3  # rounds per rung: with fewer no test can tell a tie from a loss
ALPHA = 0.05
#: On a sample the size check is a pre-filter (the verification checks the full-data store): this much slack.
SAMPLE_SIZE_SLACK = 1.1


@dataclass
class Rung:
    rows: int
    candidates: list[str]
    scores: dict[str, float | None]  # median per-round objective
    rounds: dict[str, list[float]]  # per-round objective
    bytes: dict[str, int]  # store bytes on the sample
    rejected: dict[str, str]
    kept: list[str]  # promoted: not significantly worse than the best of its layout
    seconds: float
    slowdowns: dict[str, str] = field(default_factory=dict)  # on this sample, beyond --max-slowdown (`slowed`)

    @property
    def pruned(self) -> list[str]:
        """Timed here and not kept: significantly slower than the best of their layout."""
        return [c for c in self.candidates if c not in self.rejected and c not in self.kept]


@dataclass
class SearchResult:
    ranked: list[Point]  # the last rung's survivors, best first (defaults included)
    shapes: Shapes
    rungs: list[Rung] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    pruned: list[Point] = field(default_factory=list)  # scored but significantly slower: later rungs first, best first
    seconds: float = 0.0
    # the search stopped because racing every survivor on the full data costs less than the next rung would save
    # (`estimate.race_them_all`): --finalists auto then races them all
    race_all: bool = False
    verify_estimate_s: float = 0.0
    point_round_s: float = 0.0  # one (point, round) of the verification (`estimate.point_round_seconds`)
    note: str = ""  # said to the user: e.g. the search stopped early because of the budget


def _nothing_left(rejected: dict[str, str], rows: int, total: int) -> str:
    """Name the constraint that removed the most candidates."""
    counts: dict[str, int] = {}
    for reason in rejected.values():
        if reason.startswith("size"):
            key = "--max-size-ratio"
        elif reason.startswith("interop"):
            key = "--require-readable-by (cross-pipeline read failed)"
        else:
            key = f"the {reason.split(':')[0]} workload failing"
        counts[key] = counts.get(key, 0) + 1
    worst = max(counts, key=counts.get) if counts else "nothing measurable"
    return (
        f"no candidate satisfies the constraints on {rows} rows; {counts.get(worst, 0)} of {total} were removed by "
        f"{worst}; relax it or widen --pipelines"
    )


def _measure(
    pool: list[Point],
    shapes: Shapes,
    full_rows: int,
    sample: Path,
    workloads: list[str],
    readers: list[str],
    rounds: int,
    same: Callable[[Point, Shapes], str] = fingerprint,
    **kw: Any,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{point id: {workload: row}} for the pool, each measured the way a sample should (`layout.at_sample`);
    points that are the `same` at the sample's size (by default: write the same store and run the same) share one
    measurement."""
    fraction = shapes.n_obs / max(1, full_rows)
    scaled = {p.id: at_sample(p, fraction) for p in pool}
    first: dict[str, Point] = {}
    twin = {p.id: first.setdefault(same(scaled[p.id], shapes), scaled[p.id]).id for p in pool}
    measured = run_rounds(list(first.values()), sample, workloads, rounds=rounds, readers=readers, **kw)
    by_point: dict[str, dict[str, dict[str, Any]]] = {}
    for (pid, workload), row in measured.items():
        by_point.setdefault(pid, {})[workload] = row.to_json()
    return {p.id: by_point.get(twin[p.id], {}) for p in pool}


def _too_large(point: Point, size: int | None, ref_bytes: int | None, constraints: Constraints, level: int) -> str:
    """Why a candidate's sample store is too large for --max-size-ratio (with SAMPLE_SIZE_SLACK), or ''."""
    limit = constraints.max_size_ratio * SAMPLE_SIZE_SLACK
    if point.baseline or not ref_bytes or not size or size <= limit * ref_bytes:
        return ""
    return (
        f"size {size / ref_bytes:.2f}x anndata-default on {level and 'a larger' or 'the'} "
        f"sample exceeds --max-size-ratio {constraints.max_size_ratio:g}"
    )


def size_pass(
    pool: list[Point], shapes: Shapes, full_rows: int, sample: Path, constraints: Constraints, **kw: Any
) -> tuple[dict[str, int], dict[str, str]]:
    """Bytes of every candidate's sample store, from one untimed write of each distinct store (candidates that
    differ only in how they run share it: `layout.store_fingerprint`), and the candidates that --max-size-ratio
    rules out on them: the timed rounds then skip what the cap would reject after timing it (30 of 47 candidates on
    100k under the default cap). Bytes do not vary between rounds, so the rejections are the ones the timed rung
    would make. anndata-default is written for the reference bytes; the other defaults are never rejected for size,
    so they are not written. Nothing is rejected here without anndata-default's bytes."""
    if math.isinf(constraints.max_size_ratio):
        return {}, {}
    reference = next(p for p in pool if p.baseline == "anndata-default")
    written = [reference, *(p for p in pool if not p.baseline)]
    measured = _measure(written, shapes, full_rows, sample, ["write"], [], 1, store_fingerprint, warmup_rows=0, **kw)
    sizes = {pid: int(b) for pid, rows in measured.items() if (b := (rows.get("write") or {}).get("bytes"))}
    rejected = {
        p.id: reason
        for p in pool
        if (reason := _too_large(p, sizes.get(p.id), sizes.get(reference.id), constraints, 0))
    }
    return sizes, rejected


def _judge(
    pool: list[Point],
    measured: dict[str, dict[str, dict[str, Any]]],
    objective: str,
    constraints: Constraints,
    level: int,
) -> tuple[dict[str, list[float]], dict[str, int], dict[str, str]]:
    """Per-round objective and bytes of every candidate that measured and meets the constraints; the
    reasons of the others (defaults are never rejected for size)."""
    reference = next(p for p in pool if p.baseline == "anndata-default")
    ref_bytes = (measured.get(reference.id, {}).get("write") or {}).get("bytes")
    scores, sizes, rejected = {}, {}, {}
    for point in pool:
        rows_of = measured.get(point.id, {})
        bad = next(
            (
                f"{w}: {r.get('status')}: {r.get('error', '')}"
                for w, r in rows_of.items()
                if r.get("status") != "ok"
                and not (
                    w == "write" and r.get("status") == "unsupported" and "write" not in check_objective(objective)
                )
            ),
            None,
        )
        size = (rows_of.get("write") or {}).get("bytes")
        if bad:
            rejected[point.id] = bad
        elif too_large := _too_large(point, size, ref_bytes, constraints, level):
            rejected[point.id] = too_large
        elif (values := round_scores(rows_of, objective)) is None:
            rejected[point.id] = "objective: not measurable"
        else:
            scores[point.id] = values
            if size:
                sizes[point.id] = int(size)
    return scores, sizes, rejected


def slowed(
    measured: Mapping[str, Mapping[str, Mapping[str, Any]]], ids: list[str], reference: str, max_slowdown: float
) -> dict[str, str]:
    """Per candidate, the first measured workload on which it is slower than anndata-default by more than
    --max-slowdown on this sample (one-sided Welch on log times with that margin, p < 0.05), said as why. The
    finalists put these last (`finalists.choose`): on the full data rule 4 would reject them (on 100k Fused
    `rows-1024x16` was among the sample's best three in every tune the README records, and the full data ruled it
    out by lazy-random or lazy-gene every time)."""
    ref_rows = measured.get(reference, {})
    out: dict[str, str] = {}
    if math.isinf(max_slowdown):  # --max-slowdown none: no slowdown is too large
        return out
    for pid in ids:
        for workload, row in sorted(measured.get(pid, {}).items()):
            ref = ref_rows.get(workload, {})
            a, b = row.get("values") or [], ref.get("values") or []
            if row.get("status") != "ok" or ref.get("status") != "ok" or not a or not b or min(a + b) <= 0:
                continue
            if (p := slower_p(a, b, max_slowdown)) < ALPHA:
                out[pid] = f"{workload} {median(b) / median(a):.2f}x anndata-default on {len(a)} rounds (p = {p:.3f})"
                break
    return out


def layout_of(point: Point) -> str:
    """The layout family a point is ranked within on a sample: its sharding policy."""
    return point.axis("sharding")


def promoted(ranked: list[Point], scores: Mapping[str, list[float]]) -> list[Point]:
    """The ranked points that move on: the defaults, and every candidate not significantly slower than the
    best candidate of its layout (so the best of every layout moves on), in rank order."""
    best: dict[str, list[float]] = {}
    for point in ranked:
        if not point.baseline:
            best.setdefault(layout_of(point), scores[point.id])
    return [p for p in ranked if p.baseline or slower_p(scores[p.id], best[layout_of(p)]) >= ALPHA]


def search(
    dataset_path: Path,
    objective: str,
    space: Mapping[str, tuple[str, ...]],
    constraints: Constraints,
    *,
    workdir: Path,
    budget_s: float,
    timeout: float = 1800,
    rounds: int = ROUNDS,
    verify_rounds: int = 5,
    on_rung: Callable[[Rung], None] | None = None,
    env: dict[str, str] | None = None,
    verify_plan: estimate.VerifyPlan | None = None,
    loader: dict[str, Any] | None = None,
    client: Any = None,
    enough: int = 0,
    race_cost: Callable[[float, int], float] | None = None,
) -> SearchResult:
    """Successive halving with ties; returns the last rung's survivors ranked best first. It stops once at most
    `enough` candidates (besides the defaults) survive: the verification races that many on the full data. With
    `race_cost` (--finalists auto: the verification's seconds with n finalists, from one (point, round)'s) it
    also stops when racing every survivor costs less than the next rung would save (`estimate.race_them_all`).

    `env` points workers at running servers for remote stores; the defaults are on the space's store, so
    remote candidates are ranked against the default remote setup. `verify_plan` is what the verification will
    measure, for its estimate (by default the local workloads, six points per round, one network condition)."""
    started, total_s = time.perf_counter(), budget_s
    verify_plan = verify_plan or estimate.VerifyPlan()
    shapes = dataset_shapes(dataset_path)
    pool, dropped = candidates(space, constraints, shapes)
    workloads = list(dict.fromkeys(["write", *check_objective(objective)]))
    result = SearchResult(ranked=[], shapes=shapes, dropped=dropped)
    sizes = rung_sizes(shapes.n_obs)
    ref_times: dict[str, dict[int, float]] = {}  # anndata-default's median seconds: {workload: {rows: seconds}}
    for level, rows in enumerate(sizes):
        t0 = time.perf_counter()
        # Reader constraints are checked on the first (cheapest) rung so failing points leave early;
        # the verification repeats the check on the full dataset under every reader.
        readers = list(constraints.readable_by) if level == 0 else []
        common = {"workdir": workdir / f"rung-{level}", "timeout": timeout, "env": env, "seed": level, "client": client}
        sample = subsample(dataset_path, rows, workdir)
        size_bytes, too_large = ({}, {})
        if level == 0:
            size_bytes, too_large = size_pass(
                pool,
                shapes.sample(rows),
                shapes.n_obs,
                sample,
                constraints,
                **{**common, "loader": loader, "workdir": workdir / "rung-0-sizes"},
            )
        timed = [p for p in pool if p.id not in too_large]
        measured = _measure(
            timed,
            shapes.sample(rows),
            shapes.n_obs,
            sample,
            workloads,
            readers,
            rounds,
            loader=loader,
            **common,
        )
        scores, nbytes, rejected = _judge(timed, measured, objective, constraints, level)
        rejected = {**too_large, **rejected}
        nbytes = {**{k: v for k, v in size_bytes.items() if k in too_large}, **nbytes}
        for point in timed:  # a failed cross-pipeline read removes a candidate
            interop = measured.get(point.id, {}).get("interop")
            if interop and interop.get("status") != "ok" and point.id in scores:
                rejected[point.id] = f"interop: {interop.get('error', '')}"
                del scores[point.id]
        ranked = sorted((p for p in pool if p.id in scores), key=lambda p: median(scores[p.id]))
        if not any(not p.baseline for p in ranked):
            raise HarnessError(_nothing_left(rejected, rows, len(pool)))
        kept = promoted(ranked, scores)
        reference = next(p for p in pool if p.baseline == "anndata-default")
        result.pruned = [p for p in ranked if p not in kept] + result.pruned
        rung = Rung(
            rows,
            [p.id for p in pool],
            {k: median(v) for k, v in scores.items()},
            scores,
            nbytes,
            rejected,
            [p.id for p in kept],
            time.perf_counter() - t0,
            slowed(measured, [p.id for p in kept if not p.baseline], reference.id, constraints.max_slowdown),
        )
        result.rungs.append(rung)
        if on_rung:
            on_rung(rung)
        # the verification's cost: anndata-default's seconds extrapolated from the two largest samples so far
        estimate.record(ref_times, measured.get(reference.id, {}), rows)
        if level == 0:
            # a second, larger sample for the slope (the next rung's, which it then reuses; the full data when there
            # is no next rung), then the full data itself when the line through the two says it is cheap; anndata-
            # default alone, every workload the verification measures
            second = sizes[1] if len(sizes) > 1 else shapes.n_obs
            for on_rows in dict.fromkeys((second, shapes.n_obs)):
                if on_rows <= rows or (
                    on_rows != second and not estimate.cheap_full_data(ref_times, shapes.n_obs, verify_plan.workloads)
                ):
                    continue
                on_sample = _measure(
                    [reference],
                    shapes.sample(on_rows),
                    shapes.n_obs,
                    subsample(dataset_path, on_rows, workdir),
                    list(verify_plan.workloads),
                    [],
                    estimate.ESTIMATE_ROUNDS,
                    loader=loader,
                    **{**common, "workdir": workdir / f"rung-0-estimate-{on_rows}"},
                )
                estimate.record(ref_times, on_sample.get(reference.id, {}), on_rows)
        result.point_round_s = estimate.point_round_seconds(ref_times, shapes.n_obs, verify_plan.workloads)
        if level == 0:
            # what will be verified: at most verify_plan.points points (finalists and defaults) in every round, fewer
            # when fewer were measured
            points = min(verify_plan.points, len(ranked))
            result.verify_estimate_s = estimate.verification_estimate(
                result.point_round_s, points * verify_rounds, verify_rounds, verify_plan.sweeps
            )
            budget_s -= result.verify_estimate_s
        spent = time.perf_counter() - started
        contenders = [p for p in kept if not p.baseline]
        next_cost = rung.seconds * ETA * len(kept) / max(1, len(timed))  # 3x the rows for the kept points
        result.ranked = kept
        if level == len(sizes) - 1 or len(contenders) <= max(1, enough):
            break
        scored = sum(1 for p in ranked if not p.baseline)
        if race_cost and (
            why := estimate.race_them_all(
                len(contenders),
                scored,
                max(1, enough),
                next_cost,
                lambda n: race_cost(result.point_round_s, n),
                total_s - spent,
            )
        ):
            result.race_all, result.note = True, why
            break
        if spent + next_cost > budget_s:
            # what was measured is kept: the search stops here and the best of this rung are verified
            needed = spent + next_cost + result.verify_estimate_s
            result.note = (
                f"the budget is too small for more rungs: the next rung would take about {next_cost:.0f}s and the "
                f"verification up to {result.verify_estimate_s:.0f}s (anndata-default's time extrapolated from two "
                f"samples, with a margin); the best of rung {level + 1} of {len(sizes)} are verified (pass --budget "
                f"{math.ceil(needed / 60)}m for a deeper search)"
            )
            break
        pool = kept
    result.seconds = time.perf_counter() - started
    return result
