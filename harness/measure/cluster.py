"""Sweeps on dask.distributed: each point sent to a cluster's worker, measured there in a fresh interpreter.

`--cluster local:N` starts a LocalCluster of N single-threaded worker processes on 127.0.0.1;
`--cluster tcp://host:8786` joins a running scheduler (start its workers with `--resources point=1`, the
same harness and stack, and the dataset at the same path). Every task asks for the worker resource
`point=1`, so a worker measures at most one point at a time and points do not disturb each other's
timings. The scheduler re-runs a point whose worker died once (`distributed.scheduler.allowed-failures`
= 1); a second loss becomes a failed row with the cause, so every (point, workload) gets exactly one row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..analysis.results import Row, Status
from ..errors import HarnessError
from ..matrix import Point
from . import provenance

RESOURCE = "point"  # the worker resource a timed point holds: one per worker
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MISSING = "--cluster needs dask.distributed: pip install 'harness[bench]' (or pip install distributed)"


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed `--cluster`: a local cluster of `workers` processes, or a scheduler's address."""

    address: str = ""
    workers: int = 0

    @classmethod
    def parse(cls, text: str) -> ClusterSpec:
        text = text.strip()
        if text.startswith("local:"):
            count = text.removeprefix("local:")
            if not count.isdigit() or int(count) < 1:
                raise HarnessError(f"--cluster {text!r}: local:N needs a number of workers >= 1, e.g. local:2")
            return cls(workers=int(count))
        address = text if "://" in text else f"tcp://{text}"
        parts = urlsplit(address)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            raise HarnessError(
                f"--cluster {text!r} is neither local:N nor a scheduler address such as tcp://10.0.0.5:8786"
            )
        return cls(address=address)

    @property
    def local(self) -> bool:
        """Workers on this machine: the loopback servers the harness starts are reachable from them."""
        return bool(self.workers) or urlsplit(self.address).hostname in LOOPBACK

    @property
    def label(self) -> str:
        return f"local:{self.workers}" if self.workers else self.address


def shares_cores(spec: ClusterSpec) -> str:
    """Why `local:N` is for throughput, not timings: its points share this machine's cores with each other
    (N > 1) and with the cluster's own processes."""
    at_once = f"{spec.workers} at a time " if spec.workers > 1 else ""
    return (
        f"--cluster {spec.label}: points run {at_once}on this machine's {os.cpu_count()} cores, beside the cluster's "
        "scheduler, nannies and workers, which disturbs their timings: use local:N for throughput, and workers on "
        "other machines where the timings matter (README: On a dask.distributed cluster)"
    )


@contextlib.contextmanager
def _environ_kept() -> Iterator[Callable[[], None]]:
    """A Nanny writes `distributed.nanny.pre-spawn-environ` (MALLOC_TRIM_THRESHOLD_, OMP_NUM_THREADS=1, ...) into
    the `os.environ` of the process it runs in, which for a LocalCluster is the harness's own: they would stay
    there, in every interpreter it starts later. The environment is restored once the workers have started
    (call the function yielded) and again when the cluster closes."""
    saved = dict(os.environ)

    def restore() -> None:
        os.environ.clear()
        os.environ.update(saved)

    try:
        yield restore
    finally:
        restore()


_ACTIVE: dict[ClusterSpec, Any] = {}  # clients connected by an enclosing `connect` (e.g. a whole tune)


@contextlib.contextmanager
def connect(spec: ClusterSpec, *, timed: bool = True) -> Iterator[Any]:
    """A dask.distributed Client for `spec` (the LocalCluster it starts is closed on exit); inside another
    `connect` of the same spec, that one's client. `timed`: the tasks are timed points, so the workers
    must offer the resource that keeps them one per worker."""
    if spec in _ACTIVE:
        yield _ACTIVE[spec]
        return
    with _connect(spec, timed) as client:
        _ACTIVE[spec] = client
        try:
            yield client
        finally:
            _ACTIVE.pop(spec, None)


@contextlib.contextmanager
def _connect(spec: ClusterSpec, timed: bool) -> Iterator[Any]:
    try:
        import dask
        import distributed
    except ImportError:
        raise HarnessError(MISSING) from None
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        if spec.workers:
            if timed:
                warnings.warn(shares_cores(spec), stacklevel=4)
            with (
                _environ_kept() as restore,
                distributed.LocalCluster(
                    n_workers=spec.workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    resources={RESOURCE: 1},
                    silence_logs=logging.ERROR,
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                restore()
                yield client
            return
        try:
            client = distributed.Client(spec.address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise HarnessError(
                f"cannot reach the dask scheduler at {spec.address} ({type(exc).__name__}): start it "
                "(dask scheduler; dask worker ADDRESS --resources point=1) or use --cluster local:2"
            ) from None
        with client:
            workers = client.scheduler_info().get("workers", {})
            if timed and not any((w.get("resources") or {}).get(RESOURCE) for w in workers.values()):
                raise HarnessError(
                    f"no worker of {spec.address} offers the resource {RESOURCE!r}: start the workers with "
                    f"`dask worker {spec.address} --nthreads 1 --resources {RESOURCE}=1`"
                )
            yield client


@dataclass(frozen=True)
class Job:
    """Points measured together in one fresh worker (a sweep: one point; a round: a group) and how
    (`batch.run_batch`'s keyword arguments)."""

    index: int
    points: tuple[Point, ...]
    workloads: tuple[str, ...]
    dataset: Path
    batch: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measured:
    rows: dict[tuple[str, str], Row]
    provenance: dict[str, Any]
    worker: str


def nanny_environ() -> tuple[str, ...]:
    """The variables a dask Nanny sets in its worker's environment (`distributed.nanny.pre-spawn-environ` and
    `.environ`: MALLOC_TRIM_THRESHOLD_=65536, OMP/MKL/OPENBLAS_NUM_THREADS=1 by default). A point's interpreter
    must get the environment it gets locally: with these four set, one point of the default sweep on 10k
    measured lazy-random 1.35x, lazy-rows 1.15x and write 1.07x slower (p <= 0.032)."""
    import dask

    keys = {
        **dask.config.get("distributed.nanny.pre-spawn-environ", {}),
        **dask.config.get("distributed.nanny.environ", {}),
    }
    return tuple(sorted(keys))


def measure_on_worker(job: Job) -> Measured:
    """Runs on a worker: the point in a fresh interpreter (without the Nanny's environment), with this
    machine's provenance."""
    from distributed import get_worker

    from .batch import run_batch

    unset = tuple(k for k in nanny_environ() if k not in (job.batch.get("env") or {}))
    rows = run_batch(list(job.points), job.dataset, list(job.workloads), **job.batch, unset_env=unset)
    return Measured(rows, provenance.collect(Path(job.batch["workdir"]).parent), get_worker().address)


def lost(job: Job, exc: BaseException) -> Measured:
    """The rows of points the cluster could not measure: failed, with the cause."""
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        cause = "its worker died twice while measuring it (re-run once, then given up): see the workers' logs"
    else:
        cause = f"the cluster could not run it: {type(exc).__name__}: {exc}"
    rows = {(p.id, w): Row(p.id, w, Status.FAILED, cause) for p in job.points for w in job.workloads}
    return Measured(rows, {}, "")


def dispatch(
    client: Any, jobs: list[Job], task: Callable[[Job], Measured] = measure_on_worker
) -> Iterator[tuple[Job, Measured]]:
    """Every job's rows, in the order they finish; each job exactly once, a lost one as failed rows."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = {
        client.submit(task, job, resources={RESOURCE: 1}, pure=False, key=f"point-{run}-{job.index:05d}"): job
        for job in jobs
    }
    for future in as_completed(futures):
        job = futures[future]
        try:
            yield job, future.result()
        except Exception as exc:  # noqa: BLE001 - every failure of a remote task becomes the point's rows
            yield job, lost(job, exc)
        finally:
            future.release()
