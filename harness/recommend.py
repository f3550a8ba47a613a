"""Verify the search's finalists beside anndata's defaults and emit the recommendation.

Outputs in `--out`: recommended.json (config, objective, verification table, provenance),
io_config.py (a generated module defining `recommended_config()`, importing only harness.runtime)
and summary.md (what was chosen, why, the speedups with spread, what was rejected and why).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import datasets, matrix, provenance, results, tune
from .errors import HarnessError
from .matrix import Point
from .runner import Sweep, run_batch, run_sweep
from .compare import mann_whitney
from .workloads import runtime_config

REFERENCES = ("anndata-default", "anndata-default+zarrs")


@dataclass
class TuneRequest:
    dataset: str
    objective: str = "balanced"
    constraints: tune.Constraints = field(default_factory=tune.Constraints)
    budget_s: float = 600.0
    repeats: int = 5
    out: Path | None = None
    space: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(tune.DEFAULT_SPACE))
    timeout: float = 1800.0
    progress: bool = True
    store: str = "local"  # a store value; remote ones (s3-*, http-*) run against loopback servers or store_url
    store_url: str | None = None  # the user's s3:// or https:// location instead of the loopback server
    verify_networks: tuple[str, ...] = ("",)  # network conditions of the verification (remote: none and 20 ms)

    @property
    def remote(self) -> bool:
        return "-" in self.store

    @property
    def search_network(self) -> str:
        """The condition the search runs under: the last verification condition (e.g. 20 ms added) on
        the loopback servers, so levers against round trips (concurrency, cache, dask threads) can win
        the search; none for a user's URL (the real network) and for local stores."""
        return "" if self.store_url or not self.remote else self.verify_networks[-1]

    def references(self) -> list[Point]:
        """What the winner is verified beside: anndata's defaults, or the default remote setup on the
        user's store and client (concurrency 10, no cache, anndata's default layout)."""
        if self.remote:
            return [replace(matrix.baseline_point("anndata-default"), store=self.store)]
        return [matrix.baseline_point(r) for r in REFERENCES]

    def verify_workloads(self) -> list[str]:
        return list(tune.REMOTE_VERIFY_WORKLOADS if self.remote else tune.VERIFY_WORKLOADS)


def _table(rows: list[dict[str, Any]], point: Point, references: list[Point], workloads: list[str]) -> list[dict[str, Any]]:
    """Per network condition and workload: medians and IQR of the point and the references,
    speedup = reference / point."""
    by = {((r.get("network") or {}).get("condition", "none"), r["point_id"], r["workload"]): r for r in rows}
    table = []
    for net in dict.fromkeys(key[0] for key in by):
        for workload in workloads:
            entry: dict[str, Any] = {"workload": workload, "network": net}
            for name, pid in (("tuned", point.id), *((ref.id, ref.id) for ref in references)):
                row = by.get((net, pid, workload), {})
                st = results.stats(row.get("values") or []) if row.get("status") == "ok" else {"median": None, "iqr": None}
                counted = row.get("requests") or {}
                entry[name] = {"median": st["median"], "iqr": st["iqr"], "status": row.get("status"),
                               "files": row.get("files"), "bytes": row.get("bytes"),
                               "requests": results.stats(counted.get("requests") or [])["median"],
                               "transferred": results.stats(counted.get("bytes") or [])["median"],
                               "values": row.get("values") if row.get("status") == "ok" else None}
            for ref in references:
                a, b = entry[ref.id]["median"], entry["tuned"]["median"]
                entry[f"speedup_vs_{ref.id}"] = a / b if a and b else None
                entry[f"p_vs_{ref.id}"] = mann_whitney(entry[ref.id]["values"] or [], entry["tuned"]["values"] or [])
            table.append(entry)
    return table


def verify(request: TuneRequest, ranked: list[Point], dataset_path: Path, workdir: Path, out: Path,
           log=print) -> tuple[Point, list[dict[str, Any]], dict[str, str], dict[str, str]]:
    """Verify finalists in order until one passes every workload and every reader; never emit a failure.

    Remote requests are verified under each of `verify_networks` (e.g. 0 and 20 ms added), each a sweep
    of the finalist beside the references in one run."""
    rejected: dict[str, str] = {}
    readers = [r for r in tune.READERS if r == "read_zarr" or r in matrix.PIPELINES]
    references = request.references()
    for point in ranked[:3]:
        res_dir = out / "verification" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for network in request.verify_networks:
            log(f"verifying {point.id} beside {', '.join(r.id for r in references)} on the full dataset "
                f"({request.repeats} repeats{', network ' + network if network else ''})")
            sweep = Sweep(dataset=str(dataset_path), points=[point, *references], workloads=request.verify_workloads(),
                          repeats=request.repeats, warmup=1, timeout=request.timeout, results_dir=res_dir,
                          workdir=workdir / "verify", progress=request.progress, network=network, store_url=request.store_url)
            run_sweep(sweep)
        rows = list(results.iter_rows(results.results_path(res_dir)))
        bad = [f"{r['workload']}: {r['status']} {r.get('error', '')}" for r in rows if r["point_id"] == point.id and r["status"] != "ok"]
        interop = {"status": "ok", "readers": {}}
        if not request.remote:  # remote verification reads through every reader already (read, lazy, stream)
            interop = run_batch([point], dataset_path, ["write"], repeats=1, warmup=0, workdir=workdir / "interop",
                                timeout=request.timeout, readers=readers).get((point.id, "interop"), {})
        if interop.get("status") != "ok":
            bad.append(f"cross-pipeline read: {interop.get('error') or interop.get('status')}")
        if bad:
            rejected[point.id] = "; ".join(bad)[:500]
            log(f"rejected {point.id}: {rejected[point.id]}")
            continue
        return point, rows, interop.get("readers", {}), rejected
    raise HarnessError("no finalist passed verification: " + " | ".join(f"{k}: {v}" for k, v in rejected.items())[:600])


def run(request: TuneRequest, log=print) -> Path:
    """Search, verify, emit; returns the output directory."""
    started = time.perf_counter()
    tune.check_objective(request.objective)
    dataset_path = datasets.resolve(request.dataset)
    name = Path(request.dataset).stem if Path(request.dataset).exists() else request.dataset
    out = Path(request.out or Path("results") / "tune" / name)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-tune-") as tmp:
        workdir = Path(tmp)

        def on_rung(rung: tune.Rung) -> None:
            best = min((v for v in rung.scores.values() if v is not None), default=None)
            log(f"rung on {rung.rows} rows: {len(rung.candidates)} candidates, {len(rung.rejected)} rejected, "
                f"best score {best:.4g} ({rung.seconds:.0f}s)" if best is not None else f"rung on {rung.rows} rows: nothing measurable")

        with contextlib.ExitStack() as servers_running:  # remote: servers (or the user's URL) for the search
            env: dict[str, str] = {}
            if request.remote:
                from .runner import _start_servers
                from .servers import Network

                network = Network.parse(request.search_network)
                if network.label != "none":
                    log(f"search under the network condition {network.label} (the last --verify-network)")
                env, _ = _start_servers([Point(store=request.store)], workdir, servers_running, network, request.store_url)
            found = tune.search(dataset_path, request.objective, request.space, request.constraints, workdir=workdir,
                                budget_s=request.budget_s, timeout=request.timeout, verify_repeats=request.repeats,
                                on_rung=on_rung, env=env,
                                verify_shape=(len(request.verify_workloads()), 1 + len(request.references()),
                                              len(request.verify_networks)))
        if found.note:
            log(found.note)
        log(f"search: {len(found.rungs)} rungs in {found.seconds:.0f}s; verifying the best of {len(found.ranked)}")
        winner, rows, readers, rejected = verify(request, found.ranked, dataset_path, workdir, out, log)
    table = _table(rows, winner, request.references(), request.verify_workloads())
    emit(out, request, winner, table, readers, found, rejected, dataset_path, time.perf_counter() - started)
    return out


# --- outputs -----------------------------------------------------------------------------------


def emit(out: Path, request: TuneRequest, winner: Point, table: list[dict[str, Any]], readers: dict[str, str],
         found: tune.SearchResult, rejected: dict[str, str], dataset_path: Path, seconds: float) -> None:
    config = runtime_config(winner).to_dict()
    record = {
        "config": config, "point_id": winner.id, "objective": request.objective,
        "reference": request.references()[0].id, "references": [r.id for r in request.references()],
        "store_url": request.store_url,
        "constraints": {"readable_by": list(request.constraints.readable_by),
                        "max_size_ratio": request.constraints.max_size_ratio,
                        "pipelines": list(request.constraints.pipelines)},
        "dataset": {"name": request.dataset, "path": str(dataset_path), "fingerprint": datasets.fingerprint(dataset_path)},
        "verification": table, "readers": readers, "rejected_in_verification": rejected,
        "search": {"method": "successive halving on row subsamples", "eta": tune.ETA, "seconds": found.seconds,
                   "rungs": [{"rows": r.rows, "candidates": len(r.candidates), "rejected": r.rejected,
                              "seconds": r.seconds, "scores": r.scores} for r in found.rungs],
                   "dropped_before_search": found.dropped},
        "tune_seconds": seconds, "provenance": provenance.collect(out),
    }
    (out / "recommended.json").write_text(json.dumps(record, indent=2, default=str))
    (out / "io_config.py").write_text(module_text(record))
    (out / "summary.md").write_text(summary_text(record))


def _speedups(record: dict[str, Any]) -> str:
    ref = record.get("reference", "anndata-default")
    parts = [f"{e['workload']}{' (' + e['network'] + ')' if e.get('network', 'none') != 'none' else ''} "
             f"{e[f'speedup_vs_{ref}']:.2f}x" for e in record["verification"] if e.get(f"speedup_vs_{ref}")]
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
    counted = (f" [{entry['requests']:.0f} req, {entry['transferred'] / 1e6:.0f} MB]"
               if entry.get("requests") is not None and entry.get("transferred") is not None else "")
    return f"{entry['median']:.3f} ±{entry['iqr']:.3f}{counted}"


def summary_text(record: dict[str, Any]) -> str:
    cfg = record["config"]
    refs = record.get("references") or list(REFERENCES)
    extra = f", concurrency {cfg.get('concurrency', 10)}, cache {cfg.get('cache', 'none')}" if "-" in cfg["store"] else ""
    lines = [
        f"# Tuned storage for {record['dataset']['name']} (objective: {record['objective']})", "",
        f"**Chosen:** `{record['point_id']}` – store {cfg['store']}, pipeline {cfg['pipeline']}, codec {cfg['codec']}, "
        f"sharding {cfg['sharding']}, consolidated {cfg['consolidated']}{extra}.", "",
        f"Chosen because it had the lowest {record['objective']} score among the candidates that survived "
        f"successive halving ({len(record['search']['rungs'])} rungs, {record['search']['seconds']:.0f}s), "
        "passed every workload on the full dataset, and read back equal under every reader pipeline.", "",
    ]
    for net in dict.fromkeys(e.get("network", "none") for e in record["verification"]):
        lines += [f"## Verification (full dataset, one run, median seconds ±IQR{'; network ' + net if net != 'none' else ''})", "",
                  "| workload | tuned | " + " | ".join(refs) + " | " + " | ".join(f"speedup vs {r}" for r in refs) + " |",
                  "|---" * (2 + 2 * len(refs)) + "|"]
        for e in (e for e in record["verification"] if e.get("network", "none") == net):
            speedups = [(e.get(f"speedup_vs_{r}"), e.get(f"p_vs_{r}")) for r in refs]
            lines.append(f"| {e['workload']} | {_cell(e['tuned'])} | " + " | ".join(_cell(e[r]) for r in refs) + " | "
                         + " | ".join(f"{s:.2f}x" + (f" (p={p:.3f})" if p is not None else "") if s else "–"
                                      for s, p in speedups) + " |")
        lines.append("")
    write = next((e for e in record["verification"] if e["workload"] == "write"), None)
    if write and write["tuned"].get("bytes") and write[refs[0]].get("bytes"):
        lines += [f"Store: {write['tuned']['files']} files, {write['tuned']['bytes'] / 1e6:.1f} MB "
                  f"({refs[0]}: {write[refs[0]]['files']} files, {write[refs[0]]['bytes'] / 1e6:.1f} MB).", ""]
    if record["readers"]:
        lines += ["## Cross-pipeline reads", ""] + [f"- {r}: {v}" for r, v in record["readers"].items()]
    rejected = {**record["rejected_in_verification"]}
    for rung in record["search"]["rungs"]:
        rejected.update(rung["rejected"])
    if rejected:
        lines += ["", "## Rejected", ""] + [f"- `{k}`: {v}" for k, v in list(rejected.items())[:30]]
    lines += ["", f"Speedup = {refs[0]} median / tuned median (>1 is faster), p = Mann-Whitney on the raw repeats "
              "(with 5 repeats the smallest possible is 0.008). Remote cells: [median requests per run, MB transferred], "
              "counted at the server's proxy. Local reads are cold (page cache evicted)."]
    return "\n".join(lines) + "\n"
