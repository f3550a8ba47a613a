"""harness convert: larger-than-memory rewrites where every task owns whole shards, verified shard by
shard; misaligned partitions through the same code path lose data and the verification catches it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.measure import conversion, datasets, verify
from harness.runtime import IOConfig
from harness.runtime import convert as streaming

SHARDED = IOConfig(pipeline="fused", sharding="rows-16x4")


def _config(tmp_path: Path, cfg: IOConfig = SHARDED) -> Path:
    path = tmp_path / "cfg.json"
    path.write_text(cfg.to_json())
    return path


@pytest.mark.parametrize("source", ["h5ad", "zarr"])
def test_convert_cli_writes_the_source_verified(source: str, capsys, tiny_h5ad: Path, tiny_adata, tmp_path) -> None:
    src = tiny_h5ad
    if source == "zarr":
        src = tmp_path / "src.zarr"
        IOConfig(pipeline="fused").write(tiny_adata, src)
    dst = tmp_path / "dst.zarr"
    argv = ["convert", str(src), str(dst), "--config", str(_config(tmp_path)), "--results", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "verified equal" in out and f"converted {tiny_adata.n_obs} cells" in out
    verify.assert_anndata_equal(IOConfig(pipeline="zarrs").read(dst), tiny_adata, "converted")
    [row] = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert row["workload"] == "convert" and row["status"] == "ok" and row["files"] > 0 and row["peak_rss"]["local"] > 0


def test_convert_errors_are_one_line(capsys, tiny_h5ad: Path, tmp_path: Path) -> None:
    for argv, needle in [
        (["convert", str(tmp_path / "none.h5ad"), str(tmp_path / "d.zarr")], "does not exist"),
        (["convert", str(tiny_h5ad), str(tmp_path)], "exists; pass a new destination"),
        (["convert", str(tiny_h5ad), str(tmp_path / "d.zarr"), "--config", "nope.py"], "--config nope.py"),
    ]:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """4,000 cells: shards of many chunks, so misaligned tasks share shards."""
    size = datasets.SyntheticSize(cells=4000, genes=300, median_genes=40)
    return datasets.generate(tmp_path_factory.mktemp("wide") / "wide.h5ad", size, chunk_cells=1000)


def _write(src: Path, dst: Path, partition: int | None) -> list[str]:
    import dask

    shell, sources = conversion.file_sources(src)
    sources = {"X": sources["X"]}
    with dask.config.set(scheduler="threads", num_workers=8):
        streamed = streaming.write_streamed(SHARDED, shell, sources, dst, partition=partition)
        return streaming.verify(SHARDED, dst, streamed)


def test_whole_shard_tasks_keep_the_data_misaligned_ones_lose_it(wide: Path, tmp_path: Path) -> None:
    for attempt in range(3):
        assert _write(wide, tmp_path / f"aligned-{attempt}.zarr", None) == []
    shell, sources = conversion.file_sources(wide)
    shard = streaming.plan(
        {"X": {"data": __import__("zarr").open_array(tmp_path / "aligned-0.zarr" / "X" / "data")}}
    ).arrays[("X", "data")][1]
    lost = []
    for attempt in range(5):  # concurrent read-modify-write of one shard: a race, so try a few times
        lost = _write(wide, tmp_path / f"misaligned-{attempt}.zarr", max(1, shard // 8))
        if lost:
            break
    assert lost and "values differ from the source" in lost[0]


def test_convert_on_a_local_cluster(tiny_h5ad: Path, tiny_adata, tmp_path: Path, capsys) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed (the bench extra)")
    dst = tmp_path / "dst.zarr"
    argv = ["convert", str(tiny_h5ad), str(dst), "--config", str(_config(tmp_path)), "--cluster", "local:2"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "verified equal" in out and out.count("tcp://127.0.0.1:") == 2  # each worker's peak RSS
    verify.assert_anndata_equal(IOConfig(pipeline="fused").read(dst), tiny_adata, "converted on a cluster")
