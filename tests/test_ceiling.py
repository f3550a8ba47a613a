"""harness ceiling (codec and storage ceilings of a dataset's own arrays) and harness run --attribute (where a
workload's time goes), shown by `harness show` and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.analysis import report, results, tables
from harness.cli import main
from harness.measure import ceiling


def test_codec_ceiling_measures_ratio_and_throughput_on_one_and_all_threads() -> None:
    values = np.repeat(np.arange(1000, dtype=np.int32), 100)  # compressible
    one = ceiling.codec_ceiling("X.indices", values, "zstd-1", 1)
    two = ceiling.codec_ceiling("X.indices", values, "blosc-zstd-shuffle-1", 2)
    assert one.raw_bytes == values.nbytes and one.ratio > 10 and one.encode_mb_s > 0 and one.decode_mb_s > 0
    assert two.threads == 2 and two.ratio > 10


def test_ceiling_command_stores_rows_that_show_and_report_print(tiny_h5ad: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "ceiling",
                "--dataset",
                str(tiny_h5ad),
                "--codecs",
                "zstd-0,blosc-lz4-shuffle",
                "--results",
                str(tmp_path),
                "--workdir",
                str(tmp_path),
            ]
        )
        == 0
    )
    rows = list(results.iter_rows(tmp_path))
    arrays = {r["array"] for r in rows if "array" in r}
    assert {"X.data", "X.indices", "X.indptr", "layers/counts.data", "obsm/X_pca"} <= arrays
    assert {r["what"] for r in rows if "what" in r} == {"page-cache-write", "fsync-write", "cold-read", "memcpy"}
    assert all(r["mb_s"] > 0 for r in rows if "what" in r)
    printed = capsys.readouterr().out
    assert "| X.data | blosc-lz4-shuffle |" in printed and "| fsync-write |" in printed
    assert main(["show", "--results", str(tmp_path)]) == 0
    assert "Ceilings of" in capsys.readouterr().out
    assert "## Ceilings (harness ceiling)" in report.build(tmp_path, tmp_path / "rep").read_text()


def test_attribution_splits_the_time_and_the_report_relates_it_to_the_ceiling(tiny_h5ad: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "ceiling",
                "--dataset",
                str(tiny_h5ad),
                "--codecs",
                "zstd-0",
                "--results",
                str(tmp_path),
                "--workdir",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "run",
                "--dataset",
                str(tiny_h5ad),
                "--axis",
                "pipeline=fused",
                "--axis",
                "codec=zstd-0",
                "--axis",
                "sharding=rows-16x2",
                "--baselines",
                "none",
                "--workloads",
                "write,read",
                "--repeats",
                "1",
                "--results",
                str(tmp_path),
                "--attribute",
                "--no-progress",
            ]
        )
        == 0
    )
    rows = {r["workload"]: r for r in results.iter_rows(tmp_path) if r.get("attribution")}
    write, read = rows["write"]["attribution"], rows["read"]["attribution"]
    assert write["encode_s"] > 0 and write["store_set_s"] > 0 and write["raw_bytes"] > 0  # zstd encoded, files written
    assert read["decode_s"] > 0 and read["store_get_s"] > 0 and read["cpu_use"] > 0
    text = report.build(tmp_path, tmp_path / "rep").read_text()
    assert "## Where the time goes" in text and "%" in text.split("## Where the time goes")[1]


def test_a_codec_that_fails_on_an_array_is_a_failed_row_not_the_end(monkeypatch) -> None:
    from numcodecs import Zstd

    class Broken(Zstd):
        def decode(self, buf, out=None):
            raise RuntimeError("Zstd decompression error: invalid input data")

    monkeypatch.setattr(ceiling, "numcodecs_codec", lambda name: Broken())
    found = ceiling.codec_ceiling("X.indptr", np.arange(1000, dtype=np.int64), "zstd-0", 2)
    assert found.error.startswith("RuntimeError: Zstd decompression error") and np.isnan(found.ratio)
    md = tables.ceiling_markdown(
        [
            {
                "kind": "ceiling",
                "run_id": "1",
                "status": "failed",
                "workload": "codec X.indptr zstd-0 x2",
                "error": found.error,
            }
        ]
    )
    assert md == ["- codec X.indptr zstd-0 x2 failed: RuntimeError: Zstd decompression error: invalid input data"]


def test_a_two_dimensional_array_is_measured_in_whole_pieces() -> None:
    """obsm arrays are 2-D: pieces are cut by elements, never empty (an empty piece does not decode)."""
    values = np.random.default_rng(0).standard_normal((30_000, 50)).astype(np.float32)  # 6 MB: two 4 MiB pieces
    found = ceiling.codec_ceiling("obsm/X_pca", values, "zstd-0", 2)
    assert not found.error and found.raw_bytes == values.nbytes and found.ratio > 1


def test_a_failed_ceiling_row_does_not_turn_the_share_into_nan() -> None:
    from harness.analysis.ceilings import ceiling_seconds

    ok = {"kind": "ceiling", "status": "ok", "array": "X.data", "codec": "zstd-0", "threads": 2}
    ceilings = [
        {**ok, "raw_bytes": 2e9, "encode_mb_s": 1000.0, "decode_mb_s": 2000.0},
        {**ok, "array": "obsm/X_pca", "status": "failed", "raw_bytes": 2e7, "encode_mb_s": float("nan")},
        {"kind": "ceiling", "status": "ok", "what": "fsync-write", "mb_s": 1000.0},
    ]
    row = {"workload": "write", "bytes": 5e8, "point": {"codec": "zstd-0"}}
    assert ceiling_seconds(row, ceilings) == 2.0  # 2 GB encoded at 1 GB/s; 0.5 GB written at 1 GB/s
