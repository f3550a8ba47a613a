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


def _run_point(point: Point, tiny_h5ad: Path, tmp_path: Path, workloads_: list[str], **spec) -> dict[str, dict]:
    """One point measured in this process by the worker's own code: {workload: row}."""
    import json

    from harness.measure import worker

    out = tmp_path / f"rows-{len(list(tmp_path.glob('rows-*')))}.jsonl"
    run = worker.WorkerSpec([point.to_dict()], str(tiny_h5ad), workloads_, 1, 0, str(tmp_path / "w"), str(out), **spec)
    worker.run_point(run, point, datasets.load(tiny_h5ad), tmp_path / "w", "asyncio")
    return {(row := json.loads(line))["workload"]: row for line in out.read_text().splitlines()}


def test_later_rounds_read_the_store_back_but_compare_only_what_changes_with_the_round(
    tiny_h5ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`WorkerSpec.check` off (the later rounds of interleaved measurements): the written store and the full read,
    the same in every round, are not compared with the source again, but the store is still read back (it warms
    the process for the timed read) and the random rows, new every round, are still compared."""
    compared: list[str] = []
    reads: list[str] = []
    real_compare, real_read = verify.assert_anndata_equal, workloads.read_store
    monkeypatch.setattr(
        verify, "assert_anndata_equal", lambda a, b, what: (compared.append(what), real_compare(a, b, what))
    )
    monkeypatch.setattr(workloads, "read_store", lambda ctx: (reads.append(ctx.point.id), real_read(ctx))[1])
    point = Point.of(pipeline="python", sharding="rows-16x2")
    names = ["write", "read", "lazy-random"]
    rows = _run_point(point, tiny_h5ad, tmp_path, names, check=False)
    assert {w: (r["status"], r["checked"]) for w, r in rows.items()} == {
        "write": ("ok", False),
        "read": ("ok", False),
        "lazy-random": ("ok", True),
    }
    assert compared == ["lazy-random"] and len(reads) == 2  # the read back and the timed read
    compared.clear()
    rows = _run_point(point, tiny_h5ad, tmp_path, names, check=True)
    assert all(r["checked"] for r in rows.values()) and compared == ["written store", "read", "lazy-random"]


def test_cross_reads_skip_the_pipeline_the_read_workload_reads_with(
    tiny_h5ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point's own pipeline is not read again among the cross-pipeline reads when the read workload reads
    (and in its first round compares) the same store; without the read workload it is read like the others."""
    readers: list[str] = []
    real = context.read_store
    monkeypatch.setattr(
        context, "read_store", lambda ctx: (readers.append(str(ctx.point.config.pipeline)), real(ctx))[1]
    )
    point = Point.of(pipeline="python", sharding="rows-16x2")
    spec = {"readers": ["python", "fused", "read_zarr"]}
    rows = _run_point(point, tiny_h5ad, tmp_path, ["write", "read"], **spec)
    assert rows["interop"]["status"] == "ok" and rows["interop"]["readers"] == dict.fromkeys(spec["readers"], "ok")
    assert readers == ["fused"]
    readers.clear()
    rows = _run_point(point, tiny_h5ad, tmp_path, ["write"], **spec)
    assert rows["interop"]["status"] == "ok" and readers == ["python", "fused"]


def test_a_short_read_runs_three_to_five_times_a_repeat_and_its_median_run_is_the_value(
    tiny_h5ad: Path, tmp_path: Path
) -> None:
    """`WorkerSpec.least`: a read whose first run is under it runs again (`short_runs`: enough runs to add up to
    it, 3 to 5), the repeat's value is its median run and every run is kept; a write runs once; without it, every
    workload runs once a repeat and no runs are kept."""
    from harness.measure.timing import SHORT_RUNS, short_runs

    assert SHORT_RUNS == (3, 5)
    assert [short_runs(s, 1.0) for s in (0.2, 0.3, 0.8, 0.99, 1.0, 3.0)] == [5, 4, 3, 3, 1, 1]
    assert short_runs(0.2, 0.0) == 1 and short_runs(0.0, 1.0) == 1
    point = Point.of(pipeline="python", sharding="rows-16x2")
    names = ["write", "read", "lazy-open", "lazy-random"]
    rows = _run_point(point, tiny_h5ad, tmp_path, names, least=60.0)  # every tiny read is short
    assert {w: r["status"] for w, r in rows.items()} == dict.fromkeys(names, "ok")
    assert rows["write"]["runs"] == [rows["write"]["values"]]
    for name in names[1:]:
        (runs,), (value,) = rows[name]["runs"], rows[name]["values"]
        assert len(runs) == 5 and value == sorted(runs)[2], name
    rows = _run_point(point, tiny_h5ad, tmp_path, names)
    assert all(len(r["values"]) == 1 and "runs" not in r for r in rows.values())
