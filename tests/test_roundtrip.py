"""One shared round-trip test class, run for every store backend, pipeline, codec and sharding policy.

Each case writes the tiny dataset through the harness's real write path (write_dispatched with the
point's callback) and reads it back with anndata; unsupported combinations skip with their reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import matrix, pipelines, stores, verify, workloads
from harness.codecs import all_codec_names
from harness.matrix import Point


class RoundTripTests:
    """Subclasses provide `points`; every point must write and read back equal."""

    points: list[Point] = []

    def test_write_then_read_is_equal(self, point: Point, tiny_adata, tmp_path: Path) -> None:
        reason = matrix.invalid_reason(point) or matrix.static_unsupported_reason(point) or (
            point.api != "h5ad" and pipelines.unsupported_reason(point.pipeline, "asyncio"))
        if reason:
            pytest.skip(reason)
        ctx = workloads.Context(point, tiny_adata, tmp_path)
        with workloads.zarr_config(point, "write"):
            workloads.write_store(ctx, workloads.write_input(ctx))
        with workloads.zarr_config(point, "read"):
            verify.assert_anndata_equal(workloads.read_store(ctx), tiny_adata)
        # and with zarr's plain Python pipeline, the reader every user has
        with workloads.zarr_config(Point(pipeline="python"), "read"):
            verify.assert_anndata_equal(workloads.read_store(ctx), tiny_adata)



def _parametrize(points: list[Point]):
    return pytest.mark.parametrize("point", points, ids=[p.id for p in points])


# Remote stores need their servers: their round trips live in test_remote.py.
@_parametrize([Point(store=s, pipeline=p) for s in matrix.STORES if stores.protocol_of(s) == "file" for p in matrix.PIPELINES])
class TestStoresAndPipelines(RoundTripTests):
    pass


@_parametrize([Point(pipeline="zarrs", codec=c) for c in all_codec_names()])
class TestCodecs(RoundTripTests):
    pass


@_parametrize([Point(pipeline=p, sharding=s) for p in ("python", "zarrs")
               for s in ("none", "auto", "guide-example", "rows-8x4", "sparse:rows-16x2+dense:none+columns:rows-40x1")])
class TestShardingPolicies(RoundTripTests):
    pass


@_parametrize([matrix.baseline_point(b) for b in matrix.BASELINES] + [Point(consolidated="off")])
class TestBaselines(RoundTripTests):
    pass
