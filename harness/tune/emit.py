"""Write the recommendation: recommended.json (config, objective, verification table, provenance),
io_config.py (a generated module defining `recommended_config()`, importing only harness.runtime) and
summary.md (what was chosen, why, the speedups with spread, what was rejected and why)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..matrix import Point
from ..measure import datasets, provenance
from ..runtime import Store
from .request import REFERENCES, TuneRequest
from .search import ETA, SearchResult


def emit(
    out: Path,
    request: TuneRequest,
    winner: Point,
    table: list[dict[str, Any]],
    readers: dict[str, str],
    found: SearchResult,
    rejected: dict[str, str],
    dataset_path: Path,
    seconds: float,
) -> None:
    config = winner.config.to_dict()
    record = {
        "config": config,
        "point_id": winner.id,
        "objective": request.objective,
        "reference": request.references()[0].id,
        "references": [r.id for r in request.references()],
        "store_url": request.store_url.url if request.store_url else None,
        "constraints": {
            "readable_by": list(request.constraints.readable_by),
            "max_size_ratio": request.constraints.max_size_ratio,
            "pipelines": list(request.constraints.pipelines),
        },
        "dataset": {
            "name": request.dataset,
            "path": str(dataset_path),
            "fingerprint": datasets.fingerprint(dataset_path),
        },
        "verification": table,
        "readers": readers,
        "rejected_in_verification": rejected,
        "search": {
            "method": "successive halving on row subsamples",
            "eta": ETA,
            "seconds": found.seconds,
            "rungs": [
                {
                    "rows": r.rows,
                    "candidates": len(r.candidates),
                    "rejected": r.rejected,
                    "seconds": r.seconds,
                    "scores": r.scores,
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
    (out / "summary.md").write_text(summary_text(record))


def _speedups(record: dict[str, Any]) -> str:
    ref = record.get("reference", "anndata-default")
    parts = [
        f"{e['workload']}{' (' + e['network'] + ')' if e.get('network', 'none') != 'none' else ''} "
        f"{e[f'speedup_vs_{ref}']:.2f}x"
        for e in record["verification"]
        if e.get(f"speedup_vs_{ref}")
    ]
    return ", ".join(parts)


def module_text(record: dict[str, Any]) -> str:
    cfg = record["config"]
    lines = ",\n".join(f"    {k!r}: {v!r}" for k, v in cfg.items())
    return f'''"""Storage configuration for AnnData on zarr v3, tuned by `harness tune`.

Dataset {record["dataset"]["name"]} (fingerprint {record["dataset"]["fingerprint"]}), objective {record["objective"]!r}.
Measured against anndata-default in the same run (median speedups): {_speedups(record)}.
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


def _cell(entry: dict[str, Any]) -> str:
    if entry.get("median") is None:
        return str(entry.get("status"))
    counted = (
        f" [{entry['requests']:.0f} req, {entry['transferred'] / 1e6:.0f} MB]"
        if entry.get("requests") is not None and entry.get("transferred") is not None
        else ""
    )
    return f"{entry['median']:.3f} ±{entry['iqr']:.3f}{counted}"


def summary_text(record: dict[str, Any]) -> str:
    cfg = record["config"]
    refs = record.get("references") or list(REFERENCES)
    extra = (
        f", concurrency {cfg.get('concurrency', 10)}, cache {cfg.get('cache', 'none')}"
        if Store.parse(cfg["store"]).remote
        else ""
    )
    lines = [
        f"# Tuned storage for {record['dataset']['name']} (objective: {record['objective']})",
        "",
        f"**Chosen:** `{record['point_id']}` – store {cfg['store']}, pipeline {cfg['pipeline']}, codec {cfg['codec']}, "
        f"sharding {cfg['sharding']}, consolidated {cfg['consolidated']}{extra}.",
        "",
        f"Chosen because it had the lowest {record['objective']} score among the candidates that survived "
        f"successive halving ({len(record['search']['rungs'])} rungs, {record['search']['seconds']:.0f}s), "
        "passed every workload on the full dataset, and read back equal under every reader pipeline.",
        "",
    ]
    for net in dict.fromkeys(e.get("network", "none") for e in record["verification"]):
        lines += [
            f"## Verification (full dataset, one run, median seconds ±IQR{'; network ' + net if net != 'none' else ''})",
            "",
            "| workload | tuned | " + " | ".join(refs) + " | " + " | ".join(f"speedup vs {r}" for r in refs) + " |",
            "|---" * (2 + 2 * len(refs)) + "|",
        ]
        for e in (e for e in record["verification"] if e.get("network", "none") == net):
            speedups = [(e.get(f"speedup_vs_{r}"), e.get(f"p_vs_{r}")) for r in refs]
            lines.append(
                f"| {e['workload']} | {_cell(e['tuned'])} | "
                + " | ".join(_cell(e[r]) for r in refs)
                + " | "
                + " | ".join(
                    f"{s:.2f}x" + (f" (p={p:.3f})" if p is not None else "") if s else "–" for s, p in speedups
                )
                + " |"
            )
        lines.append("")
    write = next((e for e in record["verification"] if e["workload"] == "write"), None)
    if write and write["tuned"].get("bytes") and write[refs[0]].get("bytes"):
        lines += [
            f"Store: {write['tuned']['files']} files, {write['tuned']['bytes'] / 1e6:.1f} MB "
            f"({refs[0]}: {write[refs[0]]['files']} files, {write[refs[0]]['bytes'] / 1e6:.1f} MB).",
            "",
        ]
    if record["readers"]:
        lines += ["## Cross-pipeline reads", ""] + [f"- {r}: {v}" for r, v in record["readers"].items()]
    rejected = {**record["rejected_in_verification"]}
    for rung in record["search"]["rungs"]:
        rejected.update(rung["rejected"])
    if rejected:
        lines += ["", "## Rejected", ""] + [f"- `{k}`: {v}" for k, v in list(rejected.items())[:30]]
    lines += [
        "",
        f"Speedup = {refs[0]} median / tuned median (>1 is faster), p = Mann-Whitney on the raw repeats "
        "(with 5 repeats the smallest possible is 0.008). Remote cells: [median requests per run, MB transferred], "
        "counted at the server's proxy. Local reads are cold (page cache evicted).",
    ]
    return "\n".join(lines) + "\n"
