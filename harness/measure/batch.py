"""One fresh worker interpreter measuring a batch of points: its timeout kills the whole process group,
and every requested (point, workload) gets exactly one row, also when the worker crashed or hung."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.results import Row, Status
from ..matrix import Point
from .lifecycle import die_with_parent
from .worker import WorkerSpec

STDERR_TAIL = 2000


def _run_worker(
    spec: WorkerSpec,
    timeout: float,
    env: dict[str, str] | None = None,
    meta: Path | None = None,
    python: Path | None = None,
    unset: tuple[str, ...] = (),
) -> tuple[str, str]:
    """Run one worker; returns (outcome, stderr tail). outcome: ok | timeout | crashed:<rc> | killed by <SIGNAL>.
    `unset`: variables of this process's environment the worker must not inherit."""
    meta = meta or Path(spec.workdir)
    spec_path = meta / "spec.json"
    Path(spec.workdir).mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(asdict(spec)))
    err_path = meta / "stderr.log"
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset} | {"PYTHONUNBUFFERED": "1"}
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [str(python or sys.executable), "-m", "harness.measure.worker", str(spec_path)],
            stdout=err,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            preexec_fn=die_with_parent(signal.SIGKILL),  # never outlives a runner killed with SIGKILL
        )
        try:
            rc = proc.wait(timeout=timeout)
            outcome = "ok" if rc == 0 else f"crashed:{rc}" if rc > 0 else f"killed by {signal.Signals(-rc).name}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            outcome = "timeout"
        except BaseException:  # Ctrl-C: never leave a worker (or its children) behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    text = err_path.read_text(errors="replace") if err_path.exists() else ""
    fatal = text.find("Fatal Python error")  # faulthandler's report: keep where it crashed, not the module list
    current = text.find("Current thread", fatal) if fatal >= 0 else -1  # the thread that crashed
    if current >= 0:
        tail = text[fatal : text.find("\n", fatal)] + "\n" + text[current : current + STDERR_TAIL]
    else:
        tail = text[fatal : fatal + STDERR_TAIL] if fatal >= 0 else text[-STDERR_TAIL:]
    return outcome, tail


def run_batch(
    points: list[Point],
    dataset_path: Path,
    workloads: list[str],
    *,
    repeats: int,
    warmup: int,
    workdir: Path,
    timeout: float,
    cold: bool = True,
    seed: int = 0,
    readers: list[str] | None = None,
    env: dict[str, str] | None = None,
    warmup_rows: int = 0,
    attribute: bool = False,
    loader: dict[str, Any] | None = None,
    procs: int = 1,
    python: Path | None = None,
    unset_env: tuple[str, ...] = (),
    check: bool = True,
    least: float = 0.0,
) -> dict[tuple[str, str], Row]:
    """Measure `points` in one fresh worker; returns {(point id, workload): row}.

    Workloads the worker never reported become `timeout` or `failed` rows with its stderr tail, so
    every requested (point, workload) gets exactly one answer.
    """
    shutil.rmtree(workdir, ignore_errors=True)  # a point interrupted by a kill re-runs on a clean path
    # the worker's spec, rows and stderr live apart from the stores: a full store disk must not lose them
    meta = Path(tempfile.mkdtemp(prefix="harness-worker-"))
    spec = WorkerSpec(
        points=[p.to_dict() for p in points],
        dataset=str(dataset_path),
        workloads=list(workloads),
        repeats=repeats,
        warmup=warmup,
        workdir=str(workdir),
        out=str(meta / "rows.jsonl"),
        cold=cold,
        seed=seed,
        readers=list(readers or []),
        warmup_rows=warmup_rows,
        attribute=attribute,
        loader=dict(loader or {}),
        procs=procs,
        check=check,
        least=least,
    )
    try:
        outcome, tail = _run_worker(spec, timeout, env, meta, python, unset_env)
        got = {(r.point_id, r.workload): r for r in map(Row.from_json, results.iter_lines(Path(spec.out)))}
    finally:
        shutil.rmtree(meta, ignore_errors=True)
    expected = [*workloads, *(["interop"] if readers else [])]
    for point in points:
        for w in expected:
            if (point.id, w) in got or (w == "interop" and point.api != "dispatched"):
                continue
            if outcome == "timeout":
                got[(point.id, w)] = Row(
                    point.id,
                    w,
                    Status.TIMEOUT,
                    f"point exceeded the timeout of {timeout:g}s and was killed"
                    if len(points) == 1
                    else f"its worker ({len(points)} points, {timeout / len(points):g}s each) was killed after "
                    f"{timeout:g}s, before this point finished",
                    {"stderr_tail": tail},
                )
            else:
                got[(point.id, w)] = Row(
                    point.id, w, Status.FAILED, f"worker {outcome}; see stderr_tail", {"stderr_tail": tail}
                )
    shutil.rmtree(workdir, ignore_errors=True)
    return got
