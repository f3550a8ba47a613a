"""Front-end glue for asv and pytest-benchmark: the same points and workloads as `harness run`.

`prepare(workload, point_id)` does, in the benchmarking process, what the runner's worker does:
event loop and codec pipeline before the first zarr call, the dataset, a written store for reads.
The returned object's `run()` is the timed call. Unsupported points raise UnsupportedPoint, a
NotImplementedError, which asv reports as skipped and the pytest front end turns into a skip.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .. import matrix
from ..errors import UnsupportedPoint
from ..runtime import Loop
from ..runtime.pipelines import install_loop

#: Dataset the front ends use: the real built-in one unless HARNESS_BENCH_DATASET says otherwise.
DATASET_ENV = "HARNESS_BENCH_DATASET"
#: Widen the default matrix: "pipeline=python,fused,zarrs;codec=zstd-0,zstd-3".
AXES_ENV = "HARNESS_BENCH_AXES"


def point_ids() -> list[str]:
    """Baselines plus the default sweep (or the axes in HARNESS_BENCH_AXES): plain strings for asv."""
    specs = [s for s in os.environ.get(AXES_ENV, "").split(";") if s.strip()]
    points = matrix.expand(matrix.parse_axes(specs))
    return [*matrix.DEFAULT_BASELINES, *(p.id for p in points)]


@cache
def _source(dataset: str) -> tuple[Path, Any]:
    from . import datasets

    path = datasets.resolve(dataset)
    return path, datasets.load(path)


@dataclass
class Prepared:
    """One workload of one point, ready to time."""

    work: Any
    files: int
    bytes: int
    raw_bytes: int
    config: Any = None

    def reset(self) -> None:
        self.work.reset()

    def cleanup(self) -> None:
        """Remove the benchmark's scratch store."""
        import shutil

        shutil.rmtree(self.work.ctx.workdir, ignore_errors=True)
        if self.config is not None:
            self.config.__exit__(None, None, None)
            self.config = None

    def run(self) -> None:
        self.work.run()

    @property
    def compression_ratio(self) -> float:
        return self.raw_bytes / self.bytes if self.bytes else float("nan")


def prepare(workload: str, point_id: str, dataset: str | None = None, *, cold: bool = False) -> Prepared:
    """Set up the process for `point_id` and return `workload` ready to run (reads get a written store)."""
    import warnings

    from . import storefiles, workloads
    from .context import Context, write_input, write_store, zarr_config
    from .datasets import raw_bytes

    warnings.filterwarnings("ignore", category=UserWarning)  # zarrs' fallback notes; traced, not printed
    warnings.filterwarnings("ignore", category=FutureWarning)
    point = matrix.point_by_id(point_id)
    if status := matrix.static_status(point):
        raise UnsupportedPoint(f"{status[0]}: {status[1]}")
    if reason := workloads.REGISTRY[workload].unsupported_reason(point):
        raise UnsupportedPoint(reason)
    if point.api != "h5ad":
        loop_type, _ = install_loop(point.config.loop)
        if point.config.loop is Loop.UVLOOP and not loop_type.startswith("uvloop"):
            raise UnsupportedPoint(f"zarr's I/O loop already runs on {loop_type} in this process")
    _, source = _source(dataset or os.environ.get(DATASET_ENV, "pbmc68k"))
    ctx = Context(point, source, Path(tempfile.mkdtemp(prefix="harness-bench-")), cold=cold)
    with zarr_config(point, "write"):
        write_store(ctx, write_input(ctx))
    fp = storefiles.footprint(ctx.measured_at)
    work = workloads.REGISTRY[workload](ctx)
    config = work.config()
    config.__enter__()  # the pipeline stays set until cleanup()
    work.reset()
    return Prepared(work, fp.files, fp.bytes, raw_bytes(source), config)
