"""`harness tune --validate-search`: is the search as good as the full grid, for a fraction of its time?

On a space small enough to measure fully (VALIDATION_SPACE), the full grid is measured on the
full dataset with the isolated runner, then the search runs over the same space. Both times are
wall clock in this run; the distance compares the search's pick with the grid's best using the
grid's own measurements, so the two are ranked by the same numbers.
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ..analysis import results
from ..measure import datasets
from ..measure.runner import Sweep, run_sweep
from .search import search
from .space import VALIDATION_SPACE, candidates, check_objective, score

TARGET_DISTANCE = 0.05
TARGET_FRACTION = 0.15


def run(request, log=print) -> dict:
    dataset_path = datasets.resolve(request.dataset)
    name = Path(request.dataset).stem if Path(request.dataset).exists() else request.dataset
    out = Path(request.out or Path("results") / "tune" / name) / "validation"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    points, _ = candidates(VALIDATION_SPACE, request.constraints)
    workloads = list(dict.fromkeys(["write", *check_objective(request.objective)]))
    log(f"grid: {len(points)} points x {workloads} on the full dataset, {request.repeats} repeats, one process each")
    with tempfile.TemporaryDirectory(prefix="harness-validate-") as tmp:
        t0 = time.perf_counter()
        grid_dir = out / f"grid-{stamp}"
        run_sweep(
            Sweep(
                dataset=str(dataset_path),
                points=points,
                workloads=workloads,
                repeats=request.repeats,
                warmup=1,
                timeout=request.timeout,
                results_dir=grid_dir,
                workdir=Path(tmp) / "grid",
                progress=request.progress,
            )
        )
        grid_s = time.perf_counter() - t0
        by_point: dict[str, dict[str, dict]] = {}
        for row in results.iter_rows(grid_dir):
            by_point.setdefault(row["point_id"], {})[row["workload"]] = row
        grid_scores = {pid: score(rows, request.objective) for pid, rows in by_point.items()}
        grid_scores = {k: v for k, v in grid_scores.items() if v is not None}
        log(f"search over the same {len(points)} points")
        t1 = time.perf_counter()
        found = search(
            dataset_path,
            request.objective,
            VALIDATION_SPACE,
            request.constraints,
            workdir=Path(tmp) / "search",
            budget_s=float("inf"),
            timeout=request.timeout,
            verify_repeats=request.repeats,
        )
        search_s = time.perf_counter() - t1
    best_id = min(grid_scores, key=grid_scores.get)
    pick = found.ranked[0].id
    distance = grid_scores[pick] / grid_scores[best_id] - 1
    report = {
        "dataset": name,
        "objective": request.objective,
        "points": len(points),
        "repeats": request.repeats,
        "grid_seconds": grid_s,
        "search_seconds": search_s,
        "time_fraction": search_s / grid_s,
        "grid_best": best_id,
        "grid_best_score": grid_scores[best_id],
        "search_pick": pick,
        "search_pick_grid_score": grid_scores[pick],
        "distance": distance,
        "within_distance": distance <= TARGET_DISTANCE,
        "within_time": search_s / grid_s <= TARGET_FRACTION,
        "grid_scores": grid_scores,
        "rungs": [{"rows": r.rows, "candidates": len(r.candidates), "seconds": r.seconds} for r in found.rungs],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"validation-{stamp}.json").write_text(json.dumps(report, indent=2))
    log(
        f"grid best {best_id} score {grid_scores[best_id]:.4g}; search picked {pick} "
        f"(grid score {grid_scores[pick]:.4g}, {distance:+.1%} from best; target <= {TARGET_DISTANCE:.0%})"
    )
    log(
        f"time: search {search_s:.0f}s vs grid {grid_s:.0f}s = {search_s / grid_s:.1%} (target <= {TARGET_FRACTION:.0%})"
    )
    log(f"saved {out / f'validation-{stamp}.json'}")
    return report
