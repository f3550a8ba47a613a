"""One point, measured in a freshly started interpreter: `python -m harness.worker SPEC.json`.

The runner starts this module in a new process per point (never a fork of a process that touched
zarr: zarrs can deadlock after fork). It installs the event loop and codec pipeline before the first
zarr call, loads the dataset, and appends one JSON line per workload to the output file as soon as
that workload is finished, so a later crash or timeout loses nothing already measured.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HarnessError, UnsupportedPoint, VerificationError
from .matrix import Point


@dataclass
class WorkerSpec:
    """What the runner asks of a worker; serialised as JSON on the command line file."""

    point: dict[str, str]
    dataset: str
    workloads: list[str]
    repeats: int
    warmup: int
    workdir: str
    out: str
    cold: bool = True
    seed: int = 0


# --- memory and CPU accounting --------------------------------------------------------------


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (Linux: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(workload: Any, repeats: int, warmup: int) -> dict[str, Any]:
    """Warm-ups, then `repeats` timed runs; `reset` is untimed before each one."""
    walls: list[float] = []
    users: list[float] = []
    syss: list[float] = []
    warm: list[float] = []
    peak = 0.0
    colds: list[bool] = []
    for i in range(warmup + repeats):
        workload.reset()
        workload.result = None
        reset_peak_rss()
        t0, c0 = time.perf_counter(), os.times()
        workload.run()
        wall, c1 = time.perf_counter() - t0, os.times()
        if i < warmup:
            warm.append(wall)
            continue
        walls.append(wall)
        users.append(c1.user - c0.user)
        syss.append(c1.system - c0.system)
        peak = max(peak, peak_rss_mb())
        colds.append(workload.ctx.last_cold)
    return {
        "values": walls,
        "warmup_values": warm,
        "cpu_user": users,
        "cpu_sys": syss,
        "peak_rss_mb": round(peak, 1),
        "cache": "n/a" if workload.writes else ("cold" if colds and all(colds) else "warm"),
    }


# --- one point ------------------------------------------------------------------------------


def _emit(out: Path, row: dict[str, Any]) -> None:
    with open(out, "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def run(spec: WorkerSpec) -> int:
    from . import datasets, pipelines, stores, workloads

    point = Point.from_dict(spec.point)
    out = Path(spec.out)
    base = {"point_id": point.id}
    try:
        loop_type = "n/a"
        if point.api != "h5ad":
            loop_type = pipelines.install_event_loop(point.loop)
            if point.loop == "uvloop" and not loop_type.startswith("uvloop"):
                raise HarnessError(f"uvloop requested but zarr's I/O loop is {loop_type}")
            for name in {workloads.pipeline_for(point, w) for w in spec.workloads} | {workloads.pipeline_for(point, "write")}:
                if reason := pipelines.unsupported_reason(name):
                    raise UnsupportedPoint(reason)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        source = datasets.load(Path(spec.dataset))
    except UnsupportedPoint as exc:
        for name in spec.workloads:
            _emit(out, {**base, "workload": name, "status": "unsupported", "error": str(exc)})
        return 0
    except Exception as exc:
        for name in spec.workloads:
            _emit(out, {**base, "workload": name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 0

    ctx = workloads.Context(point, source, Path(spec.workdir), seed=spec.seed, cold=spec.cold)
    Path(spec.workdir).mkdir(parents=True, exist_ok=True)
    order = ["write"] + [w for w in spec.workloads if w != "write"]
    store_ok, store_status, error = True, "ok", ""
    for name in order:
        timed = name in spec.workloads
        if not timed and name == "write":  # reads need a store; write it once, untimed
            try:
                stores.remove(ctx.output)
                with workloads.zarr_config(point, "write"):
                    workloads.write_store(ctx, workloads.write_input(ctx))
            except Exception as exc:
                store_ok, store_status = False, "failed"
                error = f"could not write the store the reads need: {type(exc).__name__}: {exc}"
            continue
        row: dict[str, Any] = {**base, "workload": name, "event_loop": loop_type,
                               "pipeline_requested": workloads.pipeline_for(point, name)}
        if not store_ok:
            _emit(out, {**row, "status": store_status, "error": f"write: {error}"})
            continue
        work = workloads.REGISTRY[name](ctx)
        try:
            with work.config(), pipelines.trace_pipelines() as tracer:
                stats = measure(work, spec.repeats, spec.warmup)
            work.verify()
            row.update(stats, status="ok", pipeline_effective=tracer.effective(),
                       pipeline_per_array=tracer.summary())
            if point.api != "h5ad" and point.pipeline == "zarrs" and point.baseline == "" and "zarrs" not in tracer.effective() and tracer.used:
                row.update(status="unsupported", error="zarrs was requested but every array ran on the Python pipeline")
        except VerificationError as exc:
            row.update(status="failed", error=f"verification: {exc}")
        except UnsupportedPoint as exc:
            row.update(status="unsupported", error=str(exc))
        except Exception as exc:
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                       traceback=traceback.format_exc()[-2000:])
        if name == "write":
            store_ok, store_status, error = row["status"] == "ok", row["status"], row.get("error", "")
        if ctx.output.exists():
            fp = stores.footprint(ctx.output)
            row.update(files=fp.files, bytes=fp.bytes)
        _emit(out, row)
        work.result = None
    stores.remove(ctx.output)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    spec = WorkerSpec(**json.loads(Path(args[0]).read_text()))
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
