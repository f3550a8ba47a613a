"""Issue 17's levers, each a matrix value: codecs per array role, the minimal index dtype, chunks and shards
by bytes, and the thread and coalescing knobs; each round-trips under every reader."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.matrix import Point, parse_axes, point_by_id
from harness.measure import context, verify
from harness.runtime import IOConfig, parse_policy
from harness.runtime.codecs import parse_codec, parse_codecs
from harness.runtime.knobs import parse_knobs
from harness.runtime.pipelines import unavailable_reason
from harness.runtime.sharding import dataset_kwargs_for

READERS = [p for p in ("python", "fused", "zarrs") if not unavailable_reason(p)]
MIXED = "data:zstd-1+layers.data:blosc-zstd-shuffle-1+index:blosc-zstd-shuffle-1+dense:zstd--1"


def test_per_role_codecs_parse_canonically_and_keep_single_codec_ids() -> None:
    codecs = parse_codecs(MIXED)
    assert codecs.name == MIXED and parse_codecs(codecs.name) == codecs and codecs.uniform is None
    assert codecs.for_data("X").name == "zstd-1" and codecs.for_data("layers").name == "blosc-zstd-shuffle-1"
    assert codecs.columns.name == "zstd-0"  # unnamed roles keep zarr's default
    assert parse_codecs("data:zstd-1+index:zstd-1+dense:zstd-1+columns:zstd-1").name == "zstd-1"
    assert parse_axes(["codec=blosc-zstd-shuffle-5"])["codec"] == ("blosc-zstd-shuffle",)  # level 5 is the default
    assert parse_codec("blosc-lz4-bitshuffle-1").level == 1 and parse_codec("zstd--3").level == -3
    point = Point.of(pipeline="fused", codec=MIXED, sharding="rows-16x2", indices="minimal")
    assert point.id.endswith(f"/{MIXED}/rows-16x2/cons-on/idx-minimal") and point_by_id(point.id) == point
    with pytest.raises(HarnessError, match="unknown codec role 'obs'"):
        parse_codecs("obs:zstd-1")
    with pytest.raises(HarnessError, match="Blosc level 0"):
        parse_codec("blosc-lz4-shuffle-0")


def _codec_of(store: Path, array: str) -> list[dict]:
    meta = json.loads((store / array / "zarr.json").read_text())
    codecs = meta["codecs"]
    if codecs[0]["name"] == "sharding_indexed":
        codecs = codecs[0]["configuration"]["codecs"]
    return [c for c in codecs if c["name"] not in ("bytes", "transpose")]


@pytest.mark.parametrize("sharding", ["auto", "rows-16x2", "bytes-4k-16k"])
def test_per_role_codecs_and_minimal_indices_round_trip_under_every_reader(
    sharding: str, tiny_adata, tmp_path: Path
) -> None:
    import anndata as ad

    point = Point.of(pipeline="fused", codec=MIXED, sharding=sharding, indices="minimal")
    ctx = context.Context(point, tiny_adata, tmp_path)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, tiny_adata)
    store = ctx.on_disk
    assert (
        _codec_of(store, "X/data")[0]["name"] == "zstd" and _codec_of(store, "X/data")[0]["configuration"]["level"] == 1
    )
    assert _codec_of(store, "X/indices")[0]["name"] == "blosc"
    assert _codec_of(store, "layers/counts/data")[0]["name"] == "blosc"
    assert json.loads((store / "X/indices/zarr.json").read_text())["data_type"] == "uint16"  # 300 genes fit
    for reader in READERS:
        rp = point.with_axes(pipeline=reader)
        with context.zarr_config(rp, "read"):
            verify.assert_anndata_equal(context.read_store(replace(ctx, point=rp)), tiny_adata, f"read by {reader}")
    verify.assert_anndata_equal(ad.io.read_zarr(store), tiny_adata, "anndata's read_zarr")


def test_bytes_rules_convert_to_elements_by_item_size() -> None:
    import scipy.sparse as sp

    csr = sp.random(20_000, 1000, density=0.1, format="csr", dtype=np.float32, random_state=0)  # 2M non-zeros
    kwargs = dataset_kwargs_for(parse_policy("bytes-1m-4m"), "csr_matrix", csr, {})
    assert kwargs["chunks"] == (262_144,) and kwargs["shards"] == (4 * 262_144,)  # 1 MiB of float32, 4 chunks
    dense = np.zeros((10_000, 50), dtype=np.float32)  # 200 bytes a row
    kwargs = dataset_kwargs_for(parse_policy("bytes-64k-1m"), "array", dense, {})
    assert kwargs["chunks"] == (327, 50) and kwargs["shards"] == (327 * 16, 50)
    assert parse_policy("bytes-4m-64m").name == "bytes-4m-64m" and parse_policy("bytes-1024k-1g").name == "bytes-1m-1g"
    with pytest.raises(HarnessError, match="at least one chunk"):
        parse_policy("bytes-4m-1m")


def test_thread_and_coalescing_knobs_reach_zarr_and_numcodecs() -> None:
    import zarr
    from numcodecs import blosc

    knobs = parse_knobs("fused-workers=2+blosc-threads=2+coalesce-gap=0+coalesce-max=1048576")
    assert knobs.invalid_reason("fused") is None and "fused-workers" in knobs.invalid_reason("python")
    before = blosc.use_threads
    with IOConfig(pipeline="fused", knobs=knobs).settings():
        assert zarr.config.get("codec_pipeline.max_workers") == 2
        assert zarr.config.get("array.sharding_coalesce_max_gap_bytes") == 0
        assert zarr.config.get("array.sharding_coalesce_max_bytes") == 1 << 20
        assert blosc.use_threads is True
    assert blosc.use_threads is before
    with pytest.raises(HarnessError, match="at least 1"):
        parse_knobs("fused-workers=0")
