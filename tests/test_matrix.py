from __future__ import annotations

import pytest

from harness import matrix
from harness.errors import HarnessError
from harness.matrix import Point


def test_point_id_is_stable_and_readable() -> None:
    point = Point.of(
        store="obstore",
        loop="uvloop",
        pipeline="zarrs",
        codec="blosc-lz4-bitshuffle",
        sharding="rows-4096x16",
        consolidated="off",
    )
    assert point.id == "obstore/uvloop/zarrs/blosc-lz4-bitshuffle/rows-4096x16/cons-off"
    assert matrix.point_by_id(point.id) == point


@pytest.mark.parametrize("name", matrix.BASELINES)
def test_baselines_round_trip_by_id(name: str) -> None:
    point = matrix.baseline_point(name)
    assert point.id == name
    assert matrix.point_by_id(name) == point
    assert matrix.invalid_reason(point) is None


def test_baselines_use_the_documented_apis() -> None:
    assert matrix.baseline_point("anndata-default").api == "anndata"
    assert matrix.baseline_point("anndata-default+zarrs").api == "anndata"
    assert matrix.baseline_point("guide-example").api == "dispatched"
    assert matrix.baseline_point("guide-example").axis("sharding") == "guide-example"
    assert matrix.baseline_point("h5ad").api == "h5ad"


def test_expand_is_the_cartesian_product() -> None:
    axes = matrix.parse_axes(["pipeline=python,zarrs", "codec=none,zstd-3,blosc-zstd-shuffle"])
    points = matrix.expand(axes)
    assert len(points) == 2 * 3 * len(matrix.DEFAULT_SWEEP["sharding"])
    assert len({p.id for p in points}) == len(points)


def test_codec_all_expands_to_every_named_codec() -> None:
    axes = matrix.parse_axes(["codec=all"])
    assert "zstd-5-checksum" in axes["codec"] and "blosc-lz4-noshuffle" in axes["codec"]
    assert len(axes["codec"]) == 1 + 4 * 2 + 6


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("colour=red", "unknown axis 'colour'"),
        ("store=s4", "unknown store 's4'"),
        ("codec=zstd-99", "outside"),
        ("codec=brotli", "unknown codec 'brotli'"),
        ("sharding=rows-0x4", ">= 1"),
        ("sharding=huge", "unknown sharding policy 'huge'"),
        ("pipeline", "must look like name=value"),
    ],
)
def test_bad_axis_values_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        matrix.parse_axes([spec])


def test_zarrs_on_fsspec_is_unsupported_with_reason() -> None:
    reason = matrix.static_unsupported_reason(Point.of(store="fsspec", pipeline="zarrs"))
    assert reason is not None and "falls back" in reason
    assert matrix.static_unsupported_reason(Point.of(store="obstore", pipeline="zarrs")) is None
    assert matrix.static_unsupported_reason(Point.of(store="fsspec", pipeline="fused")) is None


def test_h5ad_on_a_zarr_store_backend_is_invalid() -> None:

    assert "local file" in matrix.invalid_reason(matrix.baseline_point("h5ad").with_axes(store="obstore"))
    assert "fixes" in matrix.invalid_reason(matrix.baseline_point("guide-example").with_axes(codec="none"))


def test_sharding_values_are_canonicalised() -> None:
    axes = matrix.parse_axes(["sharding=sparse:rows-10x2+dense:rows-10x2+columns:rows-10x2"])
    assert axes["sharding"] == ("rows-10x2",)
