"""The filters axis: sparse matrices written with delta or shuffle round-trip under every reader, are
smaller with delta, and need an explicit sparse policy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.matrix import Point, invalid_reason, parse_axes, point_by_id
from harness.measure import context, storefiles, verify
from harness.runtime.pipelines import unavailable_reason as unsupported_reason

READERS = [p for p in ("python", "fused", "zarrs") if not unsupported_reason(p)]


@pytest.mark.parametrize("name", ["none", "delta", "shuffle"])
def test_filtered_sparse_matrices_round_trip_under_every_reader(name: str, tiny_adata, tmp_path: Path) -> None:
    point = Point.of(pipeline="fused", sharding="rows-16x2", filters=name)
    ctx = context.Context(point, tiny_adata, tmp_path)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, tiny_adata)
    for reader in READERS:
        rp = point.with_axes(pipeline=reader)
        with context.zarr_config(rp, "read"):
            verify.assert_anndata_equal(
                context.read_store(replace(ctx, point=rp)), tiny_adata, f"{name} read by {reader}"
            )
    import anndata as ad

    assert type(ad.io.read_zarr(ctx.on_disk).X) is type(tiny_adata.X)  # anndata's own reader sees its format


def test_delta_makes_sparse_stores_smaller(tiny_adata, tmp_path: Path) -> None:
    sizes = {}
    for name in ("none", "delta"):
        point = Point.of(pipeline="fused", sharding="rows-64x4", filters=name)
        ctx = context.Context(point, tiny_adata, tmp_path / name)
        with context.zarr_config(point, "write"):
            context.write_store(ctx, tiny_adata)
        sizes[name] = storefiles.footprint(ctx.on_disk).bytes
    assert sizes["delta"] < sizes["none"]


def test_filters_axis_values_and_rules() -> None:
    point = Point.of(sharding="rows-16x2", filters="delta")
    assert point.id.endswith("/filters-delta") and point_by_id(point.id) == point
    assert "explicit sparse policy" in invalid_reason(Point.of(filters="delta"))
    with pytest.raises(HarnessError, match="unknown filter"):
        parse_axes(["filters=lzw"])
