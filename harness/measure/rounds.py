"""Interleaved rounds: every point measured once per round, in a new random order each round.

Each round starts one fresh worker per group of points that can share a process (same event loop and
knob setting: both are fixed once zarr or zarrs has started), with the group's points in random order;
each point first gets an untimed warm-up of every workload on a slice of the data. Drift on the machine
(a noisy neighbour, the page cache, thermal state) then spreads over all points instead of looking
like an effect of whichever point ran last, and a point's values line up by round: value i of every
workload comes from round i, so a per-round objective can be compared between points with a test.

The whole store is compared with the source (the written store, the full read) in the first round only: the
later rounds write identical stores (the same data, codec chain and shapes) and read them the same way, and on 100k
those comparisons took about 4 s of every point's round. The written store is still read back, untimed
(`Write.settle`); the checks that depend on the round's seed (random rows, a loader's order) run every round.

Every finished worker's rows are saved at once in a checkpoint (`Checkpoint`), so a sweep killed in its fourth
round of five starts again at its fourth round, not its first.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.results import Row, Status
from ..matrix import Point
from .batch import run_batch
from .cluster import Job

#: Rows of the untimed warm-up slice (imports, first-call set-up): a fraction of a full warm-up run's cost.
WARMUP_ROWS = 500
#: The folder of a results directory where interleaved rounds keep their finished workers until the rows are in.
CHECKPOINTS = ".rounds"
#: Per-repeat fields that line up by round, concatenated when rounds are merged.
PER_RUN = ("values", "cpu_user", "cpu_sys", "runs")


def groups(points: Iterable[Point]) -> list[list[Point]]:
    """Points that can share one worker: same event loop and knob setting."""
    by: dict[tuple[str, str], list[Point]] = {}
    for point in points:
        by.setdefault((str(point.config.loop), point.config.knobs.name), []).append(point)
    return list(by.values())


def merge(into: Row | None, row: Row) -> Row:
    """One row from the rounds so far and this round's: values appended, the first failure kept."""
    if into is None or (into.ok and not row.ok):
        return row
    if not into.ok:
        return into
    data = {**into.data, **row.data}  # files, bytes and pipelines: this round's
    for key in PER_RUN:
        data[key] = [*into.data.get(key, []), *row.data.get(key, [])]
    if "checked" in into.data or "checked" in row.data:  # the content was checked in at least one round
        data["checked"] = bool(into.data.get("checked") or row.data.get("checked"))
    for key in ("requests", "metrics"):
        if key in into.data or key in row.data:
            old, new = into.data.get(key, {}), row.data.get(key, {})
            data[key] = {k: [*old.get(k, []), *new.get(k, [])] for k in {*old, *new}}
    data["peak_rss_mb"] = max(into.data.get("peak_rss_mb", 0.0), row.data.get("peak_rss_mb", 0.0))
    if "page_cache" in into.data and into.data["page_cache"] != row.data.get("page_cache"):
        data["page_cache"] = "warm"  # cold only when every round was
    return Row(into.point_id, into.workload, Status.OK, "", data)


@dataclass
class Checkpoint:
    """The rows of the workers of interleaved rounds that have finished, and their wall clock, saved after each
    one (written whole, then renamed into place): a killed sweep resumes from here and loses no finished worker."""

    path: Path
    rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by the worker's index in the run
    seconds: float = 0.0  # the finished workers' wall clock

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            saved = json.loads(Path(path).read_text())
            return cls(Path(path), {int(k): v for k, v in saved["rows"].items()}, float(saved["seconds"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none yet, or unreadable: start afresh
            return cls(Path(path))

    def done(self, index: int, rows: dict[tuple[str, str], Row], seconds: float) -> None:
        self.rows[index] = [row.to_json() for row in rows.values()]
        self.seconds += seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({"rows": self.rows, "seconds": self.seconds}, default=str))
        os.replace(partial, self.path)

    def finished(self, index: int) -> dict[tuple[str, str], Row] | None:
        if index not in self.rows:
            return None
        return {(r.point_id, r.workload): r for r in map(Row.from_json, self.rows[index])}

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def interrupted(results_dir: Path) -> float | None:
    """The wall clock kept in the checkpoints of a results directory (interleaved rounds that were stopped
    before their rows were in), or None when there are none."""
    kept = [Checkpoint.load(path) for path in sorted((Path(results_dir) / CHECKPOINTS).glob("*.json"))]
    return sum(c.seconds for c in kept) if kept else None


def run_rounds(
    points: list[Point],
    dataset_path: Path,
    workloads: list[str],
    *,
    rounds: int,
    workdir: Path,
    timeout: float,
    seed: int = 0,
    cold: bool = True,
    readers: list[str] | None = None,
    env: dict[str, str] | None = None,
    warmup_rows: int = WARMUP_ROWS,
    attribute: bool = False,
    loader: dict[str, Any] | None = None,
    procs: int = 1,
    python: Path | None = None,
    on_round: Callable[[int], None] | None = None,
    client: Any = None,
    checkpoint: Checkpoint | None = None,
    check: bool = True,
    least: float = 0.0,
) -> dict[tuple[str, str], Row]:
    """Measure every (point, workload) once per round for `rounds` rounds; {(point id, workload): merged row}.
    Cross-pipeline reads (`readers`) and the attribution run once, in the last round. With a dask.distributed
    `client` the rounds' workers run on the cluster (measure.cluster), one at a time per worker. The workers
    `checkpoint` already holds are not run again; each one that finishes is added to it. The whole store is
    compared with the source (`check`) in the first round only: the later rounds write and read identical stores.
    A read whose first run in a round is under `least` seconds runs 3 to 5 times, its median run the round's value
    (`timing.short_runs`). `timeout` is per point, as in a sweep of one worker per point: a worker measuring a group
    of n points in a round may take n times it (a 100k grid's round of 47 points in one worker took about 1,800 s,
    and at a timeout of 1,800 s for the whole worker the last points of a round were killed and lost every round)."""
    order = random.Random(seed)
    jobs: list[tuple[int, Job]] = []
    for index in range(rounds):
        batches = groups(points)
        order.shuffle(batches)
        for number, group in enumerate(batches):
            batch = {
                "repeats": 1,
                "warmup": 0,
                "warmup_rows": warmup_rows,
                "workdir": workdir / f"round-{index}-{number}",
                "timeout": timeout * len(group),
                "cold": cold,
                "seed": seed,
                "check": check and index == 0,
                "readers": readers if index == rounds - 1 else None,
                "attribute": attribute and index == rounds - 1,
                "loader": loader,
                "procs": procs,
                "python": python,
                "env": env,
                "least": least,
            }
            jobs.append(
                (index, Job(len(jobs), tuple(order.sample(group, len(group))), tuple(workloads), dataset_path, batch))
            )
    got: dict[int, dict[tuple[str, str], Row]] = {}
    for _, job in jobs:
        if checkpoint and (saved := checkpoint.finished(job.index)) is not None:
            got[job.index] = saved
    if client is not None:  # rounds on a cluster's workers, merged in round order below
        from .cluster import dispatch

        started = time.perf_counter()
        for job, measured in dispatch(client, [job for _, job in jobs if job.index not in got]):
            got[job.index] = measured.rows
            if checkpoint:
                checkpoint.done(job.index, measured.rows, time.perf_counter() - started)
                started = time.perf_counter()
    merged: dict[tuple[str, str], Row] = {}
    for number, (index, job) in enumerate(jobs):
        rows = got.get(job.index)
        if rows is None:
            started = time.perf_counter()
            rows = run_batch(list(job.points), dataset_path, list(workloads), **job.batch)
            if checkpoint:
                checkpoint.done(job.index, rows, time.perf_counter() - started)
        for key, row in rows.items():
            merged[key] = merge(merged.get(key), row)
        if on_round and (number == len(jobs) - 1 or jobs[number + 1][0] != index):
            on_round(index)
    return merged
