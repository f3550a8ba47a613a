"""harness claims: the zarr-v3 guide's advice checked on this machine, this data and this stack.

For every claim (`catalog.CLAIMS`) the smallest sweep that decides it runs, locally or on a remote store
under a network condition, reusing rows already measured in the results directory with the same code and
stack; then each claim's rule gives a verdict (holds / does not hold / holds in part / cannot be checked
here, and why) with its evidence: ratios with Mann-Whitney p, files, bytes, readers. Every verdict carries
the stack it was measured on, and `--stack` asks the same questions of other package versions.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.compare import Comparison, compared
from ..analysis.results import Row
from ..matrix import Point
from ..measure import datasets, provenance, stacks
from ..measure.network import Network
from ..measure.runner import Sweep, run_sweep
from ..measure.stacks import Stack
from ..runtime import Store
from .catalog import CLAIMS, Claim, Evidence, Verdict, on_stack

STACK_PACKAGES = ("anndata", "zarr", "zarrs", "numcodecs", "obstore", "fsspec", "uvloop")


@dataclass
class ClaimsRequest:
    dataset: str
    results: Path = Path("results")
    network: Network = field(default_factory=lambda: Network.parse("latency=20ms"))
    repeats: int = 5
    timeout: float = 1800.0
    progress: bool = True
    keys: tuple[str, ...] = tuple(c.key for c in CLAIMS)
    local_only: bool = False
    stack: Stack | None = None


def has_fused(stack: Stack | None) -> bool:
    """Whether the stack's zarr has the Fused pipeline (3.3 and later)."""
    from importlib.metadata import version

    from packaging.version import Version

    found = stacks.packages(stacks.ensure(stack))["packages"].get("zarr") if stack else version("zarr")
    return bool(found) and Version(found).release[:2] >= (3, 3)


def _sweeps(request: ClaimsRequest, claims: list[Claim], dataset_path: Path, fused: bool) -> None:
    for claim in claims:
        for need in claim.needs:
            if need.remote and request.local_only:
                continue
            run_sweep(
                Sweep(
                    dataset=str(dataset_path),
                    points=list({q.id: q for q in (on_stack(p, fused) for p in need.points)}.values()),
                    workloads=list(need.workloads),
                    repeats=min(request.repeats, need.most_repeats or request.repeats),
                    warmup=0 if need.most_repeats else 1,
                    timeout=request.timeout,
                    results_dir=request.results,
                    progress=request.progress,
                    network=request.network if need.remote else Network(),
                    readers=list(need.readers),
                    stack=request.stack,
                )
            )


def _stale_check(tmp: Path, source: Any) -> dict[str, Any]:
    """Claim b's last part: a consolidated store whose obs loses a column, checked by `check-store`."""
    import zarr

    from ..runtime import IOConfig
    from ..runtime.consolidated import check

    store = tmp / "stale.zarr"
    IOConfig().write(source[:200].copy(), store)
    column = next(iter(source.obs.columns))
    del zarr.open_group(store, mode="r+", use_consolidated=False)["obs"][column]
    found = check(store)
    return {"detected": found.stale, "error": found.message()}


def _index(rows: list[dict[str, Any]], fingerprint: str, stack_key: str) -> dict[tuple[str, str, bool], dict[str, Any]]:
    """The latest row per (point, workload, remote?) of this dataset and stack."""
    out = {}
    for row in rows:
        if (row.get("dataset") or {}).get("fingerprint") == fingerprint and row.get("stack_key") == stack_key:
            out[
                (row["point_id"], row["workload"], Store.parse((row.get("point") or {}).get("store", "local")).remote)
            ] = row
    return out


def run(request: ClaimsRequest, log=print) -> list[tuple[Claim, Verdict]]:
    """Measure what is missing, judge every claim asked for, append the verdicts as rows; returns them."""
    from ..runtime.gpu import cuda_probe

    claims = [c for c in CLAIMS if c.key in request.keys]
    dataset_path = datasets.resolve(request.dataset)
    log(
        f"claims {', '.join(c.key for c in claims)} on {request.dataset}"
        + ("" if request.local_only else f"; remote claims on the loopback S3/HTTP servers at {request.network.label}")
    )
    fused = has_fused(request.stack)
    _sweeps(request, claims, dataset_path, fused)
    rows = list(results.iter_rows(request.results))
    measured = [r for r in rows if r.get("kind") not in results.NOT_TIMINGS]
    latest = max(measured, key=lambda r: r.get("run_id", ""), default={})
    index = _index(measured, datasets.fingerprint(dataset_path), latest.get("stack_key", ""))
    with tempfile.TemporaryDirectory(prefix="harness-claims-") as tmp:
        stale = _stale_check(Path(tmp), datasets.load(dataset_path)) if "b" in request.keys else {}

    def row(point: Point, workload: str, remote: bool) -> dict[str, Any] | None:
        if workload == "stale-check":
            return stale
        return index.get((point.id, workload, remote))

    def compare(a: Point, b: Point, workload: str, remote: bool) -> Comparison | None:
        ra, rb = row(a, workload, remote), row(b, workload, remote)
        if not ra or not rb or ra.get("status") != "ok" or rb.get("status") != "ok":
            return None
        return compared(b.id, workload, ra["values"], rb["values"])

    gpu_rows = [r for r in rows if str(r.get("workload", "")).startswith("gpu-read")]
    evidence = Evidence(compare, row, gpu_rows, cuda_probe(), fused)
    found = [(claim, claim.judge(evidence)) for claim in claims]
    prov = latest.get("provenance") or provenance.collect(request.results)
    stack = ", ".join(f"{p} {v}" for p, v in (prov.get("packages") or {}).items() if p in STACK_PACKAGES and v)
    stack += f", python {prov.get('python')}"
    run_id = time.strftime("%Y%m%dT%H%M%S")
    results.append(
        request.results,
        [
            Row(
                "claims",
                f"claim {claim.key}",
                "ok",
                data={
                    "kind": "claim",
                    "key": f"claim-{run_id}-{claim.key}",
                    "run_id": run_id,
                    "quote": claim.quote,
                    "verdict": verdict.verdict,
                    "evidence": verdict.evidence,
                    "stack": stack,
                    "provenance": prov,
                    "dataset": {"name": request.dataset, "fingerprint": datasets.fingerprint(dataset_path)},
                    "network": {"condition": request.network.label},
                },
            )
            for claim, verdict in found
        ],
    )
    (Path(request.results) / "claims.json").write_text(
        json.dumps(
            [
                {"claim": c.key, "quote": c.quote, "verdict": v.verdict, "evidence": v.evidence, "stack": stack}
                for c, v in found
            ],
            indent=2,
        )
    )
    return found
