"""Verify the search's finalists beside anndata's defaults on the full dataset, in one run, then read the
finalist's store back under every reader; a finalist that fails anything is never emitted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.stats import mann_whitney, summary
from ..errors import HarnessError
from ..matrix import Point
from ..measure.runner import Sweep, run_batch, run_sweep
from .request import TuneRequest
from .space import READERS


def verification_table(
    rows: list[dict[str, Any]], point: Point, references: list[Point], workloads: list[str]
) -> list[dict[str, Any]]:
    """Per network condition and workload: medians and IQR of the point and the references,
    speedup = reference / point."""
    by = {((r.get("network") or {}).get("condition", "none"), r["point_id"], r["workload"]): r for r in rows}
    table = []
    for net in dict.fromkeys(key[0] for key in by):
        for workload in workloads:
            entry: dict[str, Any] = {"workload": workload, "network": net}
            for name, pid in (("tuned", point.id), *((ref.id, ref.id) for ref in references)):
                row = by.get((net, pid, workload), {})
                st = summary(row.get("values") if row.get("status") == "ok" else None)
                counted = row.get("requests") or {}
                entry[name] = {
                    "median": st.median,
                    "iqr": st.iqr,
                    "status": row.get("status"),
                    "files": row.get("files"),
                    "bytes": row.get("bytes"),
                    "requests": summary(counted.get("requests")).median,
                    "transferred": summary(counted.get("bytes")).median,
                    "values": row.get("values") if row.get("status") == "ok" else None,
                }
            for ref in references:
                a, b = entry[ref.id]["median"], entry["tuned"]["median"]
                entry[f"speedup_vs_{ref.id}"] = a / b if a and b else None
                entry[f"p_vs_{ref.id}"] = mann_whitney(entry[ref.id]["values"] or [], entry["tuned"]["values"] or [])
            table.append(entry)
    return table


def verify(
    request: TuneRequest, ranked: list[Point], dataset_path: Path, workdir: Path, out: Path, log=print
) -> tuple[Point, list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """Verify finalists in order until one passes every workload and every reader; never emit a failure.

    Remote requests are verified under each of `verify_networks` (e.g. 0 and 20 ms added), each a sweep
    of the finalist beside the references in one run."""
    rejected: dict[str, str] = {}
    references = request.references()
    for point in ranked[:3]:
        res_dir = out / "verification" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for network in request.verify_networks:
            log(
                f"verifying {point.id} beside {', '.join(r.id for r in references)} on the full dataset "
                f"({request.repeats} repeats{', network ' + network.label if network.label != 'none' else ''})"
            )
            sweep = Sweep(
                dataset=str(dataset_path),
                points=[point, *references],
                workloads=request.verify_workloads(),
                repeats=request.repeats,
                warmup=1,
                timeout=request.timeout,
                results_dir=res_dir,
                workdir=workdir / "verify",
                progress=request.progress,
                network=network,
                store_url=request.store_url,
            )
            run_sweep(sweep)
        rows = list(results.iter_rows(res_dir))
        bad = [
            f"{r['workload']}: {r['status']} {r.get('error', '')}"
            for r in rows
            if r["point_id"] == point.id and r["status"] != "ok"
        ]
        readers: dict[str, str] = {}
        if not request.remote:  # remote verification reads through every reader already (read, lazy, stream)
            interop = run_batch(
                [point],
                dataset_path,
                ["write"],
                repeats=1,
                warmup=0,
                workdir=workdir / "interop",
                timeout=request.timeout,
                readers=list(READERS),
            )[(point.id, "interop")]
            readers = interop.data.get("readers", {})
            if not interop.ok:
                bad.append(f"cross-pipeline read: {interop.error or interop.status}")
        if bad:
            rejected[point.id] = "; ".join(bad)[:500]
            log(f"rejected {point.id}: {rejected[point.id]}")
            continue
        return point, rows, readers, rejected
    raise HarnessError("no finalist passed verification: " + " | ".join(f"{k}: {v}" for k, v in rejected.items())[:600])
