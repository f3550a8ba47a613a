"""The filters axis: sparse matrices written with delta or shuffle round-trip under every reader, are
smaller with delta, and need an explicit sparse policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness import stores, verify, workloads
from harness.errors import HarnessError
from harness.matrix import Point, invalid_reason, parse_axes, point_by_id
from harness.pipelines import unsupported_reason

READERS = [p for p in ("python", "fused", "zarrs") if not unsupported_reason(p)]


@pytest.mark.parametrize("name", ["none", "delta", "shuffle"])
def test_filtered_sparse_matrices_round_trip_under_every_reader(name: str, tiny_adata, tmp_path: Path) -> None:
    point = Point(pipeline="fused", sharding="rows-16x2", filters=name)
    ctx = workloads.Context(point, tiny_adata, tmp_path)
    with workloads.zarr_config(point, "write"):
        workloads.write_store(ctx, tiny_adata)
    for reader in READERS:
        rp = replace(point, pipeline=reader)
        with workloads.zarr_config(rp, "read"):
            verify.assert_anndata_equal(workloads.read_store(replace(ctx, point=rp)), tiny_adata, f"{name} read by {reader}")
    import anndata as ad

    assert type(ad.io.read_zarr(ctx.on_disk).X) is type(tiny_adata.X)  # anndata's own reader sees its format


def test_delta_makes_sparse_stores_smaller(tiny_adata, tmp_path: Path) -> None:
    sizes = {}
    for name in ("none", "delta"):
        point = Point(pipeline="fused", sharding="rows-64x4", filters=name)
        ctx = workloads.Context(point, tiny_adata, tmp_path / name)
        with workloads.zarr_config(point, "write"):
            workloads.write_store(ctx, tiny_adata)
        sizes[name] = stores.footprint(ctx.on_disk).bytes
    assert sizes["delta"] < sizes["none"]


def test_filters_axis_values_and_rules() -> None:
    point = Point(sharding="rows-16x2", filters="delta")
    assert point.id.endswith("/filters-delta") and point_by_id(point.id) == point
    assert "explicit sparse policy" in invalid_reason(Point(filters="delta"))
    with pytest.raises(HarnessError, match="unknown filter"):
        parse_axes(["filters=lzw"])
