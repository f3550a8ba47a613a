"""`harness tune --validate-search`: is the tune's answer as good as the full grid's, for a fraction of its cost?

On a space small enough to measure fully (VALIDATION_SPACE, or the request's own space), every candidate
and anndata's defaults are measured on the full dataset in interleaved rounds (the grid). Then the whole
tune runs over the same space: search and verification. Reported: the tune's pick against the grid's best
on the grid's own measurements (so both are ranked by the same numbers; the pick may be anndata's
default), the tune's whole cost as a share of the grid's, both wall clock in this run, and the Spearman
rank correlation between the first rung's scores (on n/27 rows) and the grid's for the grid's top
candidates: how well a sample ranks what the full data will do. And what the search could have given with a
perfect race of its first k finalists, for every k (`reach`): whether any number of finalists meets both targets,
or the search itself costs too much or ranks too poorly for any to.

`--validate-grid` takes the grid from an earlier validation (its rows and wall clock), so a change to the
search is validated against the same grid in the time of one tune; the cost share then compares two runs,
so both should come from the same host and session. A grid that was stopped goes on from its last finished
round when the validation is started again, its cost counting the rounds kept.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.results import Status
from ..analysis.stats import block_ratio_interval, block_slower_p
from ..errors import HarnessError
from ..measure import datasets
from ..measure.rounds import interrupted
from ..measure.runner import Sweep, run_sweep
from . import run as run_tune
from .layout import dataset_shapes
from .race import fewest_point_rounds
from .request import TuneRequest
from .rule import judge, objectives
from .space import VALIDATION_SPACE, candidates, check_objective

TARGET_DISTANCE = 0.05
TARGET_FRACTION = 0.15
EVIDENCE = ("distance_interval", "slower_than_best_p", "beyond_target_p")  # what `distance_evidence` gives
TOP = 10  # candidates of the grid's ranking the rank correlation is computed over


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


Grid = tuple[dict[str, float], set[str], dict[str, list[float]]]


def grid_scores(request: TuneRequest, dataset_path: Path, space: dict, workdir: Path, out: Path) -> Grid:
    """Every candidate of `space` (and the defaults) on the full data, interleaved rounds, every workload the
    verification measures, into `out`; then scored (`scores`)."""
    points, _ = candidates(space, request.constraints, dataset_shapes(dataset_path))
    check_objective(request.objective)
    workloads = list(dict.fromkeys(["write", *request.verify_workloads()]))
    run_sweep(
        Sweep(
            dataset=str(dataset_path),
            points=points,
            workloads=workloads,
            rounds=request.repeats,
            timeout=request.timeout,
            results_dir=out,
            workdir=workdir,
            progress=request.progress,
            cluster=request.cluster,
        )
    )
    return scores(request, points, list(results.iter_rows(out)))


def scores(request: TuneRequest, points: list, rows: list[dict]) -> Grid:
    """{point id: score} of the grid's rows (none for a point with a workload that failed or timed out in one of
    its rounds: `unscored`), the ids a recommendation could be: the defaults, and the
    points the tune's rule (`rule.judge`) finds no problem with: correct, within --max-size-ratio and no
    slower than --max-slowdown allows on any workload (the rule also asks for significance on the objective;
    the grid's best is judged on the numbers), and every point's per-round objective."""
    verdicts = judge(request, points, rows)
    # a workload that failed or timed out in a round leaves a score of the others: not comparable, so none
    broken = {r["point_id"] for r in rows if r.get("status") in (Status.FAILED, Status.TIMEOUT)}
    scored = {v.point.id: v.objective for v in verdicts if v.objective is not None and v.point.id not in broken}
    allowed = {v.point.id for v in verdicts if v.point.id in scored and (v.point.baseline or not v.problems)}
    return scored, allowed, objectives(request, rows)


def distance_evidence(rounds: dict[str, list[float]], pick: str, best: str) -> dict[str, Any]:
    """What the grid's own rounds say about the pick's distance from the grid's best: the 95 % interval of the
    distance (the pick's time over the best's, minus 1) and the one-sided p that the pick is slower than the best
    at all and by more than TARGET_DISTANCE, against the noise of all the grid's points in its interleaved rounds
    (`stats.block_ratio_interval`, `stats.block_slower_p`). The grid's best is the luckiest of its points, so a
    distance of a few per cent need not be real: on a 10k grid of five rounds on a noisy day Fused `rows-256x16`
    was 11.4 % from the best, p = 0.19 that it was more than 5 % slower, where keeping the default was 29.4 %,
    p = 0.015."""
    if pick == best:
        return {"distance_interval": [0.0, 0.0], "slower_than_best_p": 1.0, "beyond_target_p": 1.0}
    interval = block_ratio_interval(rounds, pick, best)
    return {
        "distance_interval": [interval[0] - 1, interval[1] - 1] if interval else None,
        "slower_than_best_p": block_slower_p(rounds, pick, best),
        "beyond_target_p": block_slower_p(rounds, pick, best, 1 + TARGET_DISTANCE),
    }


def point_rounds_run(record: dict[str, Any]) -> int:
    """The (point, round) measurements a tune's verification made (recommended.json's verification table): per
    network condition and point, the most rounds any of its workloads ran."""
    most: dict[tuple[str, str], int] = {}
    for row in record["verification"]:
        for pid, cell in row.items():
            if isinstance(cell, dict):
                key = (row.get("network", "none"), pid)
                most[key] = max(most.get(key, 0), len(cell.get("values") or []))
    return sum(most.values())


def reach(
    request: TuneRequest, record: dict[str, Any], grid: dict[str, float], allowed: set[str], scale_s: float
) -> list[dict[str, Any]]:
    """What the tune's search could have given with a perfect race of its first k finalists, k = 1 .. all it raced
    (recommended.json's verdicts come in the order `finalists.choose` took them, so the first k are what --finalists
    k races): the grid's best of them and the defaults within the grid's rules, at the fewest measurements a race of
    k can make (`race.fewest_point_rounds`) at the seconds per (point, round) of this tune's verification, the
    search as it ran. Both are bounds from below: a race finds no better pick, and runs no fewer rounds. When no k
    meets both targets, no number of finalists would have, and the search is what costs too much or ranks too
    poorly. A k whose finalists include a point the grid could not score is no bound: its pick and distance are None
    and the point is in its `unscored` (a perfect race might pick it; a 100k tune's pick was such a point).
    `scale_s`: the grid's seconds at this run's pace (the shares are of the grid's cost at its pace)."""
    best = min(allowed, key=grid.get)
    finalists = [v["point_id"] for v in record["verdicts"] if not v["default"]]
    search_s = record["search"]["seconds"]
    per_point_round = (record["tune_seconds"] - search_s) / max(1, point_rounds_run(record))
    out = []
    for k in range(1, len(finalists) + 1):
        # the grid's best of them within its rules, unless one of them has no grid score (then unknown)
        unknown = [p for p in finalists[:k] if p not in grid]
        pick = min((p for p in [*finalists[:k], *record["references"]] if p in allowed), key=grid.get, default=None)
        pick = None if unknown else pick
        rounds = fewest_point_rounds(request, k, change=pick != record["reference"]) * len(request.verify_networks)
        cost = (search_s + rounds * per_point_round) / scale_s
        distance = grid[pick] / grid[best] - 1 if pick else None
        within = distance is not None and distance <= TARGET_DISTANCE and cost <= TARGET_FRACTION
        out.append(
            {"finalists": k, "pick": pick, "unscored": unknown, "distance": distance, "time_fraction": cost}
            | {"within_target": within}
        )
    return out


def reach_text(rows: list[dict[str, Any]], search_fraction: float) -> str:
    """The log's line on `reach`."""
    met = [r["finalists"] for r in rows if r["within_target"]]
    unknown = [r["finalists"] for r in rows if r.get("unscored")]  # a finalist the grid could not score
    said = {r["finalists"]: "n/a" if r["distance"] is None else format(r["distance"], "+.1%") for r in rows}
    said |= dict.fromkeys(unknown, "unknown")
    end = f"; no k meets both targets (the search alone is {search_fraction:.1%} of the grid's cost)"
    if unknown and not met:
        end = f"; from k = {unknown[0]} a finalist the grid could not score might be the pick: whether a k meets "
        end += "both is unknown"
    return (
        "a perfect race of the tune's first k finalists (the grid's best of them, at the fewest rounds its race can "
        "run): "
        + ", ".join(f"k={r['finalists']} {said[r['finalists']]} at {r['time_fraction']:.1%}" for r in rows)
        + (f"; both targets in reach with k = {', '.join(map(str, met))}" if met else end)
    )


def reused_grid(request: TuneRequest, dataset_path: Path, space: dict, report: Path) -> tuple[Grid, float, Path]:
    """The grid of an earlier validation (`report`: its validation-*.json, with its grid-* rows beside it),
    scored under this request's rules (`scores`), the grid's wall clock then, its rows directory."""
    try:
        old = json.loads(report.read_text())
        seconds, rounds = float(old["grid_seconds"]), int(old["rounds"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(
            f"--validate-grid {report}: not a validation report ({exc!r}); pass a validation-*.json that "
            "--validate-search wrote"
        ) from None
    if rounds != request.repeats:
        raise HarnessError(
            f"--validate-grid {report}: its grid ran {rounds} rounds, this tune {request.repeats}: the costs would "
            f"not compare; pass --repeats {rounds}"
        )
    # where its grid's rows are: a report of a reused grid names the grid it took (older reports do not)
    rows_dir = Path(old.get("grid_rows") or report.with_name(report.stem.replace("validation-", "grid-", 1)))
    if not rows_dir.is_dir() and report.with_name(rows_dir.name).is_dir():  # written relative to another folder
        rows_dir = report.with_name(rows_dir.name)
    rows = list(results.iter_rows(rows_dir))
    fingerprint = datasets.fingerprint(dataset_path)
    rows = [r for r in rows if (r.get("dataset") or {}).get("fingerprint") == fingerprint]
    points, _ = candidates(space, request.constraints, dataset_shapes(dataset_path))
    measured = {r["point_id"] for r in rows}
    missing = [p.id for p in points if p.id not in measured]
    if missing:
        raise HarnessError(
            f"--validate-grid {report}: its grid ({rows_dir.name}) has no rows on this dataset for {len(missing)} "
            f"of the space's {len(points)} points (e.g. {missing[0]}); validate with the same dataset, space and "
            "--pipelines, or leave --validate-grid out to measure the grid"
        )
    return scores(request, points, rows), seconds, rows_dir


def compared_every_round(rows: list[dict]) -> bool:
    """Whether a grid's rows come from before the whole-store checks ran in the first round only
    (`WorkerSpec.check`): their rows carry no `checked`, and every round compared its stores with the source,
    so such a grid cost more than one measured now (on 100k two comparisons of 1.8-3.4 s per point and round)."""
    return not any("checked" in r for r in rows if r.get("workload") == "write" and r.get("status") == "ok")


def interrupted_grid(out: Path) -> tuple[Path, float] | None:
    """The newest grid under `out` that was stopped before its rows were in, and the wall clock its kept workers
    took (`measure.rounds.Checkpoint`): a validation started again goes on with it instead of starting over."""
    for grid_dir in sorted(out.glob("grid-*"), reverse=True):
        if (seconds := interrupted(grid_dir)) is not None:
            return grid_dir, seconds
    return None


def run(request: TuneRequest, log=print, space: dict | None = None, reuse: Path | None = None) -> dict[str, Any]:
    """The grid (measured, or with `reuse` taken from an earlier validation-*.json), then the tune over the
    same space; the comparison is logged and saved as validation-<time>.json beside the grid."""
    space = space or VALIDATION_SPACE
    dataset_path = datasets.resolve(request.dataset)
    name = Path(request.dataset).stem if Path(request.dataset).exists() else request.dataset
    out = Path(request.out or Path("results") / "tune" / name) / "validation"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with tempfile.TemporaryDirectory(prefix="harness-validate-") as tmp:
        if reuse:
            (grid, allowed, rounds), grid_s, grid_dir = reused_grid(request, dataset_path, space, Path(reuse))
            log(f"grid: {len(grid)} points from {grid_dir}, measured then in {grid_s:.0f}s")
        else:
            log(f"grid: every candidate of the space on the full dataset, {request.repeats} interleaved rounds")
            grid_dir, kept = interrupted_grid(out) or (out / f"grid-{stamp}", 0.0)
            if kept:
                log(f"grid: going on with the interrupted grid in {grid_dir} ({kept:.0f}s of its workers were kept)")
            t0 = time.perf_counter()
            grid, allowed, rounds = grid_scores(request, dataset_path, space, Path(tmp) / "grid", grid_dir)
            # the kept workers it went on from count (a checkpoint of another space's grid is left there, unused)
            grid_s = time.perf_counter() - t0 + kept - (interrupted(grid_dir) or 0.0)
            log(f"grid: {len(grid)} points in {grid_s:.0f}s")
        grid_rows = list(results.iter_rows(grid_dir))
        compared = compared_every_round(grid_rows)
        if reuse and compared:
            log(
                "grid: measured when every round compared its stores with the source (now the first round "
                "only), so it cost more than a grid measured now and the cost share below is lower than a "
                "share of the same kind: leave --validate-grid out to measure one"
            )
        log("now the tune over the same space (search and verification)")
        t1 = time.perf_counter()
        tuned = run_tune(replace(request, space=dict(space), out=out / f"tune-{stamp}"), log=log)
        tune_s = time.perf_counter() - t1
    record = json.loads((tuned / "recommended.json").read_text())
    report = {
        "dataset": name,
        "objective": request.objective,
        "rounds": request.repeats,
        "grid_rows": str(Path(grid_dir).resolve()),
        "grid_reused": bool(reuse),
        "grid_compared_every_round": compared,
        **compare(request, record, (grid, allowed, rounds), unscored(grid_rows, grid), tune_s, grid_s),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"validation-{stamp}.json").write_text(json.dumps(report, indent=2))
    for line in report_lines(request, report):
        log(line)
    log(f"saved {out / f'validation-{stamp}.json'}")
    return report


def unscored(rows: list[dict], grid: dict[str, float]) -> dict[str, str]:
    """{point id: its first failure, e.g. 'lazy-gene: timeout'} of the grid's points it has no score for."""
    out: dict[str, str] = {}
    for row in rows:
        if row["point_id"] not in grid and row.get("status") != "ok":
            out.setdefault(row["point_id"], f"{row['workload']}: {row.get('status')}")
    return out


def compare(
    request: TuneRequest, record: dict[str, Any], grid_data: Grid, failed: dict[str, str], tune_s: float, grid_s: float
) -> dict[str, Any]:
    """The tune's answer (recommended.json) against the grid's: the pick's distance from the grid's best with what
    the grid's rounds say about it, both costs, the rank correlation of rung 0 and `reach`. A pick the grid could
    not score (`failed`: a point that failed or timed out in one of the grid's rounds) has no distance: None, and
    it is not within the distance target."""
    grid, allowed, rounds = grid_data
    if not allowed:
        raise HarnessError(
            "the grid scored none of the points a recommendation could be (the defaults included): "
            f"{', '.join(f'{p} ({why})' for p, why in list(failed.items())[:3])}; measure the grid again"
        )
    best = min(allowed, key=grid.get)  # what a recommendation could be: within the size limit
    fastest = min(grid, key=grid.get)
    pick = record["point_id"]
    rung0 = record["search"]["rungs"][0]["scores"]
    # the host's pace against the grid's: the reference's objective (anndata-default, or the default remote setup)
    # in the tune's verification over the grid's (a reused grid ran on another day; on 2026-12-06 the same host ran
    # anndata-default 1.47x slower)
    reference = record["references"][0]
    default = next((v["objective"] for v in record["verdicts"] if v["point_id"] == reference), None)
    pace = default / grid[reference] if default and grid.get(reference) else None
    paced_grid_s = grid_s * (pace or 1.0)  # the grid's seconds at this run's pace
    top = [pid for pid in sorted(grid, key=grid.get) if pid in rung0][:TOP]
    scored = pick in grid
    report = {
        "points": len(grid) + len(failed),
        "grid_seconds": grid_s,
        "grid_unscored": failed,
        "tune_seconds": tune_s,
        "search_seconds": record["search"]["seconds"],
        "time_fraction": tune_s / grid_s,
        "reference": reference,
        "host_pace": pace,  # > 1: the tune ran on a slower host than the grid
        "time_fraction_at_grid_pace": tune_s / grid_s / pace if pace else None,
        "grid_best": best,
        "grid_best_score": grid[best],
        "grid_fastest_any_size": fastest,
        "grid_fastest_any_size_score": grid[fastest],
        "grid_allowed": sorted(allowed),
        "tune_pick": pick,
        "tune_outcome": record["outcome"],
        "tune_pick_grid_score": grid.get(pick),
        "distance": grid[pick] / grid[best] - 1 if scored else None,
        **(distance_evidence(rounds, pick, best) if scored else dict.fromkeys(EVIDENCE)),
        # the grid's own rounds may rule the pick out (bytes, or a workload slower than --max-slowdown) where the
        # verification's did not: a slowdown near the edge of what five rounds resolve
        "pick_within_grid_rules": pick in allowed,
        "rank_correlation_rung0": spearman([rung0[p] for p in top], [grid[p] for p in top]),
        "rank_correlation_points": top,
        "grid_scores": grid,
        "rung0_scores": rung0,
        "reach": reach(request, record, grid, allowed, paced_grid_s),
        "search_fraction_at_grid_pace": record["search"]["seconds"] / paced_grid_s,
    }
    report["within_distance"] = scored and report["distance"] <= TARGET_DISTANCE
    report["within_time"] = report["time_fraction"] <= TARGET_FRACTION
    return report


def report_lines(request: TuneRequest, report: dict[str, Any]) -> list[str]:
    """The log's lines on a validation's report (`compare`)."""
    grid, best, pick = report["grid_scores"], report["grid_best"], report["tune_pick"]
    fastest = report["grid_fastest_any_size"]
    lines = []
    if failed := report["grid_unscored"]:
        lines.append(
            f"grid: {len(failed)} of its {report['points']} points have no score (a workload failed or timed out "
            "in one of its rounds): " + ", ".join(f"{p} ({why})" for p, why in failed.items())
        )
    head = (
        f"grid best within --max-size-ratio {request.constraints.max_size_ratio:g} and --max-slowdown "
        f"{request.constraints.max_slowdown:g}: {best} ({grid[best]:.4g}; fastest at "
        f"any size {fastest}, {grid[fastest]:.4g}); tune picked {pick}"
    )
    if report["distance"] is None:
        lines.append(
            f"{head}, which the grid could not score ({failed.get(pick, 'not measured')}): its distance from the "
            "grid's best is unknown (measure the grid again, with a longer --timeout if its points timed out)"
        )
    else:
        lines.append(
            f"{head} (grid score {grid[pick]:.4g}, {report['distance']:+.1%} from the best; target <= "
            f"{TARGET_DISTANCE:.0%})"
            + ("" if report["pick_within_grid_rules"] else "; the grid's own rounds rule the pick out")
        )
    if pick != best and (low_high := report["distance_interval"]):
        lines.append(
            f"in the grid's own rounds the distance is {report['distance']:+.1%} [{low_high[0]:+.1%}, "
            f"{low_high[1]:+.1%}]: p = {report['slower_than_best_p']:.3f} that the pick is slower than the grid's "
            f"best, p = {report['beyond_target_p']:.3f} that it is more than {TARGET_DISTANCE:.0%} slower"
        )
    pace = report["host_pace"]
    lines.append(
        f"cost: tune {report['tune_seconds']:.0f}s (search {report['search_seconds']:.0f}s + verification) vs grid "
        f"{report['grid_seconds']:.0f}s = {report['time_fraction']:.1%} (target <= {TARGET_FRACTION:.0%})"
        + (
            f"; {report['reference']} ran {pace:.2f}x the grid's time here, so at the grid's pace about "
            f"{report['time_fraction_at_grid_pace']:.1%}"
            if pace
            else ""
        )
    )
    lines.append(reach_text(report["reach"], report["search_fraction_at_grid_pace"]))
    rho = report["rank_correlation_rung0"]
    lines.append(
        f"rank correlation of rung 0 (n/27 rows) with the full data, top {len(report['rank_correlation_points'])}: "
        + ("n/a" if rho is None else f"Spearman {rho:.2f}")
    )
    return lines
