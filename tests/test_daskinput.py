"""Dask-backed input: written equal to the source whether or not its chunks are aligned to the shards,
and aligned to whole shards by IOConfig.write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.matrix import Point, baseline_point, invalid_reason, point_by_id
from harness.measure import context, verify, workloads
from harness.runtime import IOConfig, align, parse_policy


def test_align_rechunks_to_whole_shards(tiny_adata) -> None:
    lazy = context.as_dask(tiny_adata, rows=10)
    assert align.is_dask(lazy.X) and lazy.X.chunks[0][0] == 10
    aligned, changed = align.align(lazy, parse_policy("rows-8x2"))  # 16-row shards
    assert changed == {"X": (10, 16), "layers/counts": (10, 16)}
    assert all(c % 16 == 0 for c in aligned.X.chunks[0][:-1])
    unchanged, nothing = align.align(lazy, parse_policy("auto"))  # no shard rows to align to
    assert nothing == {} and unchanged.X.chunks == lazy.X.chunks


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("pipeline", ["fused", "zarrs"])
def test_dask_input_writes_equal_to_the_source(align: bool, pipeline: str, tiny_adata, tmp_path: Path) -> None:
    lazy = context.as_dask(tiny_adata, rows=10)  # 10-row chunks against 16-row shards: misaligned
    cfg = IOConfig(pipeline=pipeline, sharding="rows-8x2", align_dask=align)
    cfg.write(lazy, tmp_path / "s.zarr")
    verify.assert_anndata_equal(
        IOConfig(pipeline="fused").read(tmp_path / "s.zarr"), tiny_adata, f"dask input, align={align}"
    )


def test_lost_rows_in_a_dask_write_are_caught(tiny_adata, tmp_path: Path) -> None:
    """What a lost partial-shard write looks like to the harness: the write workload's verification fails."""
    import zarr

    point = Point.of(pipeline="fused", sharding="rows-8x2", input="dask")
    ctx = context.Context(point, tiny_adata, tmp_path)
    work = workloads.Write(ctx)
    with work.config():
        work.reset()
        work.run()
    data = zarr.open_array(ctx.on_disk / "X" / "data", mode="r+")
    data[:3] = np.zeros(3, dtype=data.dtype)  # the values one concurrent writer overwrote
    with pytest.raises(verify.VerificationError):
        work.verify()


def test_input_axis_values_and_rules() -> None:
    point = Point.of(sharding="rows-8x2", input="dask-aligned")
    assert point.id.endswith("/input-dask-aligned") and point_by_id(point.id) == point

    assert "write_dispatched" in invalid_reason(baseline_point("anndata-default").with_axes(input="dask"))
