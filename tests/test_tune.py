"""Tune logic without measuring: objectives, constraints, successive halving, emitted module."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.matrix import Point
from harness.measure import datasets, verify
from harness.tune import emit, search, space


def _row(median: float, nbytes: int = 1000, status: str = "ok") -> dict:
    return {"status": status, "values": [median * 0.9, median, median * 1.1], "bytes": nbytes, "files": 10}


def test_balanced_is_the_equal_weight_geometric_mean() -> None:
    rows = {"write": _row(8.0), "read": _row(2.0), "lazy-rows": _row(1.0), "lazy-random": _row(0.5)}
    assert space.score(rows, "balanced") == pytest.approx(math.exp((math.log(8) + math.log(2) + 0 + math.log(0.5)) / 4))
    assert space.score(rows, "write") == pytest.approx(8.0)
    assert space.score({"write": _row(1.0, nbytes=1234)}, "size") == 1234


def test_a_failed_workload_makes_a_point_unscorable() -> None:
    assert space.score({"write": _row(1.0), "read": _row(1.0, status="failed")}, "read") is None


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("1.5h", 5400), ("42", 42)])
def test_budget_parsing(text: str, seconds: float) -> None:
    assert space.parse_budget(text) == seconds


def test_bad_objective_budget_and_constraints() -> None:
    with pytest.raises(HarnessError, match="unknown objective 'fastest'"):
        space.check_objective("fastest")
    with pytest.raises(HarnessError, match="cannot read budget"):
        space.parse_budget("ten minutes")
    with pytest.raises(HarnessError, match="unknown reader"):
        space.Constraints(readable_by=("julia",))
    with pytest.raises(HarnessError, match="must be positive"):
        space.Constraints(max_size_ratio=0)


def test_candidates_respect_allowed_pipelines_and_say_why_points_drop() -> None:
    kept, dropped = space.candidates(space.VALIDATION_SPACE, space.Constraints(pipelines=("fused", "gpu")))
    assert {p.axis("pipeline") for p in kept} == {"fused"}
    assert all("unsupported" in reason for reason in dropped.values()) and dropped


def test_rung_sizes_grow_by_three_and_respect_small_datasets() -> None:
    assert search.rung_sizes(100_000) == [3703, 11111, 33333]
    assert search.rung_sizes(700) == [500]
    assert search.rung_sizes(80) == [80]


def _fake_rungs(monkeypatch: pytest.MonkeyPatch, cost, nbytes=lambda p: 1000, interop_ok=lambda p: True) -> list:
    """Replace measuring with a deterministic cost per point; record which points each rung saw."""
    seen: list[list[str]] = []
    monkeypatch.setattr(search, "n_obs_of", lambda path: 100_000)
    monkeypatch.setattr(search, "subsample", lambda path, rows, workdir: path)

    def measure(points, sample, workloads, repeats, workdir, timeout, readers, env=None):
        seen.append([p.id for p in points if not p.baseline])
        out = {}
        for p in points:
            out[p.id] = {w: _row(cost(p), nbytes(p)) for w in workloads}
            if readers and not p.baseline:
                out[p.id]["interop"] = {"status": "ok" if interop_ok(p) else "failed", "error": "zarrs: bad frame"}
        return out

    monkeypatch.setattr(search, "_measure_rung", measure)
    return seen


def _cost(point: Point) -> float:
    return (
        {"zarrs": 1.0, "fused": 2.0, "python": 4.0}[point.axis("pipeline")]
        * {"zstd-0": 1.0, "zstd-3": 1.5, "blosc-lz4-bitshuffle": 0.8}[point.axis("codec")]
        * {"auto": 1.0, "rows-256x16": 1.2, "rows-4096x16": 0.9}[point.axis("sharding")]
    )


def test_successive_halving_keeps_the_best_and_shrinks_by_eta(monkeypatch, tmp_path: Path) -> None:
    seen = _fake_rungs(monkeypatch, _cost)
    found = search.search(
        tmp_path, "write", space.VALIDATION_SPACE, space.Constraints(), workdir=tmp_path, budget_s=1e9
    )
    assert [len(s) for s in seen] == [27, 9, 3]
    assert found.ranked[0].id == "local/asyncio/zarrs/blosc-lz4-bitshuffle/rows-4096x16/cons-on"
    assert [r.rows for r in found.rungs] == [3703, 11111, 33333]


def test_size_constraint_and_reader_failures_remove_points(monkeypatch, tmp_path: Path) -> None:
    _fake_rungs(
        monkeypatch,
        _cost,
        nbytes=lambda p: 5000 if p.axis("codec") == "blosc-lz4-bitshuffle" else 1000,
        interop_ok=lambda p: p.axis("pipeline") != "zarrs",
    )
    found = search.search(
        tmp_path, "write", space.VALIDATION_SPACE, space.Constraints(max_size_ratio=1.1), workdir=tmp_path, budget_s=1e9
    )
    assert found.ranked[0].axis("codec") != "blosc-lz4-bitshuffle" and found.ranked[0].axis("pipeline") != "zarrs"
    assert any("max-size-ratio" in r for r in found.rungs[0].rejected.values())
    assert any(r.startswith("interop") for r in found.rungs[0].rejected.values())


def test_impossible_constraints_name_the_one_that_removed_most(monkeypatch, tmp_path: Path) -> None:
    _fake_rungs(monkeypatch, _cost, nbytes=lambda p: 10_000)
    with pytest.raises(HarnessError, match="removed by --max-size-ratio"):
        search.search(
            tmp_path,
            "write",
            space.VALIDATION_SPACE,
            space.Constraints(max_size_ratio=1.0 - 1e-9),
            workdir=tmp_path,
            budget_s=1e9,
        )


def test_budget_too_small_for_the_baselines_stops_after_one_rung_and_keeps_it(monkeypatch, tmp_path: Path) -> None:
    _fake_rungs(monkeypatch, _cost)
    found = search.search(tmp_path, "write", space.VALIDATION_SPACE, space.Constraints(), workdir=tmp_path, budget_s=10)
    assert len(found.rungs) == 1 and found.ranked  # what was measured is verified, not thrown away
    assert "budget 10s is too small for more rungs" in found.note and "--budget" in found.note
    roomy = search.search(
        tmp_path, "write", space.VALIDATION_SPACE, space.Constraints(), workdir=tmp_path, budget_s=1e9
    )
    assert len(roomy.rungs) > 1 and not roomy.note


def test_generated_module_imports_and_round_trips(tmp_path: Path, tiny_adata) -> None:
    point = Point.of(pipeline="zarrs", codec="blosc-lz4-bitshuffle", sharding="rows-16x4")
    record = {
        "config": point.config.to_dict(),
        "point_id": point.id,
        "objective": "balanced",
        "dataset": {"name": "tiny", "fingerprint": "abc"},
        "provenance": {"date": "2026-11-25"},
        "verification": [{"workload": "write", "speedup_vs_anndata-default": 1.5}],
    }
    (tmp_path / "io_config.py").write_text(emit.module_text(record))
    spec = importlib.util.spec_from_file_location("io_config_test", tmp_path / "io_config.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["io_config_test"] = module
    spec.loader.exec_module(module)
    cfg = module.recommended_config()
    assert (cfg.pipeline, cfg.codec.name, cfg.sharding.name) == ("zarrs", "blosc-lz4-bitshuffle", "rows-16x4")
    assert module.recommended_config(codec="zstd-3").codec.name == "zstd-3"
    cfg.write(tiny_adata, tmp_path / "out.zarr")
    verify.assert_anndata_equal(cfg.read(tmp_path / "out.zarr"), tiny_adata)


def test_subsample_creates_its_directory_and_keeps_rows(tiny_h5ad: Path, tmp_path: Path) -> None:

    sample = search.subsample(tiny_h5ad, 30, tmp_path / "new" / "dir")
    adata = datasets.load(sample)
    full = datasets.load(tiny_h5ad)
    assert adata.n_obs == 30 and set(adata.obs_names) <= set(full.obs_names)
    assert (
        search.subsample(tiny_h5ad, 10_000, tmp_path / "other") == tiny_h5ad
    )  # asking for all rows: the dataset itself


def test_deep_space_adds_filters_and_knobs_and_drops_what_cannot_combine() -> None:
    pool, dropped = space.candidates(
        {**space.DEFAULT_SPACE, **space.DEEP_AXES}, space.Constraints(pipelines=("fused", "zarrs"))
    )
    assert any(p.axis("filters") == "delta" for p in pool) and any(p.axis("knobs") != "default" for p in pool)
    assert all(p.axis("pipeline") == "zarrs" for p in pool if p.axis("knobs") != "default")
    assert all(p.axis("sharding") != "auto" for p in pool if p.axis("filters") != "none")
    assert any("honoured only by the zarrs pipeline" in reason for reason in dropped.values())


def test_verification_estimate_scales_with_what_the_verification_measures() -> None:
    ref_rows = {"write": {"values": [0.2]}, "lazy-random": {"values": [0.2]}}
    local = search._verification_estimate(ref_rows, rows=500, n_obs=10_000, repeats=5)
    remote = search._verification_estimate(ref_rows, rows=500, n_obs=10_000, repeats=5, shape=(5, 2, 2))
    assert local == pytest.approx(3 * (0.2 * 7 * 20 * 6 + 5))
    assert remote == pytest.approx(4 * (0.2 * 5 * 20 * 6 + 5)) and remote < local
