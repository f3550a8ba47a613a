"""Bad input: one `harness: error:` line naming the problem and the fix, non-zero exit, nothing lost."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from harness import cli
from harness.analysis import results
from harness.analysis.results import Row


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error: ")
    return err[0]


def test_missing_dataset(capsys, tmp_path: Path) -> None:
    assert "not found" in _error(capsys, ["run", "--dataset", str(tmp_path / "nope.h5ad"), "--results", str(tmp_path)])


def test_file_that_is_not_h5ad(capsys, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.h5ad"
    bogus.write_text("hello")
    assert "not an .h5ad" in _error(capsys, ["run", "--dataset", str(bogus), "--results", str(tmp_path)])


def test_truncated_h5ad(capsys, tiny_h5ad: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.h5ad"
    cut.write_bytes(tiny_h5ad.read_bytes()[: tiny_h5ad.stat().st_size // 2])
    assert "truncated or corrupt" in _error(capsys, ["run", "--dataset", str(cut), "--results", str(tmp_path)])


def test_anndata_without_x(capsys, tmp_path: Path) -> None:
    import anndata as ad
    import pandas as pd

    path = tmp_path / "nox.h5ad"
    ad.AnnData(obs=pd.DataFrame(index=["a", "b"]), var=pd.DataFrame(index=["g"])).write_h5ad(path)
    assert "has no X matrix" in _error(capsys, ["tune", "--dataset", str(path), "--out", str(tmp_path / "o")])


def test_tune_rejects_unknown_objective_and_remote_store(capsys, tiny_h5ad: Path) -> None:
    assert "unknown objective 'fastest'" in _error(
        capsys, ["tune", "--dataset", str(tiny_h5ad), "--objective", "fastest"]
    )
    assert "use s3://bucket/prefix or https://host/path" in _error(
        capsys, ["tune", "--dataset", str(tiny_h5ad), "--store", "ftp://bucket/x"]
    )
    for bad in ("0", "ten"):
        assert f"--finalists {bad}: pass auto or a number of at least 1" in _error(
            capsys, ["tune", "--dataset", str(tiny_h5ad), "--finalists", bad]
        )
    assert "--deciding-rounds -1: give 0 (none) or more" in _error(
        capsys, ["tune", "--dataset", str(tiny_h5ad), "--deciding-rounds", "-1"]
    )


def test_tune_options_are_parsed_once_into_the_request(tiny_h5ad: Path) -> None:
    from harness.cli import build_parser
    from harness.cli.tune import request_from
    from harness.tune import TuneRequest

    args = ["tune", "--dataset", str(tiny_h5ad), "--finalists", "3", "--repeats", "6", "--deciding-rounds", "0"]
    request = request_from(build_parser().parse_args(args))
    assert (request.finalists, request.repeats, request.deciding_rounds) == (3, 6, 0)
    default = request_from(build_parser().parse_args(["tune", "--dataset", str(tiny_h5ad)]))
    assert (default.finalists, default.repeats, default.deciding_rounds) == (
        TuneRequest(dataset="x").finalists,
        TuneRequest(dataset="x").repeats,
        TuneRequest(dataset="x").deciding_rounds,
    )
    assert default.finalists is None  # auto: as many as the budget leaves room for (tune.finalist_count)


def test_directory_that_is_not_zarr(capsys, tmp_path: Path) -> None:
    assert "not a zarr store" in _error(capsys, ["run", "--dataset", str(tmp_path), "--results", str(tmp_path / "r")])


@pytest.mark.parametrize(
    ("axis", "needle"), [("flavour=x", "unknown axis"), ("codec=lzma", "unknown codec"), ("loop=trio", "unknown loop")]
)
def test_unknown_axis_or_value(capsys, tiny_h5ad: Path, tmp_path: Path, axis: str, needle: str) -> None:
    assert needle in _error(capsys, ["run", "--dataset", str(tiny_h5ad), "--results", str(tmp_path), "--axis", axis])


def test_unknown_workload(capsys, tiny_h5ad: Path, tmp_path: Path) -> None:
    assert "unknown workload" in _error(capsys, ["run", "--dataset", str(tiny_h5ad), "--workloads", "scan"])


def test_locked_results_dir(capsys, tiny_h5ad: Path, tmp_path: Path) -> None:
    results.append(tmp_path, [Row("p", "write", "ok", data={"key": "kept"})])
    with results.locked(tmp_path):
        assert "locked" in _error(capsys, ["run", "--dataset", str(tiny_h5ad), "--results", str(tmp_path)])
    assert results.done_keys(tmp_path) == {"kept"}


def test_dataset_too_large_for_free_disk(capsys, tiny_h5ad: Path, tmp_path: Path, monkeypatch) -> None:
    import tempfile

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10, 10, 1))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    results_dir = tmp_path / "results"
    assert "scratch space" in _error(capsys, ["run", "--dataset", str(tiny_h5ad), "--results", str(results_dir)])
    assert not list(scratch.iterdir())  # the sweep's own scratch folder is removed on the error too


def test_invalid_combination_is_listed_with_reason(capsys) -> None:
    assert cli.main(["matrix", "--axis", "store=fsspec", "--axis", "pipeline=zarrs", "--baselines", "none"]) == 0
    out = capsys.readouterr().out
    assert "unsupported: zarrs cannot drive an fsspec store" in out


def test_show_without_results(capsys, tmp_path: Path) -> None:
    assert "no results" in _error(capsys, ["show", "--results", str(tmp_path)])


def test_failed_points_make_the_run_exit_non_zero_with_a_summary(
    capsys, tiny_h5ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.measure.worker import INJECT_FAULT_ENV

    monkeypatch.setenv(INJECT_FAULT_ENV, "raise:read")
    argv = [
        "run",
        "--dataset",
        str(tiny_h5ad),
        "--results",
        str(tmp_path),
        "--baselines",
        "none",
        "--axis",
        "pipeline=fused",
        "--axis",
        "codec=zstd-0",
        "--axis",
        "sharding=auto",
        "--workloads",
        "write,read",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--no-progress",
    ]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "failed local/asyncio/fused/zstd-0/auto/cons-on read: RuntimeError: injected fault before read" in " ".join(
        out.split()
    )
    assert "'failed': 1" in out and "'ok': 1" in out
