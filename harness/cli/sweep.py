"""`harness run`, `harness matrix`, `harness show`: measure a sweep, list what can run, print the table."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import matrix
from ..errors import HarnessError
from .common import DATASET_HELP, DEFAULT_DATASET, add_matrix_args, console, points, user_location


def workload_names(text: str) -> list[str]:
    from ..matrix import WORKLOADS

    names = [w.strip() for w in text.split(",") if w.strip()]
    if names == ["all"]:
        return list(WORKLOADS)
    for name in names:
        if name not in WORKLOADS:
            raise HarnessError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)}, or all")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    add_run(sub)
    mat = sub.add_parser("matrix", help="list points and whether each can run here, with reasons")
    add_matrix_args(mat)
    mat.set_defaults(func=cmd_matrix)
    show = sub.add_parser("show", help="print the results table")
    show.add_argument("--results", default="results")
    show.add_argument("--dataset", help="only this dataset name")
    show.set_defaults(func=cmd_show)


def add_run(sub: argparse._SubParsersAction) -> None:
    from ..matrix import DEFAULT_WORKLOADS

    run = sub.add_parser(
        "run",
        help="measure a sweep of points (default: a small sweep on the built-in dataset)",
        description="Measure points of the matrix plus the baselines, each in its own process, and print "
        "medians with their speedup against anndata-default.",
    )
    run.add_argument("--dataset", default=DEFAULT_DATASET, help=DATASET_HELP)
    add_matrix_args(run)
    run.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help="comma list, or all (write, read, lazy-open, "
        "lazy-rows, lazy-random, lazy-obs, lazy-gene, stream-sync|async|dask[-shuffled])",
    )
    run.add_argument("--repeats", type=int, default=5, help="timed repeats per workload (median and IQR are reported)")
    run.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per workload")
    run.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds before a point's process group is killed and recorded as timeout",
    )
    run.add_argument(
        "--results", default="results", help="results directory (append-only results.jsonl; re-running resumes)"
    )
    run.add_argument("--workdir", help="scratch directory for stores (default: a temporary directory)")
    run.add_argument("--warm", action="store_true", help="do not evict stores from the page cache before reads")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--network",
        help="condition added by the loopback servers' nginx, e.g. latency=20ms or "
        "latency=20ms,rate=1gbit (rate: per connection); recorded with every result",
    )
    run.add_argument(
        "--store",
        help="your own remote location for the s3-*/http-* points instead of the loopback server: "
        "s3://bucket/prefix (credentials and endpoint from AWS_* variables) or https://host/path "
        "(a server that serves --workdir at that URL; HTTP is read-only)",
    )
    run.add_argument(
        "--attribute",
        action="store_true",
        help="after the timed runs, one untimed instrumented run per "
        "workload: seconds in codec encode/decode, in the store, and the rest, with CPU use (see the report)",
    )
    add_loader_args(run)
    run.add_argument(
        "--stack",
        help="measure under other package versions, e.g. 'zarr==3.2.*,zarrs==0.2.1': a cached "
        "virtual environment with that stack runs the workers, and every row carries its stack",
    )
    run.add_argument("--cluster", help=CLUSTER_HELP)
    run.set_defaults(func=cmd_run)


CLUSTER_HELP = (
    "send the points to a dask.distributed cluster: local:N starts N single-threaded workers on 127.0.0.1; "
    "tcp://HOST:PORT joins a scheduler whose workers run with --resources point=1. Each point still runs in "
    "its own interpreter, one timed point per worker at a time; a point whose worker dies is re-run once"
)


def add_loader_args(p: argparse.ArgumentParser, procs: bool = True) -> None:
    p.add_argument(
        "--batch", type=int, default=4096, help="loader workloads: rows per batch (annbatch's benchmark: 4096)"
    )
    p.add_argument(
        "--run-rows",
        type=int,
        default=512,
        help="loader workloads: contiguous rows fetched together (annbatch's chunk_size, default 512)",
    )
    p.add_argument(
        "--preload",
        type=int,
        default=32,
        help="loader workloads: runs fetched and shuffled together (annbatch's preload_nchunks, default 32)",
    )
    if procs:
        p.add_argument("--procs", type=int, default=1, help="loader workloads: processes streaming one store at once")


def cmd_run(args: argparse.Namespace) -> int:
    from ..analysis import results, tables
    from ..measure.cluster import ClusterSpec
    from ..measure.network import Network
    from ..measure.runner import Sweep, run_sweep
    from ..measure.stacks import Stack
    from ..runtime.loader import LoaderSpec

    if args.repeats < 1:
        raise HarnessError("--repeats must be at least 1")
    if args.procs < 1:
        raise HarnessError("--procs must be at least 1")
    sweep = Sweep(
        dataset=args.dataset,
        points=points(args),
        workloads=workload_names(args.workloads),
        repeats=args.repeats,
        warmup=args.warmup,
        timeout=args.timeout,
        results_dir=Path(args.results),
        workdir=Path(args.workdir) if args.workdir else None,
        cold=not args.warm,
        progress=not args.no_progress,
        network=Network.parse(args.network),
        store_url=user_location(args.store),
        attribute=args.attribute,
        loader=LoaderSpec(batch_size=args.batch, run_rows=args.run_rows, preload=args.preload),
        procs=args.procs,
        stack=Stack.parse(args.stack) if args.stack else None,
        cluster=ClusterSpec.parse(args.cluster) if args.cluster else None,
    )
    counts = run_sweep(sweep)
    out = console()
    df = results.load(args.results)
    net = sweep.network.label
    df = df[
        df["point_raw"].isin({p.id for p in sweep.points}) & df["workload"].isin(sweep.workloads) & (df["net"] == net)
    ]
    out.print(tables.summary_table(df, sweep.workloads))
    for _, r in tables.problems(df).iterrows():
        out.print(f"[yellow]{r['status']}[/yellow] {r['point_id']} {r['workload']}: {r['error']}", soft_wrap=True)
    for warning in tables.unstable(df):
        out.print(f"[yellow]unstable[/yellow] {warning}", soft_wrap=True)
    out.print(f"statuses: {dict(counts)}; results in {results.results_file(args.results)}")
    return 1 if counts.get("failed") or counts.get("timeout") else 0


def cmd_matrix(args: argparse.Namespace) -> int:
    for point in points(args):
        status = matrix.static_status(point)
        print(f"{point.id}\t{status[0] + ': ' + status[1] if status else 'runnable'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ..analysis import results, tables

    df = results.load(args.results)
    if df.empty:
        raise HarnessError(f"no results in {args.results}; run `harness run` first")
    if args.dataset:
        df = df[df["dataset_name"] == args.dataset]
    rows = [
        r
        for r in results.iter_rows(args.results)
        if not args.dataset or (r.get("dataset") or {}).get("name") == args.dataset
    ]
    if ceilings := tables.ceiling_markdown(rows):
        print("\n".join(ceilings), end="\n\n")
    if "kind" in df:
        df = df[~df["kind"].isin(results.NOT_TIMINGS)]
    if not df.empty:
        console().print(tables.summary_table(df))
    return 0
