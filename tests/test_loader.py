"""The training loader (IOConfig.stream) and its workloads: block-shuffled minibatches, true random rows, several
processes sharing an epoch; every row exactly once, equal to the source; annbatch's loader side by side."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError, UnsupportedPoint
from harness.matrix import Point, baseline_point
from harness.measure import context, loaders, workloads
from harness.runtime import IOConfig
from harness.runtime.loader import LoaderSpec, _merged

SMALL = LoaderSpec(batch_size=32, run_rows=8, preload=4)  # annbatch wants batch <= runs x preload


@pytest.fixture()
def store(tiny_adata, tmp_path: Path) -> Path:
    IOConfig(codec="blosc-lz4-shuffle", sharding="rows-16x2").write(tiny_adata, tmp_path / "s.zarr")
    return tmp_path / "s.zarr"


def test_runs_are_shuffled_and_parts_share_an_epoch_without_overlap() -> None:
    spec = LoaderSpec(run_rows=10, seed=3)
    runs = spec.runs(95)
    assert sorted(runs) == [(s, min(s + 10, 95)) for s in range(0, 95, 10)] and runs != sorted(runs)
    parts = [spec.runs(95, (i, 3)) for i in range(3)]
    assert sorted(r for part in parts for r in part) == sorted(runs)
    assert LoaderSpec(shuffle="none", run_rows=10).runs(30) == [(0, 10), (10, 20), (20, 30)]
    assert len(LoaderSpec(shuffle="rows").runs(30)) == 30  # one row a run
    with pytest.raises(HarnessError, match="batch_size must be at least 1"):
        LoaderSpec(batch_size=0)


def test_a_group_reads_its_runs_sorted_with_touching_runs_merged() -> None:
    assert _merged([(30, 40), (0, 10), (10, 20), (50, 51), (40, 45)]) == [(0, 20), (30, 45), (50, 51)]
    assert _merged([]) == []


@pytest.mark.parametrize("shuffle", ["blocks", "rows", "none"])
@pytest.mark.parametrize("prefetch", [1, 0])
@pytest.mark.parametrize("pipeline", ["fused", "zarrs"])
def test_stream_yields_every_row_once_equal_to_the_source(
    shuffle: str, prefetch: int, pipeline: str, store: Path, tiny_adata
) -> None:
    if pipeline == "zarrs" and importlib.util.find_spec("zarrs") is None:
        pytest.skip("zarrs is not installed")
    cfg = IOConfig(concurrency=4, pipeline=pipeline)
    batches = list(
        cfg.stream(store, batch_size=32, shuffle=shuffle, run_rows=8, preload=3, prefetch=prefetch, obs=["cell_type"])
    )
    rows = np.concatenate([b.rows for b in batches])
    assert sorted(rows) == list(range(tiny_adata.n_obs))
    assert all(b.X.shape[0] == 32 for b in batches[:-1]) and 0 < batches[-1].X.shape[0] <= 32
    for batch in batches:
        assert (tiny_adata.X[batch.rows] != batch.X).nnz == 0
        assert list(batch.obs["cell_type"]) == list(tiny_adata.obs["cell_type"].iloc[batch.rows])
    assert (list(rows) == sorted(rows)) == (shuffle == "none")


def test_stream_refuses_a_dense_x_and_an_unknown_obs_column(tiny_adata, tmp_path: Path, store: Path) -> None:
    dense = tiny_adata.copy()
    dense.X = dense.X.toarray()
    IOConfig().write(dense, tmp_path / "d.zarr")
    with pytest.raises(UnsupportedPoint, match="reads rows of a CSR X"):
        list(IOConfig().stream(tmp_path / "d.zarr"))
    with pytest.raises(HarnessError, match="obs has no column 'nope'"):
        list(IOConfig().stream(store, obs=["nope"]))


@pytest.mark.parametrize(
    "name", ["stream-blocks", "stream-blocks-sync", "stream-random-rows", "stream-random-rows-sync"]
)
@pytest.mark.parametrize("procs", [1, 2])
def test_loader_workloads_measure_and_verify_an_epoch(name: str, procs: int, tiny_adata, tmp_path: Path) -> None:
    point = Point.of(pipeline="fused", codec="blosc-lz4-shuffle", sharding="rows-16x2")
    ctx = context.Context(point, tiny_adata, tmp_path, loader=SMALL, procs=procs)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    work = workloads.REGISTRY[name](ctx)
    with work.config():
        work.run()
    work.verify()
    m = work.metrics
    assert m["cells_per_s"] > 0 and m["procs"] == procs and 0 < m["p50_batch_s"] <= m["p99_batch_s"]
    assert m["first_batch_s"] > 0 and m["proc_cells_per_s_min"] > 0 and m["decoded_mb"] > 0
    work.result[0] = (work.result[0][0], (0, 0, 0.0, 0))  # a corrupted batch is caught
    with pytest.raises(HarnessError, match="differs from the source"):
        work.verify()


needs_annbatch = pytest.mark.skipif(importlib.util.find_spec("annbatch") is None, reason="annbatch is not installed")


@needs_annbatch
def test_annbatch_writer_and_loader_run_beside_ours(tiny_adata, tmp_path: Path) -> None:
    points = [baseline_point("annbatch"), Point.of(pipeline="fused", sharding="rows-16x2")]
    if importlib.util.find_spec("zarrs") is not None:
        points.append(baseline_point("annbatch+zarrs"))
    for point in points:
        ctx = context.Context(point, tiny_adata, tmp_path / (point.baseline or "ours"), loader=SMALL)
        with context.zarr_config(point, "write"):
            context.write_store(ctx, context.write_input(ctx))
        for name in ("stream-annbatch", "stream-blocks"):
            work = workloads.REGISTRY[name](ctx)
            with work.config():
                work.run()
            work.verify()
            assert work.metrics["cells_per_s"] > 0


@needs_annbatch
def test_annbatch_loader_shares_an_epoch_across_processes(tiny_adata, tmp_path: Path) -> None:
    """Two annbatch loader processes (its DistributedSampler) read every row exactly once between them."""
    point = baseline_point("annbatch")
    ctx = context.Context(point, tiny_adata, tmp_path, loader=SMALL, procs=2)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    work = workloads.REGISTRY["stream-annbatch"](ctx)
    with work.config():
        work.run()
    work.verify()
    assert work.metrics["procs"] == 2 and work.metrics["proc_cells_per_s_min"] > 0


def test_batch_latency_percentiles_leave_out_each_process_first_batch() -> None:
    """The first wait opens the store; with ~25 batches an epoch it would be the p99 of every loader."""
    m = loaders.batch_latencies([[2.0, 0.1, 0.1, 0.3], [1.5, 0.1, 0.2]])
    assert m["first_batch_s"] == 1.5 and m["p50_batch_s"] == pytest.approx(0.1)
    assert m["p99_batch_s"] == pytest.approx(0.3, abs=0.01)
    assert loaders.batch_latencies([[0.4]])["p99_batch_s"] == 0.4  # a one-batch epoch keeps its only wait


@needs_annbatch
def test_annbatch_first_batch_includes_opening_its_store(tiny_adata, tmp_path: Path, monkeypatch) -> None:
    """Both loaders' first batch counts the opening, as `IOConfig.stream` does: a slow open shows in it."""
    import time

    import annbatch

    point = baseline_point("annbatch")
    ctx = context.Context(point, tiny_adata, tmp_path, loader=SMALL)
    with context.zarr_config(point, "write"):
        context.write_store(ctx, context.write_input(ctx))
    add = annbatch.Loader.add_dataset
    monkeypatch.setattr(annbatch.Loader, "add_dataset", lambda self, *a, **k: (time.sleep(0.3), add(self, *a, **k))[1])
    found = loaders.annbatch_epoch(point.config, ctx.output, SMALL, (0, 1))
    assert found["waits"][0] >= 0.3 and sum(len(r) for r in found["rows"]) == tiny_adata.n_obs
