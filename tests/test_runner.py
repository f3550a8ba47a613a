"""The runner end to end on tiny data: rows, statuses, resume, interruption, timeouts, locks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import matrix
from harness.analysis import results
from harness.analysis.results import Row
from harness.errors import HarnessError
from harness.matrix import Point
from harness.measure.runner import Sweep, row_key, run_sweep


def _sweep(dataset: Path, results_dir: Path, points: list[Point], workloads=("write", "read"), **kw) -> Sweep:
    return Sweep(
        dataset=str(dataset),
        points=points,
        workloads=list(workloads),
        repeats=2,
        warmup=0,
        results_dir=results_dir,
        workdir=results_dir / "work",
        progress=False,
        **kw,
    )


def test_sweep_records_every_repeat_with_provenance(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [
        matrix.baseline_point("anndata-default"),
        Point.of(loop="uvloop", pipeline="zarrs", sharding="rows-16x2"),
        Point.of(store="fsspec", pipeline="zarrs"),
    ]
    counts = run_sweep(_sweep(tiny_h5ad, tmp_path, points, workloads=("write", "read", "lazy-random")))
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    assert len(rows) == 9 and counts["ok"] == 6 and counts["unsupported"] == 3
    by = {(r["point_id"], r["workload"]): r for r in rows}
    write = by[(points[1].id, "write")]
    assert write["status"] == "ok" and len(write["values"]) == 2 and all(0 < v < 60 for v in write["values"])
    assert write["event_loop"].startswith("uvloop")
    assert "zarrs" in write["pipeline_effective"] and write["files"] > 0 and write["bytes"] > 0
    assert by[(points[1].id, "read")]["page_cache"] in ("cold", "warm")
    assert by[(points[0].id, "write")]["pipeline_effective"] == ["fused"]
    assert "falls back" in by[(points[2].id, "write")]["error"]
    prov = write["provenance"]
    assert prov["packages"]["anndata"] and prov["cores"] >= 1 and "commit" in prov["git"]
    assert write["dataset"]["fingerprint"] and write["schema"] == results.SCHEMA
    df = results.load(tmp_path)
    assert {"median", "iqr", "point_id", "workload", "status"} <= set(df.columns)


def test_resume_skips_points_already_measured(tiny_h5ad: Path, tmp_path: Path) -> None:
    sweep = _sweep(tiny_h5ad, tmp_path, [Point.of(pipeline="fused")], workloads=("write",))
    assert run_sweep(sweep)["ok"] == 1
    again = run_sweep(sweep)
    assert again["resumed"] == 1 and again["ok"] == 0
    assert len(list(results.iter_rows(results.results_file(tmp_path)))) == 1


def test_readers_asked_later_write_again_for_the_cross_reads(tiny_h5ad: Path, tmp_path: Path) -> None:
    """A write measured without readers (claim f) then asked for with readers (claim h) is written again so
    the cross-pipeline reads happen; with the reads done, a third sweep resumes everything."""
    sweep = _sweep(tiny_h5ad, tmp_path, [Point.of(pipeline="fused")], workloads=("write",))
    assert run_sweep(sweep)["ok"] == 1
    with_readers = _sweep(tiny_h5ad, tmp_path, [Point.of(pipeline="fused")], workloads=("write",))
    with_readers.readers = ["python", "read_zarr"]
    assert run_sweep(with_readers)["ok"] == 2  # the write again and its interop row
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    interop = [r for r in rows if r["workload"] == "interop"]
    assert len(interop) == 1 and set(interop[0]["readers"]) == {"python", "read_zarr"}
    assert run_sweep(with_readers)["resumed"] == 1


def test_timeout_kills_the_point_and_keeps_going(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [Point.of(pipeline="python"), Point.of(pipeline="fused")]
    counts = run_sweep(_sweep(tiny_h5ad, tmp_path, points, workloads=("write",), timeout=0.5))
    assert counts["timeout"] == 2
    rows = list(results.iter_rows(results.results_file(tmp_path)))
    assert {r["status"] for r in rows} == {"timeout"} and "timeout of 0.5s" in rows[0]["error"]


def test_a_second_sweep_on_the_same_results_dir_is_refused(tiny_h5ad: Path, tmp_path: Path) -> None:
    with results.locked(tmp_path), pytest.raises(HarnessError, match="locked by another running sweep"):
        run_sweep(_sweep(tiny_h5ad, tmp_path, [Point.of()]))


def test_truncated_last_line_is_ignored(tmp_path: Path) -> None:
    results.append(tmp_path, [Row("p", "write", "ok", data={"key": "a", "values": [1.0]})])
    with open(results.results_file(tmp_path), "a") as fh:
        fh.write('{"schema": 1, "key": "b", "sta')
    assert [r["key"] for r in results.iter_rows(results.results_file(tmp_path))] == ["a"]
    assert results.done_keys(tmp_path) == {"a"}


def _ours(tmp_path: Path) -> list:
    """Processes started for this test's sweep: workers and servers, whose files are under tmp_path."""
    import psutil

    return [proc for proc in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(proc.info["cmdline"] or [])]


def test_a_stopped_interleaved_sweep_resumes_from_its_last_finished_worker(
    tiny_h5ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.measure import rounds

    real, calls = rounds.run_batch, []

    def stopped_in_round_three(*args, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third round's worker runs
        calls.append(kw["workdir"])
        return real(*args, **kw)

    monkeypatch.setattr(rounds, "run_batch", stopped_in_round_three)
    sweep = _sweep(tiny_h5ad, tmp_path, [Point.of(pipeline="fused")], workloads=("write",), rounds=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep)
    assert not list(results.iter_rows(tmp_path))  # the rows are appended once all rounds are in...
    (kept,) = (tmp_path / rounds.CHECKPOINTS).glob("*.json")
    assert rounds.interrupted(tmp_path) > 0 and len(rounds.Checkpoint.load(kept).rows) == 2  # ...the workers are kept

    again: list = []
    monkeypatch.setattr(rounds, "run_batch", lambda *args, **kw: again.append(kw) or real(*args, **kw))
    assert run_sweep(sweep)["ok"] == 1
    assert len(again) == 1 and again[0]["workdir"].name.startswith("round-2")  # only the round that did not finish
    (row,) = results.iter_rows(tmp_path)
    assert row["status"] == "ok" and len(row["values"]) == 3 and row["rounds"] == 3
    assert not kept.exists() and rounds.interrupted(tmp_path) is None


def test_killed_sweep_resumes_with_each_point_exactly_once(tiny_h5ad: Path, tmp_path: Path) -> None:
    """SIGKILL the runner alone at seeded random moments, three times: no worker or server outlives it,
    no half-written line survives, and the resumed sweeps finish every (point, workload) exactly once."""
    import random

    import psutil

    out = tmp_path / "res"
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        "--dataset",
        str(tiny_h5ad),
        "--results",
        str(out),
        "--workdir",
        str(tmp_path / "work"),
        "--baselines",
        "none",
        "--axis",
        "store=local,s3-obstore",
        "--axis",
        "pipeline=python,fused",
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
    path = results.results_file(out)
    rng = random.Random(7)
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}  # worker specs and server dirs: found by path below
    for attempt in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(1.0, 6.0))
        proc.kill()  # the runner only: its children must follow by themselves
        proc.wait()
        deadline = time.time() + 15
        while time.time() < deadline and _ours(tmp_path):
            time.sleep(0.2)
        assert not _ours(tmp_path), (
            f"attempt {attempt}: {[' '.join(p.cmdline()) for p in _ours(tmp_path)]} outlived the runner"
        )
    assert subprocess.run(cmd, capture_output=True, env=env).returncode == 0
    lines = path.read_text().splitlines()
    rows = list(results.iter_rows(path))
    assert len(rows) >= len(lines) - 3  # at most one partial line per kill, each ended by the next append
    keys = [(r["point_id"], r["workload"]) for r in rows]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 8
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    # (multiprocessing's resource tracker, started by an earlier LocalCluster test, lives as long as pytest)
    left = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)]
    assert not [c for c in left if "multiprocessing.resource_tracker" not in c and "forkserver" not in c], left


@pytest.mark.parametrize(
    "kind, status, evidence",
    [
        ("segfault", "failed", "killed by SIGSEGV"),
        ("exit", "failed", "worker crashed:3"),
        ("raise", "failed", "injected fault before read"),
        ("hang", "timeout", "timeout of 15s"),
    ],
)
def test_crashes_and_hangs_become_rows_and_the_sweep_goes_on(
    kind: str, status: str, evidence: str, tiny_h5ad: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.measure.worker import INJECT_FAULT_ENV

    monkeypatch.setenv(INJECT_FAULT_ENV, f"{kind}:read")
    points = [Point.of(pipeline="python"), Point.of(pipeline="fused")]
    counts = run_sweep(_sweep(tiny_h5ad, tmp_path, points, workloads=("write", "read"), timeout=15))
    rows = {(r["point_id"], r["workload"]): r for r in results.iter_rows(results.results_file(tmp_path))}
    assert len(rows) == 4 and counts[status] == 2
    for point in points:  # the write before the fault was kept; the faulty read is recorded with its cause
        assert rows[(point.id, "write")]["status"] == "ok"
        read = rows[(point.id, "read")]
        assert read["status"] == status
        assert evidence in read.get("error", "") + read.get("stderr_tail", "")
        if kind == "segfault":  # faulthandler's report, not the list of loaded modules
            assert (
                "Fatal Python error: Segmentation fault" in read["stderr_tail"]
                and "inject_fault" in read["stderr_tail"]
            )


def test_loader_settings_are_part_of_every_loader_workload_key(tiny_h5ad: Path) -> None:
    """annbatch's loader too: a sweep at another run length or process count must not resume its rows."""
    from harness.runtime.loader import LoaderSpec

    point = Point.of(pipeline="fused")
    for workload in ("stream-blocks", "stream-random-rows", "stream-annbatch"):
        keys = {
            row_key(
                point,
                workload,
                "fp",
                Sweep(str(tiny_h5ad), [point], [workload], loader=LoaderSpec(run_rows=r), procs=p),
                "s",
            )
            for r in (64, 512)
            for p in (1, 2)
        }
        assert len(keys) == 4, workload


def test_loader_rows_carry_their_loader_settings(tiny_h5ad: Path, tmp_path: Path) -> None:
    """A loader row says its batch, runs, preload and processes (rows at another R are told apart); others do not."""
    from harness.runtime.loader import LoaderSpec

    point = Point.of(pipeline="fused", codec="blosc-lz4-shuffle", sharding="rows-16x2")
    spec = LoaderSpec(batch_size=32, run_rows=8, preload=4)
    sweep = Sweep(
        str(tiny_h5ad),
        [point],
        ["write", "stream-blocks"],
        repeats=1,
        warmup=0,
        results_dir=tmp_path,
        progress=False,
        loader=spec,
    )
    run_sweep(sweep)
    rows = {r["workload"]: r for r in results.iter_rows(tmp_path)}
    assert rows["stream-blocks"]["status"] == "ok"
    assert rows["stream-blocks"]["loader"] == {"batch_size": 32, "run_rows": 8, "preload": 4, "procs": 1}
    assert "loader" not in rows["write"]
