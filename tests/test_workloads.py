"""Every workload runs in-process on tiny data and verifies; a corrupted store is caught, not timed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness import matrix
from harness.errors import UnsupportedPoint, VerificationError
from harness.matrix import Point
from harness.measure import context, datasets, streams, verify, workloads


@pytest.mark.parametrize("name", matrix.WORKLOADS)
@pytest.mark.parametrize(
    "point",
    [
        Point.of(pipeline="zarrs", sharding="rows-16x2"),
        matrix.baseline_point("h5ad"),
        matrix.baseline_point("anndata-default"),
    ],
    ids=lambda p: p.id,
)
def test_each_workload_runs_and_verifies(name: str, point: Point, tiny_adata, tmp_path: Path) -> None:
    ctx = context.Context(point, tiny_adata, tmp_path, cold=True)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    work = workloads.REGISTRY[name](ctx)
    if point.api == "h5ad" and name.startswith("stream-async"):
        with pytest.raises(UnsupportedPoint, match="no async API"), work.config():
            work.run()
        return
    if reason := workloads.REGISTRY[name].unsupported_reason(point):  # the worker records it, never runs it
        assert (point.api == "h5ad" and "h5ad" in reason) or "annbatch is not installed" in reason
        return
    with work.config():
        work.reset()
        work.run()
    work.verify()


@pytest.mark.parametrize("name", [cls.name for cls in streams.STREAMS])
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_stream_returns_every_row_exactly_once(
    name: str, loop: str, tiny_adata, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "STREAM_BATCH_ROWS", 16)
    monkeypatch.setattr(streams, "STREAM_IN_FLIGHT", 3)
    point = Point.of(store="obstore", loop=loop, pipeline="fused", sharding="rows-16x2")
    ctx = context.Context(point, tiny_adata, tmp_path)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    work = workloads.REGISTRY[name](ctx)
    with work.config():
        work.run()
    work.verify()
    starts = [start for start, _ in work.result]
    assert sorted(starts) == list(range(0, tiny_adata.n_obs, 16))
    if "async" not in name:  # async batches arrive in completion order
        assert (starts != sorted(starts)) == name.endswith("shuffled")
    assert work.metrics["first_batch_s"] > 0 and work.metrics["rows_per_s"] > 0
    work.result = [*work.result, work.result[0]]  # a batch delivered twice is caught
    with pytest.raises(VerificationError, match="read twice"):
        work.verify()
    work.result = [(s, (c[0], c[1], c[2] + 1.0, c[3])) for s, c in work.result[:-1]]  # a changed value too
    with pytest.raises(VerificationError, match="differs from the source"):
        work.verify()


def test_changed_values_fail_verification(tiny_adata, tmp_path: Path) -> None:
    point = Point.of(pipeline="python", codec="none", sharding="none")
    ctx = context.Context(point, tiny_adata, tmp_path)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    import zarr

    data = zarr.open_array(ctx.output / "X" / "data", mode="r+")
    data[:5] = np.asarray(data[:5]) + 1  # silent corruption between write and read
    work = workloads.Read(ctx)
    with work.config():
        work.run()
    with pytest.raises(VerificationError, match="values differ"):
        work.verify()


def test_baseline_writes_get_their_own_dataframes_not_a_second_copy_of_the_matrices(tmp_path: Path) -> None:
    """write_zarr / write_h5ad turn string columns into categoricals in place: the baseline gets its own
    obs/var (and raw.var) and shares X, layers and obsm with the source (no second copy at 1M cells)."""
    import anndata as ad

    try:
        source = datasets.load(datasets.resolve("pbmc68k"))  # real data with raw and string columns
    except datasets.DownloadError as exc:  # no package index reachable: the message says so
        pytest.skip(str(exc))
    assert source.raw is not None
    source.obs["label"] = np.array(["a", "b"] * (source.n_obs // 2) + ["a"] * (source.n_obs % 2), dtype=object)
    before = source.obs["label"].dtype
    given = context.dataframes_copied(source)
    assert given.X is source.X and all(given.obsm[k] is source.obsm[k] for k in source.obsm)
    ad.io.write_zarr(tmp_path / "s.zarr", given)
    assert (
        source.obs["label"].dtype == before != "category" and given.obs["label"].dtype == "category"
    )  # source untouched
    back = ad.io.read_zarr(tmp_path / "s.zarr")
    assert (
        back.raw is not None
        and back.raw.shape == source.raw.shape
        and list(back.obs["label"]) == list(source.obs["label"])
    )


def test_sparse_verification_compares_arrays_and_still_catches_one_changed_value() -> None:
    import scipy.sparse as sp

    a = sp.random(50, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    verify.assert_matrix_equal(a.copy(), a, "same")
    unsorted = a.copy()
    unsorted.indices[unsorted.indptr[0] : unsorted.indptr[1]] = unsorted.indices[
        unsorted.indptr[0] : unsorted.indptr[1]
    ][::-1]
    unsorted.data[unsorted.indptr[0] : unsorted.indptr[1]] = unsorted.data[unsorted.indptr[0] : unsorted.indptr[1]][
        ::-1
    ]
    verify.assert_matrix_equal(unsorted, a, "same values, other order")  # falls back to comparing by value
    changed = a.copy()
    changed.data[7] += 1
    with pytest.raises(VerificationError, match="1 values differ"):
        verify.assert_matrix_equal(changed, a, "one value")
    verify.assert_matrix_equal(a.tocsc(), a, "other format")
