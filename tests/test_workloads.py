"""Every workload runs in-process on tiny data and verifies; a corrupted store is caught, not timed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import matrix, workloads
from harness.errors import VerificationError
from harness.matrix import Point


@pytest.mark.parametrize("name", workloads.WORKLOADS)
@pytest.mark.parametrize("point", [Point(pipeline="zarrs", sharding="rows-16x2"), matrix.baseline_point("h5ad"),
                                   matrix.baseline_point("anndata-default")], ids=lambda p: p.id)
def test_each_workload_runs_and_verifies(name: str, point: Point, tiny_adata, tmp_path: Path) -> None:
    ctx = workloads.Context(point, tiny_adata, tmp_path, cold=True)
    with workloads.zarr_config(point, "write"):
        workloads.write_store(ctx, workloads.write_input(ctx))
    work = workloads.REGISTRY[name](ctx)
    with work.config():
        work.reset()
        work.run()
    work.verify()


def test_changed_values_fail_verification(tiny_adata, tmp_path: Path) -> None:
    point = Point(pipeline="python", codec="none", sharding="none")
    ctx = workloads.Context(point, tiny_adata, tmp_path)
    with workloads.zarr_config(point, "write"):
        workloads.write_store(ctx, workloads.write_input(ctx))
    import zarr

    data = zarr.open_array(ctx.output / "X" / "data", mode="r+")
    data[:5] = np.asarray(data[:5]) + 1  # silent corruption between write and read
    work = workloads.Read(ctx)
    with work.config():
        work.run()
    with pytest.raises(VerificationError, match="values differ"):
        work.verify()
