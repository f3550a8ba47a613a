"""The knobs axis: parsed once, valid only with the pipelines that honour them, applied to zarr's config."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.analysis import results
from harness.errors import HarnessError
from harness.matrix import Point, invalid_reason, parse_axes, point_by_id
from harness.measure import context
from harness.measure.runner import Sweep, run_sweep
from harness.runtime import IOConfig, knobs


def test_knobs_parse_canonically_and_round_trip_through_ids() -> None:
    assert knobs.parse_knobs("zarrs-chunk-min=4+zarrs-workers=2").name == "zarrs-chunk-min=4+zarrs-workers=2"
    (value,) = parse_axes(["knobs=zarrs-workers=2+zarrs-checksums=false"])["knobs"]
    point = Point.of(pipeline="zarrs", knobs=value)
    assert point.id.endswith("/knobs-zarrs-checksums=false+zarrs-workers=2") and point_by_id(point.id) == point
    assert Point.of(pipeline="zarrs").id == "local/asyncio/zarrs/zstd-0/auto/cons-on"


@pytest.mark.parametrize(
    "bad, match",
    [
        ("threads=2", "not understood"),
        ("zarrs-workers=0", "at least 1"),
        ("zarrs-checksums=maybe", "true or false"),
        ("batch-size", "not understood"),
    ],
)
def test_bad_knobs_are_clear_errors(bad: str, match: str) -> None:
    with pytest.raises(HarnessError, match=match):
        parse_axes([f"knobs={bad}"])


def test_a_knob_is_valid_only_with_the_pipeline_that_honours_it() -> None:
    assert "only by the zarrs pipeline" in invalid_reason(Point.of(pipeline="fused", knobs="zarrs-workers=2"))
    assert "only by the python pipeline" in invalid_reason(Point.of(pipeline="zarrs", knobs="batch-size=8"))
    assert invalid_reason(Point.of(pipeline="python", knobs="batch-size=8")) is None


def test_knobs_reach_zarr_config_in_workloads_and_runtime() -> None:
    import zarr

    point = Point.of(pipeline="zarrs", knobs="zarrs-workers=3+zarrs-chunk-max=5")
    with context.zarr_config(point, "read"):
        assert zarr.config.get("threading.max_workers") == 3
        assert zarr.config.get("codec_pipeline.chunk_concurrent_maximum") == 5
    with IOConfig(pipeline="python", knobs="batch-size=4").activate():
        assert zarr.config.get("codec_pipeline.batch_size") == 4


def test_a_sweep_over_knobs_measures_each_setting(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [
        Point.of(pipeline="zarrs", knobs=k) for k in ("default", "zarrs-workers=1", "zarrs-chunk-min=1+zarrs-workers=2")
    ]
    counts = run_sweep(
        Sweep(
            dataset=str(tiny_h5ad),
            points=points,
            workloads=["write", "read"],
            repeats=1,
            warmup=0,
            results_dir=tmp_path,
            workdir=tmp_path / "work",
            progress=False,
        )
    )
    assert counts["ok"] == 6
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    assert {r["point"]["knobs"] for r in rows} == {"default", "zarrs-workers=1", "zarrs-chunk-min=1+zarrs-workers=2"}


def test_dask_workers_sets_the_threads_that_compute_lazy_arrays_with_every_pipeline(
    tiny_h5ad: Path, tmp_path: Path
) -> None:
    import anndata as ad
    import dask
    import zarr

    assert invalid_reason(Point.of(pipeline="fused", knobs="dask-workers=32")) is None
    assert knobs.parse_knobs("dask-workers=32+zarrs-workers=2").zarr == {"threading.max_workers": 2}
    before = dask.config.get("num_workers", None)
    with context.zarr_config(Point.of(pipeline="fused", knobs="dask-workers=32"), "lazy-random"):
        assert dask.config.get("num_workers") == 32 and zarr.config.get("async.concurrency") == 10
    assert dask.config.get("num_workers", None) == before
    # the runtime: the knob holds where the lazy object is computed (to_memory), and the result is right
    cfg = IOConfig(pipeline="python", knobs="dask-workers=7")
    source = ad.read_h5ad(tiny_h5ad)
    cfg.write(source, tmp_path / "s.zarr")
    seen: list[int] = []
    lazy = cfg.read_lazy(tmp_path / "s.zarr")[:5]

    class Probe:
        def to_memory(self):
            seen.append(dask.config.get("num_workers"))
            return lazy.to_memory()

    subset = cfg.to_memory(Probe())
    assert seen == [7]
    assert (subset.X != source[:5].X).nnz == 0
