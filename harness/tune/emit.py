"""Write the recommendation: recommended.json (outcome, config, every verdict, the verification table,
provenance), io_config.py (a generated module defining `recommended_config()`, importing only
harness.runtime), summary.md (what was decided and why, with the evidence) and front.png (the verified
points' objective against bytes, the pick marked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.stats import block_noise, summary
from ..matrix import Point
from ..measure import datasets, provenance
from ..measure.timing import SHORT_RUNS
from .finalists import SIZE_BUDGETS, Verification
from .race import RACE_ROUNDS, full_data_noise, racing
from .request import TuneRequest
from .rule import Verdict, by_point
from .search import ETA, SearchResult
from .space import SHORT_READ_S

RULE = (
    "A change is recommended only when, on the full data, every workload reads back equal, the store reads back "
    "under every required reader, it is at most --max-size-ratio x anndata-default's bytes, no verified workload "
    "is slower than anndata-default's by more than --max-slowdown, with significance (the geometric mean of the "
    "rounds' ratios beyond it and a one-sided paired p < 0.05 that it is slower by more than it, each round's two "
    f"values paired; a read under {SHORT_READ_S:g} s ran {SHORT_RUNS[0]} to {SHORT_RUNS[1]} times a round and its "
    "median run is the round's value) or on that mean after up to --deciding-rounds more rounds of that workload, "
    "and it beats anndata-default on the objective: Mann-Whitney p < 0.05 on the per-round objective and the 95% "
    "bootstrap interval of the ratio (anndata-default / candidate) above 1. Otherwise: keep anndata's default."
)


def _verdict(v: Verdict) -> dict[str, Any]:
    return {
        "point_id": v.point.id,
        "config": v.point.config.to_dict(),
        "objective": v.objective,
        "ratio": v.ratio,
        "p_value": v.p_value,
        "interval": v.interval,
        "bytes": v.bytes,
        "bytes_ratio": v.bytes_ratio,
        "problems": v.problems,
        "beats": v.beats,
        "qualifies": v.qualifies,
        "correct": v.correct,
        "default": bool(v.point.baseline),
    }


def _sd(noise: tuple[float, int] | None) -> float | None:
    return noise[0] ** 0.5 if noise else None


def size_budgets(verdicts: list[Verdict]) -> list[dict[str, Any]]:
    """The fastest correct verified point within 1.0x, 1.25x, 1.5x and 2x of anndata-default's bytes."""
    out = []
    for budget in SIZE_BUDGETS:
        within = [
            v
            for v in verdicts
            if v.correct
            and v.objective
            and v.bytes_ratio is not None
            and v.bytes_ratio <= budget
            and not v.point.baseline
        ]
        best = min(within, key=lambda v: v.objective, default=None)
        out.append(
            {
                "budget": budget,
                **(
                    {
                        "point_id": best.point.id,
                        "ratio": best.ratio,
                        "p_value": best.p_value,
                        "interval": best.interval,
                        "bytes_ratio": best.bytes_ratio,
                    }
                    if best
                    else {}
                ),
            }
        )
    return out


def pareto(verdicts: list[Verdict]) -> list[str]:
    """Ids of the correct verified points that no other beats on both objective and bytes."""
    points = sorted(
        (v for v in verdicts if v.correct and v.objective and v.bytes), key=lambda v: (v.objective, v.bytes)
    )
    front, smallest = [], float("inf")
    for v in points:
        if v.bytes < smallest:
            front.append(v.point.id)
            smallest = v.bytes
    return front


def emit(
    out: Path, request: TuneRequest, found: SearchResult, checked: Verification, dataset_path: Path, seconds: float
) -> None:
    verified = [v.point for v in checked.verdicts]
    record = {
        "outcome": "keep-default" if checked.keep_default else "change",
        "config": checked.pick.config.to_dict(),
        "point_id": checked.pick.id,
        "objective": request.objective,
        "rule": RULE,
        "reference": request.references()[0].id,
        "references": [r.id for r in request.references()],
        "store_url": request.store_url.url if request.store_url else None,
        "constraints": {
            "readable_by": list(request.constraints.readable_by),
            "max_size_ratio": request.constraints.max_size_ratio,
            "max_slowdown": request.constraints.max_slowdown,
            "pipelines": list(request.constraints.pipelines),
        },
        "dataset": {
            "name": request.dataset,
            "path": str(dataset_path),
            "fingerprint": datasets.fingerprint(dataset_path),
            "n_obs": found.shapes.n_obs,
        },
        "verdicts": [_verdict(v) for v in checked.verdicts],
        "size_budgets": size_budgets(checked.verdicts),
        "pareto": pareto(checked.verdicts),
        "verification": verification_table(checked.rows, verified, request.verify_workloads()),
        "verification_rounds": checked.rounds or request.repeats,
        # a read under short_read_s seconds ran short_runs times a round (at least, at most), its median run the
        # round's value (timing.short_runs)
        "short_read_s": SHORT_READ_S,
        "short_runs": list(SHORT_RUNS),
        "verification_ended": checked.ended,  # why the rounds stopped before --repeats, or ""
        # the deciding rounds after those (race.undecided): what each measured, and how they ended
        "deciding_rounds": checked.deciding,
        "deciding_ended": checked.decided,
        "finalists": request.finalists,
        "race_rounds": RACE_ROUNDS if racing(request) else None,
        # the race's tests are against this noise: one round's relative spread (sd of log per-round objective)
        "race_noise_sd": {
            "last_rung": _sd(block_noise(found.rungs[-1].rounds) if found.rungs else None),
            "full_data": _sd(full_data_noise(request, checked.rows)),
        },
        "verification_results": str(checked.results_dir),
        "readers": checked.readers,
        "search": {
            "method": "successive halving on row subsamples, ties kept per layout",
            "eta": ETA,
            "seconds": found.seconds,
            "note": found.note,
            "raced_every_survivor": found.race_all,  # the search stopped: another rung would not pay (search)
            "rungs": [
                {
                    "rows": r.rows,
                    "candidates": len(r.candidates),
                    "kept": r.kept,
                    "rejected": r.rejected,
                    "pruned": r.pruned,
                    "seconds": r.seconds,
                    "scores": r.scores,
                    "rounds": r.rounds,  # per-round objective: the promotion can be recomputed under another rule
                    "bytes": r.bytes,
                    "slowdowns": r.slowdowns,
                }
                for r in found.rungs
            ],
            "dropped_before_search": found.dropped,
        },
        "tune_seconds": seconds,
        "provenance": provenance.collect(out),
    }
    (out / "recommended.json").write_text(json.dumps(record, indent=2, default=str))
    (out / "io_config.py").write_text(module_text(record))
    front_png = _front_figure(record, out / "front.png")
    (out / "summary.md").write_text(summary_text(record, figure=front_png))


def _front_figure(record: dict[str, Any], path: Path) -> str | None:
    try:
        from ..analysis.plots import tune_front
    except ImportError:  # matplotlib is the `report` extra
        return None
    return tune_front(record["verdicts"], record["pareto"], record["point_id"], path)


def _ratios(record: dict[str, Any]) -> str:
    pick, ref = record["point_id"], record["reference"]
    parts = []
    for e in record["verification"]:
        a, b = (e.get(ref) or {}).get("median"), (e.get(pick) or {}).get("median")
        if a and b:
            net = f" ({e['network']})" if e.get("network", "none") != "none" else ""
            parts.append(f"{e['workload']}{net} {a / b:.2f}x")
    return ", ".join(parts)


def module_text(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = ",\n".join(f"    {k!r}: {v!r}" for k, v in cfg.items())
    if record.get("outcome") == "keep-default":
        what = (
            "Nothing beat anndata's default on this dataset (see summary.md): recommended_config() calls\n"
            "anndata's own write_zarr / read_zarr / read_lazy, with zarr's settings left as they are."
        )
    else:
        what = f"Measured against {record.get('reference', 'anndata-default')} in the same run (ratio of medians, >1 faster): {_ratios(record)}."
    return f'''"""Storage configuration for AnnData on zarr v3, tuned by `harness tune`.

Dataset {record["dataset"]["name"]} (fingerprint {record["dataset"]["fingerprint"]}), objective {record["objective"]!r}.
{what}
Generated {record["provenance"]["date"]}; regenerate with: harness tune --dataset {record["dataset"]["name"]} --objective {record["objective"]}

Usage:
    from io_config import recommended_config
    cfg = recommended_config()
    cfg.write(adata, "out.zarr"); lazy = cfg.read_lazy("out.zarr")
    subset = cfg.to_memory(lazy[rows])  # computed under the tuned concurrency and dask threads
"""

from harness.runtime import IOConfig, layered

TUNED = {{
{lines},
}}


def recommended_config(**overrides) -> IOConfig:
    """Built-in defaults <- TUNED <- HARNESS_* environment variables <- keyword arguments."""
    return layered(TUNED, **overrides)
'''


def summary_text(record: dict[str, Any], figure: str | None = None) -> str:
    from .summary import render

    return render(record, figure)


def verification_table(rows: list[dict[str, Any]], points: list[Point], workloads: list[str]) -> list[dict[str, Any]]:
    """Per network condition and workload: median, IQR, requests and bytes of every verified point (by id)."""
    table = []
    for net in dict.fromkeys(map(results.network_of, rows)):
        by = by_point(rows, net)
        for workload in workloads:
            entry: dict[str, Any] = {"workload": workload, "network": net}
            for point in points:
                row = by.get(point.id, {}).get(workload, {})
                ok = row.get("status") == "ok"
                st = summary(row.get("values") if ok else None)
                counted = row.get("requests") or {}
                entry[point.id] = {
                    "median": st.median,
                    "iqr": st.iqr,
                    "status": row.get("status"),
                    "error": row.get("error"),
                    "files": row.get("files"),
                    "bytes": row.get("bytes"),
                    "values": row.get("values") if ok else None,
                    "requests": summary(counted.get("requests")).median,
                    "transferred": summary(counted.get("bytes")).median,
                }
            table.append(entry)
    return table
