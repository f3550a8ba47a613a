"""--cluster: points measured on a dask.distributed LocalCluster of 2 workers on 127.0.0.1, rows as they
arrive with each worker's provenance; a worker lost mid-point re-runs it once, then gives a failed row."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from harness import cli
from harness.analysis import results
from harness.analysis.results import Row, Status
from harness.errors import HarnessError
from harness.matrix import Point
from harness.measure import cluster
from harness.measure.cluster import ClusterSpec, Job
from harness.measure.runner import Sweep, run_sweep

pytest.importorskip("distributed", reason="dask.distributed is not installed (the bench extra)")


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("local:2", ClusterSpec(workers=2)),
        ("tcp://10.0.0.5:8786", ClusterSpec(address="tcp://10.0.0.5:8786")),
        ("10.0.0.5:8786", ClusterSpec(address="tcp://10.0.0.5:8786")),
    ],
)
def test_parse(text: str, spec: ClusterSpec) -> None:
    assert ClusterSpec.parse(text) == spec
    assert ClusterSpec.parse(text).local == (text == "local:2")


@pytest.mark.parametrize("text", ["local:0", "local:two", "scheduler", "tcp://host"])
def test_parse_errors(text: str) -> None:
    with pytest.raises(HarnessError, match="--cluster"):
        ClusterSpec.parse(text)


def _error(capsys, argv: list[str]) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error: ")
    return err[0]


def test_unreachable_scheduler_is_one_line(capsys, tiny_h5ad: Path, tmp_path: Path) -> None:
    argv = ["run", "--dataset", str(tiny_h5ad), "--results", str(tmp_path), "--workloads", "write"]
    err = _error(capsys, [*argv, "--repeats", "1", "--no-progress", "--cluster", "tcp://127.0.0.1:9"])
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:9" in err
    assert not list(results.iter_rows(tmp_path))  # nothing half-written


def test_remote_cluster_cannot_reach_loopback_servers(capsys, tiny_h5ad: Path, tmp_path: Path) -> None:
    argv = ["run", "--dataset", str(tiny_h5ad), "--results", str(tmp_path), "--axis", "store=s3-obstore"]
    err = _error(capsys, [*argv, "--no-progress", "--cluster", "tcp://10.0.0.5:8786"])
    assert "not reachable from the workers" in err and "--store" in err


def _tiny_sweep(tiny_h5ad: Path, tmp_path: Path, points: list[Point], *, repeats: int, workers: int) -> Sweep:
    """Write and read of `points` on tiny, on a LocalCluster of `workers`."""
    return Sweep(
        dataset=str(tiny_h5ad),
        points=points,
        workloads=["write", "read"],
        repeats=repeats,
        warmup=0,
        results_dir=tmp_path,
        progress=False,
        timeout=300,
        cluster=ClusterSpec(workers=workers),
    )


def test_sweep_on_a_local_cluster_of_two(tiny_h5ad: Path, tmp_path: Path) -> None:
    points = [Point.of(pipeline=p, sharding="rows-1024x16") for p in ("python", "fused", "zarrs")]
    sweep = _tiny_sweep(tiny_h5ad, tmp_path, points, repeats=2, workers=2)
    with pytest.warns(UserWarning, match="points run 2 at a time .* disturbs their timings"):  # one machine
        counts = run_sweep(sweep)
    assert counts["ok"] == 6
    rows = list(results.iter_rows(tmp_path))
    assert Counter((r["point_id"], r["workload"]) for r in rows) == {
        (p.id, w): 1 for p in points for w in sweep.workloads
    }
    assert all(r["worker"].startswith("tcp://127.0.0.1:") and r["cluster"] == "local:2" for r in rows)
    assert all(r["provenance"]["hostname"] and len(r["values"]) == 2 for r in rows)
    # resume works as locally: nothing is measured twice
    assert run_sweep(sweep)["resumed"] == 6 and len(list(results.iter_rows(tmp_path))) == 6


def test_a_point_does_not_inherit_the_nannys_environment(tiny_h5ad: Path, tmp_path: Path) -> None:
    """A Nanny sets variables in its worker's environment (MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS=1, ...) that
    slow a point down; here it also sets the fault injection, so a point that inherited it would fail."""
    import dask

    from harness.measure.worker import INJECT_FAULT_ENV

    nanny = {**dask.config.get("distributed.nanny.pre-spawn-environ"), INJECT_FAULT_ENV: "raise:read"}
    sweep = _tiny_sweep(tiny_h5ad, tmp_path, [Point.of(pipeline="fused")], repeats=1, workers=1)
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": nanny}),
        cluster.connect(ClusterSpec(workers=1)) as client,
    ):
        assert set(client.run(os.getenv, INJECT_FAULT_ENV).values()) == {"raise:read"}  # the worker has it
        assert INJECT_FAULT_ENV not in os.environ  # the Nanny wrote it into this process's environment too
        counts = run_sweep(sweep)
    assert counts["ok"] == 2, [r.get("error") for r in results.iter_rows(tmp_path)]
    assert INJECT_FAULT_ENV not in os.environ


def _jobs(tmp_path: Path, n: int) -> list[Job]:
    return [
        Job(i, (Point.of(pipeline="fused"),), ("write",), tmp_path, {"workdir": tmp_path / str(i)}) for i in range(n)
    ]


def test_a_lost_worker_reruns_the_point_once_then_fails_it(tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"

    def dies_once(job: Job) -> cluster.Measured:
        if job.index == 0 and not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-point
        return cluster.Measured({(job.points[0].id, "write"): Row(job.points[0].id, "write")}, {}, "worker")

    def always_dies(job: Job) -> cluster.Measured:
        os._exit(1)

    with cluster.connect(ClusterSpec(workers=2)) as client:
        got = list(cluster.dispatch(client, _jobs(tmp_path, 3), task=dies_once))
        assert marker.exists() and sorted(j.index for j, _ in got) == [0, 1, 2]  # each exactly once
        assert all(m.rows[(j.points[0].id, "write")].status is Status.OK for j, m in got)

        [(job, lost)] = list(cluster.dispatch(client, _jobs(tmp_path, 1), task=always_dies))
        row = lost.rows[(job.points[0].id, "write")]
        assert row.status is Status.FAILED and "died twice" in row.error
