"""One shared round-trip test class, run for every store backend, pipeline, codec and sharding policy.

Each case writes the tiny dataset through the harness's real write path (write_dispatched with the
point's callback) and reads it back with anndata; unsupported combinations skip with their reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.runtime.pipelines as rpipelines
from harness import matrix
from harness.matrix import Point
from harness.measure import context, verify
from harness.runtime import Pipeline, Protocol, Store
from harness.runtime.codecs import all_codec_names


class RoundTripTests:
    """Subclasses provide `points`; every point must write and read back equal."""

    points: list[Point] = []

    def test_write_then_read_is_equal(self, point: Point, tiny_adata, tmp_path: Path) -> None:
        reason = (
            matrix.invalid_reason(point)
            or matrix.static_unsupported_reason(point)
            or (point.api != "h5ad" and rpipelines.unavailable_reason(point.config.pipeline, "asyncio"))
        )
        if reason:
            pytest.skip(reason)
        ctx = context.Context(point, tiny_adata, tmp_path)
        with context.zarr_config(point, "write"):
            context.write_store(ctx, context.write_input(ctx))
        with context.zarr_config(point, "read"):
            verify.assert_anndata_equal(context.read_store(ctx), tiny_adata)
        # and with zarr's plain Python pipeline, the reader every user has
        with context.zarr_config(Point.of(pipeline="python"), "read"):
            verify.assert_anndata_equal(context.read_store(ctx), tiny_adata)


def _parametrize(points: list[Point]):
    return pytest.mark.parametrize("point", points, ids=[p.id for p in points])


# Remote stores need their servers: their round trips live in test_remote.py.
@_parametrize([Point.of(store=s, pipeline=p) for s in Store if s.protocol is Protocol.FILE for p in Pipeline])
class TestStoresAndPipelines(RoundTripTests):
    pass


@_parametrize([Point.of(pipeline="zarrs", codec=c) for c in all_codec_names()])
class TestCodecs(RoundTripTests):
    pass


@_parametrize(
    [
        Point.of(pipeline=p, sharding=s)
        for p in ("python", "zarrs")
        for s in ("none", "auto", "guide-example", "rows-8x4", "sparse:rows-16x2+dense:none+columns:rows-40x1")
    ]
)
class TestShardingPolicies(RoundTripTests):
    pass


@_parametrize([matrix.baseline_point(b) for b in matrix.BASELINES] + [Point.of(consolidated="off")])
class TestBaselines(RoundTripTests):
    pass
