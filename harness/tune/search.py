"""Successive halving on row subsamples.

Every candidate is screened on a small random row subsample; the best third (eta = 3) moves on to a
subsample three times larger, and so on. Shapes are data-relative (`rows-RxK` policies), so a ranking
made on a sample transfers to the full data. Screening batches all candidates of a rung into one worker
process per event loop (process start-up would otherwise dominate); the finalists are then verified the
usual way, one isolated process per point, beside anndata's defaults in the same run, and round-tripped
under every reader pipeline. Why this search: it needs no model of the response surface (shard size and
pipeline interact, so factorising axes would be wrong), it spends most time on promising points, and its
cost is bounded by the first rung, which is cheap because the sample is small.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import matrix
from ..analysis.stats import median
from ..errors import HarnessError
from ..matrix import Point
from ..measure.runner import run_batch
from .space import VERIFY_WORKLOADS, Constraints, candidates, check_objective, score

ETA = 3
MIN_SAMPLE_ROWS = 500


def rung_sizes(n_obs: int) -> list[int]:
    """Sample sizes of the rungs: n/27, n/9, n/3 rows, at least MIN_SAMPLE_ROWS, deduplicated."""
    sizes = sorted({min(n_obs, max(MIN_SAMPLE_ROWS, n_obs // d)) for d in (27, 9, 3)})
    return sizes or [n_obs]


def subsample(dataset_path: Path, rows: int, workdir: Path, seed: int = 0) -> Path:
    """A random row sample of the dataset as .h5ad (read backed, so big datasets stay on disk)."""
    import anndata as ad
    import numpy as np

    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"sample-{rows}-seed{seed}.h5ad"
    if out.exists():
        return out
    full = ad.read_h5ad(dataset_path, backed="r") if dataset_path.is_file() else ad.io.read_zarr(dataset_path)
    if rows >= full.n_obs:
        return dataset_path
    idx = np.sort(np.random.default_rng(seed).choice(full.n_obs, size=rows, replace=False))
    full[idx].to_memory().write_h5ad(out)
    return out


def n_obs_of(dataset_path: Path) -> int:
    import anndata as ad

    if dataset_path.is_file():
        import h5py

        with h5py.File(dataset_path, "r") as f:
            return int(ad.io.read_elem(f["obs"]).shape[0]) if "obs" in f else 0
    return ad.experimental.read_lazy(dataset_path).n_obs


@dataclass
class Rung:
    rows: int
    candidates: list[str]
    scores: dict[str, float | None]
    rejected: dict[str, str]
    seconds: float


@dataclass
class SearchResult:
    ranked: list[Point]
    rungs: list[Rung] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    verify_estimate_s: float = 0.0
    note: str = ""  # said to the user: e.g. the search stopped early because of the budget


def _nothing_left(rejected: dict[str, str], rows: int, total: int) -> str:
    """Name the constraint that removed the most candidates."""
    counts: dict[str, int] = {}
    for reason in rejected.values():
        key = (
            "--max-size-ratio"
            if reason.startswith("size")
            else "--require-readable-by (cross-pipeline read failed)"
            if reason.startswith("interop")
            else f"the {reason.split(':')[0]} workload failing"
        )
        counts[key] = counts.get(key, 0) + 1
    worst = max(counts, key=counts.get) if counts else "nothing measurable"
    return (
        f"no candidate satisfies the constraints on {rows} rows; {counts.get(worst, 0)} of {total} were removed by "
        f"{worst}; relax it or widen --pipelines"
    )


def _verification_estimate(
    ref_rows: Mapping[str, Mapping[str, Any]],
    rows: int,
    n_obs: int,
    repeats: int,
    shape: tuple[int, int, int] = (len(VERIFY_WORKLOADS), 3, 1),
) -> float:
    """Seconds to verify on the full data, scaled from anndata-default's cost on the sample.
    `shape` = (workloads, points, sweeps): local 7 workloads x 3 points x 1; remote 5 x 2 x networks."""
    workloads, points, sweeps = shape
    per_run = sum(median(r.get("values")) or 0 for r in ref_rows.values())
    per_workload = per_run / max(1, len(ref_rows))
    startup = 5.0  # interpreter, imports and dataset load per isolated point (measured order of magnitude)
    return sweeps * points * (per_workload * workloads * (n_obs / rows) * (repeats + 1) + startup)


def _measure_rung(
    points: list[Point],
    sample: Path,
    workloads: list[str],
    repeats: int,
    workdir: Path,
    timeout: float,
    readers: list[str],
    env: dict[str, str] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """All points of a rung, batched one worker per event loop; {point id: {workload: row}}."""
    by_point: dict[str, dict[str, dict[str, Any]]] = {}
    # one worker per event loop and knob setting: both are fixed once zarr (or zarrs) has started
    settings = sorted({(p.config.loop, p.config.knobs.name) for p in points})
    for index, setting in enumerate(settings):
        group = [p for p in points if (p.config.loop, p.config.knobs.name) == setting]
        # No per-point warm-up while screening: the reference point goes first and absorbs import costs.
        got = run_batch(
            group,
            sample,
            workloads,
            repeats=repeats,
            warmup=0,
            workdir=workdir / f"rung-{index}",
            timeout=timeout,
            readers=readers,
            env=env,
        )
        for (pid, workload), row in got.items():
            by_point.setdefault(pid, {})[workload] = row.to_json()
    return by_point


def search(
    dataset_path: Path,
    objective: str,
    space: Mapping[str, tuple[str, ...]],
    constraints: Constraints,
    *,
    workdir: Path,
    budget_s: float,
    timeout: float = 1800,
    keep: int = 3,
    verify_repeats: int = 5,
    on_rung: Callable[[Rung], None] | None = None,
    env: dict[str, str] | None = None,
    verify_shape: tuple[int, int, int] = (len(VERIFY_WORKLOADS), 3, 1),
) -> SearchResult:
    """Successive halving; returns candidates ranked best first (at least `keep` when possible).

    `env` points workers at running servers for remote stores; the reference is anndata-default on
    the space's (first) store, so remote candidates are ranked against the default remote setup."""
    started = time.perf_counter()
    pool, dropped = candidates(space, constraints)
    workloads = list(dict.fromkeys(["write", *check_objective(objective)]))
    reference = matrix.baseline_point("anndata-default").with_axes(store=space.get("store", ("local",))[0])
    result = SearchResult(ranked=[], dropped=dropped)
    n_obs = n_obs_of(dataset_path)
    sizes = rung_sizes(n_obs)
    for level, rows in enumerate(sizes):
        t0 = time.perf_counter()
        last = level == len(sizes) - 1
        sample = subsample(dataset_path, rows, workdir)
        # Reader constraints are checked on the first (cheapest) rung so failing points leave early;
        # the verification repeats the check on the full dataset under every reader.
        readers = list(constraints.readable_by) if level == 0 else []
        measured = _measure_rung(
            [reference, *pool],
            sample,
            workloads,
            repeats=1 + level,
            workdir=workdir,
            timeout=timeout,
            readers=readers,
            env=env,
        )
        ref_bytes = (measured.get(reference.id, {}).get("write") or {}).get("bytes")
        scores, rejected = {}, {}
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
            if bad:
                rejected[point.id] = bad
                continue
            size = (rows_of.get("write") or {}).get("bytes")
            if constraints.max_size_ratio and ref_bytes and size and size > constraints.max_size_ratio * ref_bytes:
                rejected[point.id] = (
                    f"size {size / ref_bytes:.2f}x anndata-default exceeds --max-size-ratio {constraints.max_size_ratio}"
                )
                continue
            scores[point.id] = score(rows_of, objective)
        ranked = sorted((p for p in pool if scores.get(p.id) is not None), key=lambda p: scores[p.id])
        rung = Rung(rows, [p.id for p in pool], scores, rejected, time.perf_counter() - t0)
        result.rungs.append(rung)
        if on_rung:
            on_rung(rung)
        if not ranked:
            raise HarnessError(_nothing_left(rejected, rows, len(pool)))
        if level == 0:
            verify_s = _verification_estimate(measured.get(reference.id, {}), rows, n_obs, verify_repeats, verify_shape)
            result.verify_estimate_s = verify_s
            if verify_s > budget_s:
                # what was measured is kept: the search stops here and the best of this rung are verified.
                # (The estimate scales the sample's times by rows; round-trip-bound remote times scale less.)
                result.note = (
                    f"budget {budget_s:.0f}s is too small for more rungs: verifying against the baselines is "
                    f"estimated at {verify_s:.0f}s on this dataset; the best of the first rung are verified "
                    f"(pass --budget {math.ceil(verify_s * 1.5 / 60)}m or fewer --repeats for a deeper search)"
                )
            budget_s -= verify_s
        spent = time.perf_counter() - started
        next_cost = rung.seconds * ETA * (2 + level) / (1 + level) / ETA  # 3x rows, 1/3 of the points, +1 repeat
        if last or spent + next_cost > budget_s:
            result.ranked = ranked
            break
        pool = ranked[: max(keep, math.ceil(len(ranked) / ETA))]
    result.seconds = time.perf_counter() - started
    return result
