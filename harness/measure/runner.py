"""Runner: one fresh interpreter per point, timeouts that kill the whole process group,
durable rows after every point, resume by key, and a progress bar with ETA.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.results import Row
from ..errors import HarnessError
from ..matrix import LOADER_WORKLOADS, Point, static_status
from ..runtime import Location, Protocol, parse_location
from ..runtime.loader import LoaderSpec
from . import cluster, datasets, provenance, stacks
from .batch import run_batch
from .cluster import ClusterSpec, Job
from .network import Network, measured_latency_ms
from .requests import ACCESS_LOGS_ENV
from .rounds import CHECKPOINTS, Checkpoint, run_rounds
from .stacks import Stack


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
    network: Network = field(default_factory=Network)  # e.g. latency=20ms,rate=1gbit, applied by the loopback servers
    store_url: Location | None = None  # a user's s3:// or http(s):// location replacing the loopback server
    rounds: int = 0  # > 0: interleaved rounds (measure.rounds) instead of `repeats` per point in turn
    readers: list[str] = field(default_factory=list)  # cross-pipeline reads of each dispatched point's store
    attribute: bool = False  # one more, untimed, instrumented run per workload: where the time goes
    loader: LoaderSpec = field(default_factory=LoaderSpec)  # batch, runs and preload of the loader workloads
    procs: int = 1  # loader processes at once on one store
    stack: Stack | None = None  # another set of package versions: workers run in its environment (measure.stacks)
    cluster: ClusterSpec | None = None  # points sent to a dask.distributed cluster (measure.cluster)
    # compare the stores and reads with the source (in the first of interleaved rounds); False where an earlier
    # sweep checked the same stores (the verification's later rounds)
    check: bool = True
    # a read whose first run is shorter than this many seconds runs 3 to 5 times a round or repeat, its median run
    # taken (`timing.short_runs`); 0: one run
    least: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.store_url, str):
            self.store_url = parse_location(self.store_url)
        if not isinstance(self.network, Network):
            self.network = Network.parse(self.network)


def row_key(point: Point, workload: str, dataset_fp: str, sweep: Sweep, stack: str) -> str:
    """Identity of a measurement for resume: same point, workload, data, method, network, code and stack (`stack`
    is `provenance.stack_key`: the harness's commit and diff with the package versions)."""
    ident = [point.id, workload, dataset_fp, sweep.repeats, sweep.warmup, sweep.cold, sweep.seed, stack]
    if sweep.network.label != "none" or sweep.store_url:
        ident += [sweep.network.label, sweep.store_url.url if sweep.store_url else None]
    if sweep.rounds:
        ident += ["rounds", sweep.rounds]
    if sweep.least:
        ident += ["least", sweep.least]
    if workload in LOADER_WORKLOADS:  # what the loaders measure
        ident += [sweep.loader.sizes, sweep.procs]
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


def start_servers(
    points: list[Point],
    workdir: Path,
    stack: contextlib.ExitStack,
    network: Network | None = None,
    store_url: Location | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Start the loopback servers the points need (stopped when `stack` closes).

    Returns the workers' environment and the network record every row carries: the condition asked
    for and the round trip measured through it. A user's `store_url` replaces the server of its protocol.
    """
    from . import context, servers, storefiles

    network = network or Network()
    protocols = {p.config.store.protocol for p in points} - {Protocol.FILE}
    user_protocol = store_url.protocol if store_url else None
    if user_protocol and user_protocol not in protocols:
        raise HarnessError(
            f"--store {store_url.url} is not used by any point: add --axis store={user_protocol}-obstore or {user_protocol}-fsspec"
        )
    if user_protocol and (network.latency_ms or network.rate_bytes_per_s):
        raise HarnessError(
            "--network applies to the loopback servers the harness starts, not to --store URLs; drop one of them"
        )
    env: dict[str, str] = {}
    record: dict[str, Any] = {
        "condition": network.label,
        "latency_ms": network.latency_ms,
        "rate_bytes_per_s": network.rate_bytes_per_s,
    }
    logs: list[str] = []
    rtts: dict[str, float] = {}
    if store_url:
        storefiles.check_reachable(store_url)
    if user_protocol is Protocol.S3:
        env.update({context.S3_BUCKET_ENV: store_url.bucket, context.S3_PREFIX_ENV: store_url.prefix})
        record["s3"] = f"user store {store_url.url}"
    elif Protocol.S3 in protocols:
        s3 = stack.enter_context(servers.start_s3(network=network))
        env.update(s3.env, **{context.S3_BUCKET_ENV: servers.S3_BUCKET})
        logs.append(str(s3.access_log))
        rtts["s3"] = measured_latency_ms(s3.url + "/")
        record["s3"] = f"{s3.engine} behind nginx"
    if user_protocol is Protocol.HTTP:
        env.update({context.HTTP_ROOT_ENV: str(workdir.absolute()), context.HTTP_URL_ENV: store_url.url})
        record["http"] = f"user server {store_url.url} serving {workdir.absolute()}"
    elif Protocol.HTTP in protocols:
        http = stack.enter_context(servers.start_http(workdir, network=network))
        env.update({context.HTTP_ROOT_ENV: str(workdir.absolute()), context.HTTP_URL_ENV: http.url})
        logs.append(str(http.access_log))
        rtts["http"] = measured_latency_ms(http.url + "/")
    if logs:
        env[ACCESS_LOGS_ENV] = os.pathsep.join(logs)
    if rtts:
        record["measured_rtt_ms"] = {k: round(v, 2) for k, v in rtts.items()}
        short = {k: v for k, v in rtts.items() if v < 0.9 * network.latency_ms}
        if short:
            raise HarnessError(
                f"the added latency did not take effect: {network.latency_ms:g} ms asked, round trips measured {short} ms"
            )
    return env, record if protocols else {}


def _interleaved(
    sweep: Sweep,
    todo: list,
    dataset_path: Path,
    workdir: Path,
    env: dict[str, str],
    context,
    bar,
    python: Path | None = None,
) -> Counter[str]:
    """The sweep's points measured in interleaved rounds (measure.rounds); rows appended at the end, and every
    finished worker kept in a checkpoint until then (`checkpoint_path`), from which a killed sweep resumes."""
    runnable = [(p, keys) for p, _, keys in todo if not static_status(p)]
    rows = [
        Row(p.id, w, *static_status(p)).with_data(**context(p, w, keys))
        for p, _, keys in todo
        if static_status(p)
        for w in sweep.workloads
    ]
    checkpoint = Checkpoint.load(checkpoint_path(sweep, runnable))
    resumed = f" (resuming: {len(checkpoint.rows)} workers kept from an interrupted run)" if checkpoint.rows else ""
    task = bar.add_task(f"{len(runnable)} points x {sweep.rounds} interleaved rounds{resumed}", total=sweep.rounds)
    with cluster.connect(sweep.cluster) if sweep.cluster else contextlib.nullcontext() as client:
        got = run_rounds(
            [p for p, _ in runnable],
            dataset_path,
            sweep.workloads,
            rounds=sweep.rounds,
            workdir=workdir / "rounds",
            timeout=sweep.timeout,
            seed=sweep.seed,
            cold=sweep.cold,
            readers=sweep.readers,
            attribute=sweep.attribute,
            loader=sweep.loader.sizes,
            procs=sweep.procs,
            python=python,
            env=env,
            on_round=lambda _: bar.advance(task),
            client=client,
            checkpoint=checkpoint,
            check=sweep.check,
            least=sweep.least,
        )
    for point, keys in runnable:
        names = [*sweep.workloads, *(["interop"] if (point.id, "interop") in got else [])]
        keys = {**keys, "interop": keys.get("interop") or f"{keys[sweep.workloads[0]]}-interop"}
        rows += [got[(point.id, w)].with_data(**context(point, w, keys), rounds=sweep.rounds) for w in names]
    results.append(sweep.results_dir, rows)
    checkpoint.remove()
    return Counter(str(r.status) for r in rows)


def checkpoint_path(sweep: Sweep, runnable: list[tuple[Point, dict[str, str]]]) -> Path:
    """Where the interleaved rounds of these points keep their finished workers: named by the rows' keys (data,
    method, code and stack) and what else the workers do, so only the same measurement resumes from it."""
    ident = [sorted(keys.values()) for _, keys in runnable], sweep.readers, sweep.attribute
    digest = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16]
    return Path(sweep.results_dir) / CHECKPOINTS / f"{digest}.json"


def run_sweep(sweep: Sweep) -> Counter[str]:
    """Measure every (point, workload) not already measured; returns a count per status. Without a `workdir` the
    stores go to a temporary folder, removed however the sweep ends."""
    if sweep.workdir is not None:
        return _sweep(sweep, Path(sweep.workdir))
    with tempfile.TemporaryDirectory(prefix="harness-", ignore_cleanup_errors=True) as tmp:
        return _sweep(sweep, Path(tmp))


def _sweep(sweep: Sweep, workdir: Path) -> Counter[str]:
    dataset_path = datasets.resolve(sweep.dataset)
    dataset_fp = datasets.fingerprint(dataset_path)
    workdir.mkdir(parents=True, exist_ok=True)
    _check_disk(dataset_path, workdir)
    prov = provenance.collect(workdir)
    python = None
    if sweep.stack:
        python = stacks.ensure(sweep.stack)
        prov = {**prov, **stacks.packages(python), "stack": sweep.stack.label}
    stack = provenance.stack_key(prov)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    dataset_info = {"name": sweep.dataset, "path": str(dataset_path), "fingerprint": dataset_fp}
    counts: Counter[str] = Counter()

    remote_points = any(p.config.store.protocol is not Protocol.FILE for p in sweep.points)
    if sweep.cluster and not sweep.cluster.local and not sweep.store_url and remote_points:
        raise HarnessError(
            f"the loopback S3/HTTP servers are not reachable from the workers of {sweep.cluster.label}: "
            "pass --store with a location they can reach, or use --cluster local:N"
        )
    with results.locked(sweep.results_dir), contextlib.ExitStack() as running:
        env, network = start_servers(sweep.points, workdir, running, sweep.network, sweep.store_url)
        if env:  # never credentials: only where the servers are
            public = {
                k: v
                for k, v in env.items()
                if (k.startswith("HARNESS_") and k != ACCESS_LOGS_ENV) or k == "AWS_ENDPOINT_URL"
            }
            sweep.extra = {**sweep.extra, "servers": public, "network": network}
        done = results.done_keys(sweep.results_dir)
        todo = []
        for point in sweep.points:
            keys = {w: row_key(point, w, dataset_fp, sweep, stack) for w in sweep.workloads}
            pending = [w for w in sweep.workloads if keys[w] not in done]
            if sweep.readers and "write" in keys and point.api == "dispatched" and not static_status(point):
                keys["interop"] = f"{keys['write']}-interop"  # the cross-pipeline reads follow a write
                if keys["interop"] not in done and "write" not in pending:
                    pending.insert(0, "write")  # measured before without readers: write again, with them
            counts["resumed"] += len(sweep.workloads) - len(pending)
            if pending:
                todo.append((point, pending, keys))

        def context(point: Point, workload: str, keys: dict[str, str]) -> dict[str, Any]:
            return {
                "key": keys[workload],
                "run_id": run_id,
                "point": point.to_dict(),
                "dataset": dataset_info,
                "repeats_requested": sweep.repeats,
                "warmup": sweep.warmup,
                "stack_key": stack,
                "provenance": prov,
                **({"loader": {**sweep.loader.sizes, "procs": sweep.procs}} if workload in LOADER_WORKLOADS else {}),
                **sweep.extra,
            }

        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, disable=not sweep.progress, transient=False) as bar:
            if sweep.rounds:
                counts.update(_interleaved(sweep, todo, dataset_path, workdir, env, context, bar, python))
                todo = []
            task = bar.add_task("sweep", total=len(todo))

            def record(point: Point, pending: list[str], keys: dict[str, str], got: dict, **extra: Any) -> None:
                names = [*pending, *(["interop"] if (point.id, "interop") in got else [])]
                keys = {**keys, "interop": keys.get("interop") or f"{keys[pending[0]]}-interop"}
                rows = [got[(point.id, w)].with_data(**{**context(point, w, keys), **extra}) for w in names]
                results.append(sweep.results_dir, rows)
                counts.update(str(r.status) for r in rows)
                bar.advance(task)

            jobs = []
            for index, (point, pending, keys) in enumerate(todo):
                if static := static_status(point):
                    record(point, pending, keys, {(point.id, w): Row(point.id, w, *static) for w in pending})
                    continue
                batch = {
                    "repeats": sweep.repeats,
                    "warmup": sweep.warmup,
                    "workdir": workdir / f"point-{index:04d}",
                    "timeout": sweep.timeout,
                    "cold": sweep.cold,
                    "seed": sweep.seed,
                    "readers": sweep.readers,
                    "env": env,
                    "attribute": sweep.attribute,
                    "loader": sweep.loader.sizes,
                    "procs": sweep.procs,
                    "python": python,
                    "check": sweep.check,
                    "least": sweep.least,
                }
                jobs.append((Job(index, (point,), tuple(pending), dataset_path, batch), keys))
            if sweep.cluster and jobs:
                by_index = dict((job.index, keys) for job, keys in jobs)
                with cluster.connect(sweep.cluster) as client:
                    for job, got in cluster.dispatch(client, [job for job, _ in jobs]):
                        record(
                            job.points[0],
                            list(job.workloads),
                            by_index[job.index],
                            got.rows,
                            provenance=got.provenance or prov,
                            worker=got.worker,
                            cluster=sweep.cluster.label,
                        )
            for job, keys in [] if sweep.cluster else jobs:
                bar.update(task, description=f"[bold]{job.points[0].id}")
                got = run_batch(list(job.points), dataset_path, list(job.workloads), **job.batch)
                record(job.points[0], list(job.workloads), keys, got)
    return counts
