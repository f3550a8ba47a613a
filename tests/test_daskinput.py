"""Dask-backed input: written equal to the source whether or not its chunks are aligned to the shards,
and aligned to whole shards by IOConfig.write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.matrix import Point, baseline_point, invalid_reason, point_by_id
from harness.measure import context, verify, workloads
from harness.runtime import IOConfig, convert


def test_dask_input_is_written_whole_shards_per_task(tiny_adata, tmp_path: Path) -> None:
    lazy = context.as_dask(tiny_adata, rows=10)  # 10-row dask chunks against 16-row shards
    assert convert.is_dask(lazy.X)
    cfg = IOConfig(pipeline="fused", sharding="rows-8x2")
    sources = convert.streamed_sources(lazy)
    assert set(sources) == {"X", "layers/counts"}
    streamed = convert.write_streamed(cfg, convert.shell_of(lazy, sources), sources, tmp_path / "s.zarr")
    for fill in streamed.plan.fills:  # every task starts on a shard boundary and ends on one (or the end)
        length, shard = streamed.plan.arrays[(fill.element, fill.part)]
        assert fill.start % shard == 0 and (fill.stop % shard == 0 or fill.stop == length)
    assert convert.verify(cfg, tmp_path / "s.zarr", streamed) == []


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
