"""Points measured in a freshly started interpreter: `python -m harness.worker SPEC.json`.

The runner starts this module in a new process per point (never a fork of a process that touched
zarr: zarrs can deadlock after fork). It installs the event loop and codec pipeline before the first
zarr call, loads the dataset, and appends one JSON line per workload to the output file as soon as
that workload is finished, so a later crash or timeout loses nothing already measured. The runner
gives each point its own worker; tune's screening rungs batch many points into one worker to rank
them cheaply, and verify the winners in isolated workers.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HarnessError, UnsupportedPoint, VerificationError
from .matrix import Point


@dataclass
class WorkerSpec:
    """What the runner asks of a worker; serialised as JSON on the command line file."""

    points: list[dict[str, str]]
    dataset: str
    workloads: list[str]
    repeats: int
    warmup: int
    workdir: str
    out: str
    cold: bool = True
    seed: int = 0
    readers: list[str] = field(default_factory=list)


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
    """Warm-ups, then `repeats` timed runs; `reset` is untimed before each one.

    Against the loopback servers, each timed run's requests are counted from their access logs (untimed);
    a workload's own per-run figures (e.g. time to first batch) land in `metrics`.
    """
    from .servers import RequestCounter

    counter = RequestCounter.from_env()
    requests: list[dict[str, int]] = []
    metrics: dict[str, list[float]] = {}
    walls: list[float] = []
    users: list[float] = []
    syss: list[float] = []
    warm: list[float] = []
    peak = 0.0
    colds: list[bool] = []
    for i in range(warmup + repeats):
        workload.reset()
        workload.result = None
        workload.metrics = {}
        reset_peak_rss()
        if counter:
            counter.start()
        t0, c0 = time.perf_counter(), os.times()
        workload.run()
        wall, c1 = time.perf_counter() - t0, os.times()
        counted = counter.stop() if counter else None
        if i < warmup:
            warm.append(wall)
            continue
        walls.append(wall)
        users.append(c1.user - c0.user)
        syss.append(c1.system - c0.system)
        peak = max(peak, peak_rss_mb())
        colds.append(workload.ctx.last_cold)
        if counted is not None:
            requests.append(counted)
        for name, value in workload.metrics.items():
            metrics.setdefault(name, []).append(value)
    extra: dict[str, Any] = {"metrics": metrics} if metrics else {}
    if requests:
        extra["requests"] = {k: [r.get(k, 0) for r in requests] for k in sorted({k for r in requests for k in r})}
    return {**extra,
        "values": walls,
        "warmup_values": warm,
        "cpu_user": users,
        "cpu_sys": syss,
        "peak_rss_mb": round(peak, 1),
        "page_cache": "n/a" if workload.writes else ("cold" if colds and all(colds) else "warm"),
    }


# --- one point ------------------------------------------------------------------------------


def _emit(out: Path, row: dict[str, Any]) -> None:
    with open(out, "a") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _failure(exc: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
            "traceback": traceback.format_exc()[-2000:]}


def run(spec: WorkerSpec) -> int:
    """Measure every point of the spec in this process (they share one event loop)."""
    from . import datasets, pipelines

    points = [Point.from_dict(p) for p in spec.points]
    out = Path(spec.out)
    loops = {p.loop for p in points if p.api != "h5ad"}
    if len(loops) > 1:
        raise HarnessError(f"one worker runs one event loop, got {sorted(loops)}")
    if len({p.knobs for p in points}) > 1:  # zarrs reads its knobs once per process (FACTS)
        raise HarnessError(f"one worker runs one knob setting, got {sorted({p.knobs for p in points})}")
    try:
        loop_type = "n/a"
        if loops:
            (loop,) = loops
            loop_type = pipelines.install_event_loop(loop)
            if loop == "uvloop" and not loop_type.startswith("uvloop"):
                raise HarnessError(f"uvloop requested but zarr's I/O loop is {loop_type}")
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        source = datasets.load(Path(spec.dataset))
    except Exception as exc:
        for point in points:
            for name in spec.workloads:
                _emit(out, {"point_id": point.id, "workload": name, **_failure(exc)})
        return 0
    for index, point in enumerate(points):
        run_point(spec, point, source, Path(spec.workdir) / f"p{index}", loop_type)
    return 0


#: Fault injection for the reliability tests: `HARNESS_INJECT_FAULT=<kind>:<workload>` makes the worker
#: segfault, hang, raise or exit just before that workload, so the runner's handling is tested for real.
INJECT_FAULT_ENV = "HARNESS_INJECT_FAULT"


def inject_fault(workload: str) -> None:
    kind, _, where = os.environ.get(INJECT_FAULT_ENV, "").partition(":")
    if not kind or where != workload:
        return
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)  # a real SIGSEGV, as a crashing codec would raise
    elif kind == "hang":
        time.sleep(10**6)
    elif kind == "exit":
        os._exit(3)
    elif kind == "raise":
        raise RuntimeError(f"injected fault before {workload}")


def run_point(spec: WorkerSpec, point: Point, source: Any, workdir: Path, loop_type: str) -> None:
    """Write (timed or not), then each read workload, then the cross-pipeline reads if asked."""
    from . import pipelines, stores, workloads

    out = Path(spec.out)
    base = {"point_id": point.id, "event_loop": loop_type}
    needed = {workloads.pipeline_for(point, w) for w in [*spec.workloads, "write"]}
    reason = next((r for n in sorted(needed) if point.api != "h5ad" and (r := pipelines.unsupported_reason(n))), None)
    if reason:
        for name in spec.workloads:
            _emit(out, {**base, "workload": name, "status": "unsupported", "error": reason})
        return
    ctx = workloads.Context(point, source, workdir, seed=spec.seed, cold=spec.cold)
    workdir.mkdir(parents=True, exist_ok=True)
    store_status, error = "ok", ""
    if "write" not in spec.workloads:  # reads need a store; write it once, untimed
        error = _write_untimed(ctx)
        store_status = "failed" if error else "ok"
    read_only = stores.protocol_of(point.store) in stores.READ_ONLY_PROTOCOLS
    for name in ["write", *(w for w in spec.workloads if w != "write")] if "write" in spec.workloads else spec.workloads:
        row: dict[str, Any] = {**base, "workload": name, "pipeline_requested": workloads.pipeline_for(point, name)}
        if name == "write" and read_only:  # the store is written to the served directory, untimed
            error = _write_untimed(ctx)
            store_status = "ok" if not error else "failed"
            _emit(out, {**row, "status": "unsupported", "error": f"{point.store} is read-only (HTTP); reads use a store written to the served directory"})
            continue
        if store_status != "ok":
            _emit(out, {**row, "status": store_status, "error": f"write: {error}"})
            continue
        row.update(_measure_workload(spec, ctx, name))
        if name == "write":
            store_status, error = row["status"], row.get("error", "")
        fp = stores.footprint(ctx.measured_at)
        if fp.files:
            row.update(files=fp.files, bytes=fp.bytes)
        _emit(out, row)
    if spec.readers and store_status == "ok" and point.api == "dispatched":
        _emit(out, {**base, "workload": "interop", **cross_read(ctx, spec.readers)})
    stores.remove(ctx.measured_at)


def _write_untimed(ctx: Any) -> str:
    """Write the store reads need; returns an error message, or '' on success."""
    from . import workloads

    try:
        with workloads.zarr_config(ctx.point, "write"):
            workloads.write_store(ctx, workloads.write_input(ctx))
    except Exception as exc:
        return f"could not write the store the reads need: {type(exc).__name__}: {exc}".splitlines()[0]
    return ""


def fsspec_loop_type() -> str | None:
    """Type of fsspec's own I/O loop, if fsspec started one (sync fsspec calls run there)."""
    import sys

    asyn = sys.modules.get("fsspec.asyn")
    loop = asyn.loop[0] if asyn is not None and getattr(asyn, "loop", None) else None
    return f"{type(loop).__module__}.{type(loop).__name__}" if loop is not None else None


def _measure_workload(spec: WorkerSpec, ctx: Any, name: str) -> dict[str, Any]:
    from . import pipelines, workloads

    point = ctx.point
    if reason := workloads.REGISTRY[name].unsupported_reason(point):
        return {"status": "unsupported", "error": reason}
    work = workloads.REGISTRY[name](ctx)
    try:
        inject_fault(name)
        with work.config(), pipelines.trace_pipelines() as tracer:
            stats = measure(work, spec.repeats, spec.warmup)
        work.verify()
    except VerificationError as exc:
        return {"status": "failed", "error": f"verification: {exc}"}
    except UnsupportedPoint as exc:
        return {"status": "unsupported", "error": str(exc)}
    except Exception as exc:
        return _failure(exc)
    finally:
        work.result = None
    row = {**stats, "status": "ok", "pipeline_effective": tracer.effective(), "pipeline_per_array": tracer.summary(),
           "fsspec_loop": fsspec_loop_type()}
    if point.loop == "uvloop" and (row["fsspec_loop"] or "uvloop").split(".")[0] != "uvloop":
        row.update(status="failed", error=f"uvloop requested but fsspec's loop is {row['fsspec_loop']}")
    if point.api == "dispatched" and point.pipeline == "zarrs" and tracer.used and "zarrs" not in tracer.effective():
        row.update(status="unsupported", error="zarrs was requested but every array ran on the Python pipeline")
    return row


def cross_read(ctx: Any, readers: list[str]) -> dict[str, Any]:
    """Read the point's store back under each reader pipeline (the numcodecs#424 class of bug)."""
    from dataclasses import replace

    from . import pipelines, verify, workloads

    import anndata as ad

    from .stores import open_store

    outcome: dict[str, str] = {}
    for reader in readers:
        if reader != "read_zarr" and (reason := pipelines.unsupported_reason(reader)):
            outcome[reader] = f"unsupported: {reason}"
            continue
        try:
            if reader == "read_zarr":  # anndata's own reader with zarr's default config, as users call it
                with workloads.zarr_config(replace(ctx.point, pipeline="python"), "read"):
                    got = ad.io.read_zarr(open_store(ctx.point.store, ctx.output, read_only=True, client=ctx.point.client))
            else:
                reader_ctx = replace(ctx, point=replace(ctx.point, pipeline=reader))
                with workloads.zarr_config(reader_ctx.point, "read"):
                    got = workloads.read_store(reader_ctx)
            verify.assert_anndata_equal(got, ctx.source, f"read by {reader}")
            outcome[reader] = "ok"
        except Exception as exc:
            outcome[reader] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    failed = {r: v for r, v in outcome.items() if v != "ok" and not v.startswith("unsupported")}
    return {"status": "failed" if failed else "ok", "readers": outcome,
            "error": "; ".join(f"{r}: {v}" for r, v in failed.items()) if failed else ""}


def main(argv: list[str] | None = None) -> int:
    import faulthandler

    faulthandler.enable()  # a segfault in native code leaves a Python traceback in the stderr tail
    args = argv if argv is not None else sys.argv[1:]
    spec = WorkerSpec(**json.loads(Path(args[0]).read_text()))
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
