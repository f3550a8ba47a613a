"""Points measured in a freshly started interpreter: `python -m harness.measure.worker SPEC.json`.

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
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.results import Row, Status
from ..errors import HarnessError, UnsupportedPoint, VerificationError, one_line
from ..matrix import Point
from ..runtime import Loop, Pipeline
from ..runtime.loader import LoaderSpec
from ..runtime.pipelines import install_loop, unavailable_reason
from .timing import measure


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
    warmup_rows: int = 0  # untimed warm-up of every workload on this many rows before the timed runs
    attribute: bool = False  # one more, untimed, instrumented run per workload (measure.attribution)
    loader: dict[str, Any] = field(default_factory=dict)  # LoaderSpec fields of the loader workloads
    procs: int = 1  # loader processes at once
    # compare the whole store with the source (`Workload.verify` of the `checked_once` workloads); off in the later
    # rounds of interleaved measurements, whose stores are identical to the first round's (rows: `checked: false`)
    check: bool = True
    # a read whose first run is shorter than this many seconds runs 3 to 5 times a repeat, its median run taken
    # (`timing.short_runs`); 0: one run a repeat
    least: float = 0.0


# --- one point ------------------------------------------------------------------------------


def _emit(out: Path, row: Row) -> None:
    with open(out, "a") as fh:
        fh.write(json.dumps(row.to_json(), default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _failure(point_id: str, workload: str, exc: BaseException, **data: Any) -> Row:
    return Row(point_id, workload, Status.FAILED, one_line(exc), {**data, "traceback": traceback.format_exc()[-2000:]})


def run(spec: WorkerSpec) -> int:
    """Measure every point of the spec in this process (they share one event loop)."""
    from . import datasets

    points = [Point.from_dict(p) for p in spec.points]
    out = Path(spec.out)
    loops = {p.config.loop for p in points if p.api != "h5ad"}
    if len(loops) > 1:
        raise HarnessError(f"one worker runs one event loop, got {sorted(loops)}")
    if len({p.config.knobs for p in points}) > 1:  # zarrs reads its knobs once per process (FACTS)
        raise HarnessError(f"one worker runs one knob setting, got {sorted(p.config.knobs.name for p in points)}")
    try:
        loop_type = "n/a"
        if loops:
            (loop,) = loops
            loop_type, _ = install_loop(loop)
            if loop is Loop.UVLOOP and not loop_type.startswith("uvloop"):
                raise HarnessError(f"uvloop requested but zarr's I/O loop is {loop_type}")
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        source = datasets.load(Path(spec.dataset))
    except Exception as exc:  # noqa: BLE001 - every requested row gets the cause
        for point in points:
            for name in spec.workloads:
                _emit(out, _failure(point.id, name, exc))
        return 0
    warmed: set[tuple[str, str]] = set()  # first-call costs are per process and pipeline: warm each once
    for index, point in enumerate(points):
        run_point(spec, point, source, Path(spec.workdir) / f"p{index}", loop_type, warmed)
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


def run_point(
    spec: WorkerSpec, point: Point, source: Any, workdir: Path, loop_type: str, warmed: set | None = None
) -> None:
    """Write (timed or not), then each read workload, then the cross-pipeline reads if asked."""
    from . import storefiles
    from .context import Context, pipeline_for
    from .interop import cross_read

    out = Path(spec.out)
    base = {"event_loop": loop_type}
    needed = {pipeline_for(point, w) for w in [*spec.workloads, "write"]}
    reason = next((r for n in sorted(needed) if point.api != "h5ad" and (r := unavailable_reason(n))), None)
    if reason:
        for name in spec.workloads:
            _emit(out, Row(point.id, name, Status.UNSUPPORTED, reason, base))
        return
    ctx = Context(
        point, source, workdir, seed=spec.seed, cold=spec.cold, loader=LoaderSpec(**spec.loader), procs=spec.procs
    )
    workdir.mkdir(parents=True, exist_ok=True)
    warmed = set() if warmed is None else warmed
    if spec.warmup_rows and (kind := (str(point.config.pipeline), point.api)) not in warmed:
        rows = source[: spec.warmup_rows].copy()
        _warm_up(spec, Context(point, rows, workdir / "warm-up", seed=spec.seed, cold=False))
        warmed.add(kind)
    # reads need a store: written once, untimed
    store_error = _write_untimed(ctx) if "write" not in spec.workloads else ""
    store_status = Status.FAILED
    for name in (
        ["write", *(w for w in spec.workloads if w != "write")] if "write" in spec.workloads else spec.workloads
    ):
        data = {**base, "pipeline_requested": str(pipeline_for(point, name))}
        if name == "write" and not point.config.store.supports_writes:  # written to the served directory, untimed
            store_error = _write_untimed(ctx)
            _emit(
                out,
                Row(
                    point.id,
                    name,
                    Status.UNSUPPORTED,
                    f"{point.config.store} is read-only (HTTP); reads use a store written to the served directory",
                    data,
                ),
            )
            continue
        if store_error:
            _emit(out, Row(point.id, name, store_status, f"write: {store_error}", data))
            continue
        row = _measure_workload(spec, ctx, name).with_data(**data)
        if name == "write" and not row.ok:
            store_error, store_status = row.error or str(row.status), row.status
        fp = storefiles.footprint(ctx.measured_at)
        if spec.attribute and row.ok:
            row = row.with_data(attribution=_attribution(ctx, name))
        _emit(out, row.with_data(files=fp.files, bytes=fp.bytes) if fp.files else row)
    if spec.readers and not store_error and point.api == "dispatched":
        own = str(pipeline_for(point, "read")) if "read" in spec.workloads else None  # the read workload checks it
        _emit(out, cross_read(ctx, spec.readers, own=own).with_data(**base))
    storefiles.remove(ctx.measured_at)


def _warm_up(spec: WorkerSpec, ctx: Any) -> None:
    """Untimed: every workload once on a slice of the data, so imports and first-call set-up (dask and
    xarray for read_lazy, codec and pipeline objects, thread pools) are not timed, at a fraction of the
    cost of a full warm-up run. A problem here is left to the timed runs to report."""
    from . import storefiles
    from .workloads import REGISTRY

    try:
        if "write" not in spec.workloads or not ctx.point.config.store.supports_writes:
            _write_untimed(ctx)
        for name in spec.workloads:
            if REGISTRY[name].unsupported_reason(ctx.point) or (
                name == "write" and not ctx.point.config.store.supports_writes
            ):
                continue
            work = REGISTRY[name](ctx)
            with work.config():
                work.reset()
                work.run()
    except Exception:  # noqa: BLE001 - the timed runs report it with its cause
        pass
    finally:
        storefiles.remove(ctx.measured_at)


def _attribution(ctx: Any, name: str) -> dict[str, float] | str:
    """Where the workload's time goes (untimed, after the timed runs), with the raw bytes it moves."""
    from .attribution import attribute
    from .datasets import raw_bytes
    from .workloads import REGISTRY

    work = REGISTRY[name](ctx)
    try:
        with work.config():
            work.reset()
            found = attribute(work.run)
    except Exception as exc:  # noqa: BLE001 - the timed row stands; the attribution says why it is missing
        return f"not attributed: {one_line(exc)}"
    finally:
        work.result = None
    return {**found, "raw_bytes": raw_bytes(ctx.source)}


def _write_untimed(ctx: Any) -> str:
    """Write the store reads need; returns an error message, or '' on success."""
    from .context import write_input, write_store, zarr_config

    try:
        with zarr_config(ctx.point, "write"):
            write_store(ctx, write_input(ctx))
    except Exception as exc:  # noqa: BLE001 - becomes the reason of every read row
        return f"could not write the store the reads need: {one_line(exc)}"
    return ""


def fsspec_loop_type() -> str | None:
    """Type of fsspec's own I/O loop, if fsspec started one (sync fsspec calls run there)."""
    asyn = sys.modules.get("fsspec.asyn")
    loop = asyn.loop[0] if asyn is not None and getattr(asyn, "loop", None) else None
    return f"{type(loop).__module__}.{type(loop).__name__}" if loop is not None else None


def _measure_workload(spec: WorkerSpec, ctx: Any, name: str) -> Row:
    from .trace import trace_pipelines
    from .workloads import REGISTRY

    point = ctx.point
    if reason := REGISTRY[name].unsupported_reason(point):
        return Row(point.id, name, Status.UNSUPPORTED, reason)
    work = REGISTRY[name](ctx)
    checked = spec.check or not work.checked_once
    try:
        inject_fault(name)
        with work.config(), trace_pipelines() as tracer:
            stats = measure(work, spec.repeats, spec.warmup, spec.least)
        if checked:
            work.verify()
        else:
            work.settle()
    except VerificationError as exc:
        return Row(point.id, name, Status.FAILED, f"verification: {exc}")
    except UnsupportedPoint as exc:
        return Row(point.id, name, Status.UNSUPPORTED, str(exc))
    except Exception as exc:  # noqa: BLE001 - a failure is a row with its cause
        return _failure(point.id, name, exc)
    finally:
        work.result = None
    data = {
        **stats,
        "checked": checked,
        "pipeline_effective": tracer.effective(),
        "pipeline_per_array": tracer.summary(),
        "fsspec_loop": fsspec_loop_type(),
    }
    if point.config.loop is Loop.UVLOOP and (data["fsspec_loop"] or "uvloop").split(".")[0] != "uvloop":
        return Row(point.id, name, Status.FAILED, f"uvloop requested but fsspec's loop is {data['fsspec_loop']}", data)
    if (
        point.api == "dispatched"
        and point.config.pipeline is Pipeline.ZARRS
        and tracer.used
        and "zarrs" not in tracer.effective()
    ):
        return Row(
            point.id, name, Status.UNSUPPORTED, "zarrs was requested but every array ran on the Python pipeline", data
        )
    return Row(point.id, name, Status.OK, "", data)


def main(argv: list[str] | None = None) -> int:
    import faulthandler

    faulthandler.enable()  # a segfault in native code leaves a Python traceback in the stderr tail
    args = argv if argv is not None else sys.argv[1:]
    spec = WorkerSpec(**json.loads(Path(args[0]).read_text()))
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
