"""Runner: one fresh interpreter per point, timeouts that kill the whole process group,
durable rows after every point, resume by key, and a progress bar with ETA.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import datasets, pipelines, provenance, results
from .errors import HarnessError
from .matrix import Point, invalid_reason, static_unsupported_reason
from .worker import WorkerSpec

STDERR_TAIL = 2000


@dataclass
class Sweep:
    """A sweep request: which points, on which dataset, measured how."""

    dataset: str
    points: list[Point]
    workloads: list[str]
    repeats: int = 5
    warmup: int = 1
    timeout: float = 900.0
    results_dir: Path = Path("results")
    workdir: Path | None = None
    cold: bool = True
    seed: int = 0
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def row_key(point: Point, workload: str, dataset_fp: str, sweep: Sweep, stack: str) -> str:
    """Identity of a measurement for resume: same point, workload, data, method, code and stack."""
    ident = [point.id, workload, dataset_fp, sweep.repeats, sweep.warmup, sweep.cold, sweep.seed, stack]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:20]


def _check_disk(dataset_path: Path, workdir: Path) -> None:
    need = datasets_size(dataset_path) * 3
    free = shutil.disk_usage(workdir).free
    if need > free:
        raise HarnessError(
            f"dataset {dataset_path} needs about {need / 2**30:.1f} GiB of scratch space but {workdir} "
            f"has {free / 2**30:.1f} GiB free; pass --workdir on a larger disk or a smaller --dataset"
        )


def datasets_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def static_status(point: Point) -> tuple[str, str] | None:
    if reason := invalid_reason(point):
        return "invalid", reason
    if reason := static_unsupported_reason(point):
        return "unsupported", reason
    if point.api != "h5ad" and (reason := pipelines.unsupported_reason(point.pipeline, point.loop)):
        return "unsupported", reason
    return None


def _run_worker(spec: WorkerSpec, timeout: float, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Run one worker; returns (outcome, stderr tail). outcome: ok | timeout | crashed:<rc>."""
    spec_path = Path(spec.workdir) / "spec.json"
    Path(spec.workdir).mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(asdict(spec)))
    err_path = Path(spec.workdir) / "stderr.log"
    env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.worker", str(spec_path)],
            stdout=err, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
        try:
            rc = proc.wait(timeout=timeout)
            outcome = "ok" if rc == 0 else f"crashed:{rc}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            outcome = "timeout"
        except BaseException:  # Ctrl-C: never leave a worker (or its children) behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    tail = err_path.read_text(errors="replace")[-STDERR_TAIL:] if err_path.exists() else ""
    return outcome, tail


def run_batch(points: list[Point], dataset_path: Path, workloads: list[str], *, repeats: int, warmup: int,
              workdir: Path, timeout: float, cold: bool = True, seed: int = 0,
              readers: list[str] | None = None, env: dict[str, str] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Measure `points` in one fresh worker; returns {(point id, workload): row fields}.

    Workloads the worker never reported become `timeout` or `failed` rows with its stderr tail, so
    every requested (point, workload) gets exactly one answer.
    """
    spec = WorkerSpec(points=[p.to_dict() for p in points], dataset=str(dataset_path), workloads=list(workloads),
                      repeats=repeats, warmup=warmup, workdir=str(workdir), out=str(Path(workdir) / "rows.jsonl"),
                      cold=cold, seed=seed, readers=list(readers or []))
    outcome, tail = _run_worker(spec, timeout, env)
    got = {(r["point_id"], r["workload"]): r for r in results.iter_rows_any(Path(spec.out))}
    expected = [*workloads, *(["interop"] if readers else [])]
    for point in points:
        for w in expected:
            if (point.id, w) in got or (w == "interop" and point.api != "dispatched"):
                continue
            if outcome == "timeout":
                got[(point.id, w)] = {"status": "timeout", "stderr_tail": tail,
                                      "error": f"point exceeded the timeout of {timeout:g}s and was killed"}
            else:
                got[(point.id, w)] = {"status": "failed", "error": f"worker {outcome}; see stderr_tail", "stderr_tail": tail}
    shutil.rmtree(workdir, ignore_errors=True)
    return got


def _start_servers(points: list[Point], workdir: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    """Start the loopback servers the points need (stopped when `stack` closes); their worker env."""
    from . import servers, stores, workloads

    protocols = {stores.protocol_of(p.store) for p in points}
    env: dict[str, str] = {}
    if "s3" in protocols:
        s3 = stack.enter_context(servers.start_s3())
        env.update(s3.env, **{workloads.S3_BUCKET_ENV: servers.S3_BUCKET})
    if "http" in protocols:
        http = stack.enter_context(servers.start_http(workdir))
        env.update({workloads.HTTP_ROOT_ENV: str(workdir.absolute()), workloads.HTTP_URL_ENV: http.url})
    return env


def run_sweep(sweep: Sweep) -> Counter[str]:
    """Measure every (point, workload) not already measured; returns a count per status."""
    dataset_path = datasets.resolve(sweep.dataset)
    dataset_fp = datasets.fingerprint(dataset_path)
    own_workdir = sweep.workdir is None
    workdir = Path(sweep.workdir or tempfile.mkdtemp(prefix="harness-"))
    workdir.mkdir(parents=True, exist_ok=True)
    _check_disk(dataset_path, workdir)
    prov = provenance.collect(workdir)
    stack = provenance.stack_key(prov)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    dataset_info = {"name": sweep.dataset, "path": str(dataset_path), "fingerprint": dataset_fp}
    counts: Counter[str] = Counter()

    with results.locked(sweep.results_dir), contextlib.ExitStack() as running:
        env = _start_servers(sweep.points, workdir, running)
        if env:
            sweep.extra = {**sweep.extra, "servers": {k: v for k, v in env.items() if k.startswith("HARNESS_") or k == "AWS_ENDPOINT_URL"}}
        done = results.done_keys(sweep.results_dir)
        todo = []
        for point in sweep.points:
            keys = {w: row_key(point, w, dataset_fp, sweep, stack) for w in sweep.workloads}
            pending = [w for w in sweep.workloads if keys[w] not in done]
            counts["resumed"] += len(sweep.workloads) - len(pending)
            if pending:
                todo.append((point, pending, keys))

        def base_row(point: Point, workload: str, keys: dict[str, str]) -> dict[str, Any]:
            return {
                "key": keys[workload], "run_id": run_id, "point_id": point.id, "point": point.to_dict(),
                "workload": workload, "dataset": dataset_info, "repeats_requested": sweep.repeats,
                "warmup": sweep.warmup, "stack_key": stack, "provenance": prov, **sweep.extra,
            }

        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), TimeRemainingColumn()]
        with Progress(*columns, disable=not sweep.progress, transient=False) as bar:
            task = bar.add_task("sweep", total=len(todo))
            for index, (point, pending, keys) in enumerate(todo):
                bar.update(task, description=f"[bold]{point.id}")
                static = static_status(point)
                if static:
                    status, reason = static
                    rows = [{**base_row(point, w, keys), "status": status, "error": reason} for w in pending]
                else:
                    got = run_batch([point], dataset_path, pending, repeats=sweep.repeats, warmup=sweep.warmup,
                                    workdir=workdir / f"point-{index:04d}", timeout=sweep.timeout,
                                    cold=sweep.cold, seed=sweep.seed, env=env)
                    rows = [{**base_row(point, w, keys), **got[(point.id, w)]} for w in pending]
                results.append(sweep.results_dir, rows)
                counts.update(r["status"] for r in rows)
                bar.advance(task)
    if own_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return counts
