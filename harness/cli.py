"""Command line: `harness run | matrix | show | datasets`.

Errors the user can fix print as one line, `harness: error: ...`, with exit code 2; `--debug`
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import matrix
from .workloads import DEFAULT_WORKLOADS
from .errors import HarnessError

DEFAULT_DATASET = "pbmc68k"


def _points(args: argparse.Namespace) -> list[matrix.Point]:
    axes = matrix.parse_axes(args.axis or [])
    points = matrix.expand(axes)
    baselines = [] if args.baselines == "none" else [b.strip() for b in args.baselines.split(",") if b.strip()]
    for name in baselines:
        matrix.baseline_point(name)  # unknown names fail here, clearly
    return matrix.baselines_for(baselines, points) + points


def _workloads(text: str) -> list[str]:
    from .workloads import WORKLOADS

    names = [w.strip() for w in text.split(",") if w.strip()]
    if names == ["all"]:
        return list(WORKLOADS)
    for name in names:
        if name not in WORKLOADS:
            raise HarnessError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)}, or all")
    return names


def _add_matrix_args(p: argparse.ArgumentParser) -> None:
    axes_help = "; ".join(f"{k}: {v}" for k, v in matrix.AXES.items())
    p.add_argument("--axis", action="append", metavar="NAME=V1,V2",
                   help=f"sweep these values of an axis (repeatable; others keep the default sweep). {axes_help}")
    p.add_argument("--baselines", default=",".join(matrix.BASELINES),
                   help="comma list of baselines measured beside the matrix, or 'none' (default: all)")


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 220)


def cmd_run(args: argparse.Namespace) -> int:
    from . import report, results
    from .runner import Sweep, run_sweep

    sweep = Sweep(dataset=args.dataset, points=_points(args), workloads=_workloads(args.workloads),
                  repeats=args.repeats, warmup=args.warmup, timeout=args.timeout,
                  results_dir=Path(args.results), workdir=Path(args.workdir) if args.workdir else None,
                  cold=not args.warm, progress=not args.no_progress, network=args.network or "", store_url=args.store)
    if sweep.repeats < 1:
        raise HarnessError("--repeats must be at least 1")
    counts = run_sweep(sweep)
    console = _console()
    df = results.load(args.results)
    from .servers import Network

    net = Network.parse(sweep.network).label
    df = df[df["point_raw"].isin({p.id for p in sweep.points}) & df["workload"].isin(sweep.workloads) & (df["net"] == net)]
    console.print(report.summary_table(df, sweep.workloads))
    bad = report.problems(df)
    for _, r in bad.iterrows():
        console.print(f"[yellow]{r['status']}[/yellow] {r['point_id']} {r['workload']}: {r['error']}", soft_wrap=True)
    for warning in report.unstable(df):
        console.print(f"[yellow]unstable[/yellow] {warning}", soft_wrap=True)
    console.print(f"statuses: {dict(counts)}; results in {results.results_path(Path(args.results))}")
    return 1 if counts.get("failed") or counts.get("timeout") else 0


def cmd_matrix(args: argparse.Namespace) -> int:
    from .runner import static_status

    for point in _points(args):
        status = static_status(point)
        print(f"{point.id}\t{status[0] + ': ' + status[1] if status else 'runnable'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from . import report, results

    df = results.load(args.results)
    if df.empty:
        raise HarnessError(f"no results in {args.results}; run `harness run` first")
    if args.dataset:
        df = df[df["dataset_name"] == args.dataset]
    _console().print(report.summary_table(df))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from . import report

    recommended = args.recommended
    if recommended and Path(recommended).is_file():
        recommended = json.loads(Path(recommended).read_text()).get("point_id")
    out = Path(args.out) if args.out else Path("reports") / args.name
    md = report.build(Path(args.results), out, recommended=recommended)
    print(f"report: {md}\nhtml:   {out / 'index.html'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .compare import compare

    rows, warnings = compare(Path(args.a), Path(args.b), force=args.force, alpha=args.alpha)
    console = _console()
    for w in warnings:
        console.print(f"[bold yellow]{w}[/bold yellow]")
    table = Table(title=f"B vs A: median seconds, ratio B/A (<1: B faster), Mann-Whitney p (alpha {args.alpha})")
    for col in ("point", "workload", "A", "B", "B/A", "p", "verdict"):
        table.add_column(col, justify="left" if col in ("point", "workload", "verdict") else "right")
    for c in rows:
        table.add_row(c.point_id, c.workload, f"{c.a:.3f}", f"{c.b:.3f}", f"{c.ratio:.2f}",
                      "" if c.p_value is None else f"{c.p_value:.3f}", c.verdict)
    console.print(table)
    return 0


def cmd_effects(args: argparse.Namespace) -> int:
    from rich.table import Table

    from . import results
    from .compare import axis_effects

    df = results.load(args.results)
    if df.empty:
        raise HarnessError(f"no results in {args.results}; run `harness run` first")
    found = [e for e in axis_effects(df, alpha=args.alpha) if not args.workload or e.workload in args.workload.split(",")]
    if not found:
        print("no pairs of points that differ in one axis only (fsspec/obstore, asyncio/uvloop, consolidated off/on, pipelines)")
        return 0
    table = Table(title=f"effect of one axis, same run: B/A < 1 means B is faster; Mann-Whitney p (alpha {args.alpha})")
    for col in ("effect", "workload", "other axes (network)", "A s", "B s", "B/A", "p", "verdict"):
        table.add_column(col, justify="right" if col in ("A s", "B s", "B/A", "p") else "left")
    for e in found:
        table.add_row(e.axis, e.workload, e.context, f"{e.a:.3f}", f"{e.b:.3f}", f"{e.ratio:.2f}",
                      "" if e.p_value is None else f"{e.p_value:.3f}", e.verdict)
    _console().print(table)
    return 0


def cmd_gpu(args: argparse.Namespace) -> int:
    """Probe the GPU stack; where CUDA works, write the dataset per codec and read each element on the GPU."""
    import json
    import tempfile
    import time
    from dataclasses import asdict

    from . import datasets, gpu, results
    from .matrix import Point
    from .runtime import IOConfig

    found = gpu.probe()
    for line in found.lines():
        print(line)
    codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
    dataset_path = datasets.resolve(args.dataset)
    source = datasets.load(dataset_path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="harness-gpu-") as tmp:
        for codec in codecs:
            target = Path(tmp) / f"{codec}.zarr"
            IOConfig(pipeline="fused", codec=codec, sharding=args.sharding).write(source, target)  # CPU write
            for store_kind in ("local", "gds"):
                rows += gpu.capability_table(target, codec, store_kind=store_kind)
            for r in gpu.gpu_write_interop(target, codec, Path(tmp) / "gpu-written"):
                rows.append({**r, "element": f"{r['element']} (GPU write, CPU read)", "store": "local"})
    width = max(len(r["element"]) for r in rows)
    print(f"{'element':<{width}}  codec                  store  result")
    for r in rows:
        detail = (f"works ({r.get('kind')}, via {r.get('via')}), {r['seconds']:.3f}s, bit-for-bit equal to the CPU read"
                  if r["status"] == "works" else f"{r['status']}: {r.get('error', '')}")
        print(f"{r['element']:<{width}}  {r['codec']:<22} {r['store']:<6} {detail}")
    from . import provenance

    run_id = time.strftime("%Y%m%dT%H%M%S")
    prov = provenance.collect(Path(args.results))
    common = {"provenance": prov, "stack_key": provenance.stack_key(prov), "run_id": run_id,
              "dataset": {"name": args.dataset, "path": str(dataset_path), "fingerprint": datasets.fingerprint(dataset_path)},
              "gpu_probe": json.loads(json.dumps(asdict(found)))}  # the probe above, once for every row
    out = []
    for i, r in enumerate(rows):
        point = Point(store=r["store"], pipeline="gpu", codec=r["codec"], sharding=args.sharding)
        out.append({**common, "key": f"gpu-{run_id}-{i}", "point_id": point.id, "point": point.to_dict(),
                    "workload": f"gpu-read {r['element']}", "status": {"works": "ok", "fails": "failed"}.get(r["status"], r["status"]),
                    "error": r.get("error", ""), "values": [r["seconds"]] if "seconds" in r else []})
    results.append(Path(args.results), out)
    print(f"capability rows appended to {results.results_path(Path(args.results))}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import time

    from . import servers

    if args.kind == "s3":
        server = servers.start_s3(network=servers.Network(latency_ms=args.latency_ms))
        hint = " ".join(f"{k}={v}" for k, v in server.env.items())
        print(f"S3 ({server.engine} behind nginx) at {server.url}, bucket s3://{servers.S3_BUCKET}"
              + (f" (+{args.latency_ms:g} ms per request)" if args.latency_ms else "") + f"\nexport {hint}")
    else:
        root = Path(args.dir or ".").absolute()
        server = servers.start_http(root, latency_ms=args.latency_ms)
        print(f"nginx serving {root} at {server.url}" + (f" (+{args.latency_ms:g} ms per request)" if args.latency_ms else ""))
    print("Ctrl-C stops it.", flush=True)
    with server:
        try:
            while server.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_check_store(args: argparse.Namespace) -> int:
    from . import consolidated

    found = consolidated.check(args.url, args.backend, fix=args.fix)
    print(found.message())
    if args.fix and found.stale:
        print("re-consolidated: run check-store again to confirm")
        return 0
    return 1 if found.stale or not found.consolidated else 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from . import datasets

    if args.action == "list":
        print(f"{datasets.BUILTIN}\treal: scanpy's 10x_pbmc68k_reduced.h5ad (700 cells x 765 genes, dense X)")
        for name, size in datasets.SYNTHETIC_SIZES.items():
            print(f"{name}\tsynthetic: {size.cells} cells x {size.genes} genes, ~{size.median_genes} non-zeros per cell")
        return 0
    if args.action == "fetch":
        print(datasets.fetch_builtin())
        return 0
    name = args.name or "tiny"
    if name not in datasets.SYNTHETIC_SIZES and args.cells is None:
        raise HarnessError(f"unknown size {name!r}; valid: {', '.join(datasets.SYNTHETIC_SIZES)}, or pass --cells N")
    base = datasets.SYNTHETIC_SIZES.get(name, datasets.SYNTHETIC_SIZES["10k"])
    size = datasets.SyntheticSize(args.cells or base.cells, args.genes or base.genes, base.median_genes)
    out = Path(args.out) if args.out else datasets.synthetic_path(name) if args.cells is None else Path(f"{name}.h5ad")
    print(datasets.generate(out, size, seed=args.seed))
    return 0


def _tune_store(text: str, client: str) -> tuple[str, str | None]:
    """(store value, user URL or None) from `--store`: a store value, or an s3:// / http(s):// URL."""
    if "://" in text:
        scheme = text.split("://", 1)[0]
        protocol = {"s3": "s3", "http": "http", "https": "http"}.get(scheme)
        if protocol is None:
            raise HarnessError(f"--store {text!r}: use s3://bucket/prefix or https://host/path, or a store value ({', '.join(matrix.STORES)})")
        return f"{protocol}-{client}", text
    if text not in matrix.STORES:
        raise HarnessError(f"--store {text!r} is not a store value ({', '.join(matrix.STORES)}) or an s3:// / https:// URL")
    if text in ("fsspec", "obstore"):
        raise HarnessError(f"--store {text!r}: tune local data with --store local; remote stores are s3-* and http-*")
    return text, None


def cmd_tune(args: argparse.Namespace) -> int:
    from . import recommend, tune

    store, store_url = _tune_store(args.store, args.client)
    remote = "-" in store
    objective = args.objective or ("lazy" if remote else "balanced")
    networks = tuple("" if n.strip() == "none" else n.strip() for n in (args.verify_network or ("none,latency=20ms" if remote else "none")).split(","))
    for network in networks:
        from .servers import Network

        Network.parse(network)  # a typo fails now, not after the search
    readers = () if args.require_readable_by == "none" else tuple(r.strip() for r in args.require_readable_by.split(",") if r.strip())
    constraints = tune.Constraints(readable_by=readers, max_size_ratio=args.max_size_ratio,
                                   pipelines=tuple(p.strip() for p in args.pipelines.split(",") if p.strip()))
    tune.check_objective(objective)
    if args.repeats < 1:
        raise HarnessError("--repeats must be at least 1")
    request = recommend.TuneRequest(dataset=args.dataset, objective=objective, constraints=constraints,
                                    budget_s=tune.parse_budget(args.budget), repeats=args.repeats,
                                    out=Path(args.out) if args.out else None, timeout=args.timeout,
                                    progress=not args.no_progress, store=store, store_url=store_url,
                                    verify_networks=networks if remote else ("",))
    if remote:
        request.space = tune.remote_space(store)
    if args.deep:
        request.space = {**request.space, **tune.DEEP_AXES}
        if args.validate_search:
            raise HarnessError("--validate-search measures the local search space; drop --store or --validate-search")
    if args.validate_search:
        from . import validate

        validate.run(request, log=print)
        return 0
    out = recommend.run(request, log=print)
    print((out / "summary.md").read_text())
    print(f"recommended configuration: {out / 'recommended.json'}")
    print(f"generated module:          {out / 'io_config.py'}")
    print("use it:")
    print(f"    import sys; sys.path.insert(0, {str(out)!r})")
    print("    from io_config import recommended_config")
    where = store_url or ("s3://bucket/data.zarr" if store.startswith("s3") else "https://host/data.zarr" if remote else "out.zarr")
    if remote:
        print(f'    cfg = recommended_config(); lazy = cfg.read_lazy("{where}")  # its store client, options and cache')
        print("    subset = cfg.to_memory(lazy[rows])  # computed under its concurrency and dask threads")
    else:
        print(f'    cfg = recommended_config(); cfg.write(adata, "{where}"); lazy = cfg.read_lazy("{where}")')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Measure and tune how AnnData is stored on zarr v3: store backend, event loop, codec pipeline, codec, sharding, consolidated metadata.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="measure a sweep of points (default: a small sweep on the built-in dataset)",
                         description="Measure points of the matrix plus the baselines, each in its own process, and print medians with their speedup against anndata-default.")
    run.add_argument("--dataset", default=DEFAULT_DATASET, help="pbmc68k (built-in, real), tiny|10k|100k|1m (synthetic), or a path to .h5ad/.zarr")
    _add_matrix_args(run)
    run.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS), help="comma list, or all (write, read, lazy-open, lazy-rows, lazy-random, lazy-obs, lazy-gene, stream-sync|async|dask[-shuffled])")
    run.add_argument("--repeats", type=int, default=5, help="timed repeats per workload (median and IQR are reported)")
    run.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per workload")
    run.add_argument("--timeout", type=float, default=900, help="seconds before a point's process group is killed and recorded as timeout")
    run.add_argument("--results", default="results", help="results directory (append-only results.jsonl; re-running resumes)")
    run.add_argument("--workdir", help="scratch directory for stores (default: a temporary directory)")
    run.add_argument("--warm", action="store_true", help="do not evict stores from the page cache before reads")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--network", help="condition added by the loopback servers' nginx, e.g. latency=20ms or "
                                       "latency=20ms,rate=1gbit (rate: per connection); recorded with every result")
    run.add_argument("--store", help="your own remote location for the s3-*/http-* points instead of the loopback server: "
                                     "s3://bucket/prefix (credentials and endpoint from AWS_* variables) or https://host/path "
                                     "(a server that serves --workdir at that URL; HTTP is read-only)")
    run.set_defaults(func=cmd_run)

    tn = sub.add_parser("tune", help="find the best configuration for a dataset and objective, verify it, emit it",
                        description="Successive halving over the matrix on row subsamples, then the finalists are verified "
                                    "beside anndata's defaults on the full dataset (same run) and round-tripped under every "
                                    "reader pipeline. Writes recommended.json, io_config.py (recommended_config()) and summary.md.")
    tn.add_argument("--dataset", default=DEFAULT_DATASET, help="pbmc68k (built-in), tiny|10k|100k|1m (synthetic), or a path")
    tn.add_argument("--objective",
                    help="write | read | lazy (geo-mean of lazy-open, lazy-rows, lazy-random) | balanced (geo-mean of write, "
                         "read, lazy-rows, lazy-random, equal weights) | size (bytes on disk). Default: balanced; lazy for remote stores")
    tn.add_argument("--store", default="local",
                    help="where the data will live: local; s3-obstore, s3-fsspec, http-obstore, http-fsspec (loopback servers); "
                         "or your own s3://bucket/prefix (AWS_* variables) or https://host/path (serving --workdir). Remote "
                         "tuning searches concurrency, a read cache and the layout, and verifies against the default remote "
                         "setup (same client, concurrency 10, no cache, anndata's layout)")
    tn.add_argument("--deep", action="store_true",
                    help="also search the deeper axes: sparse filters (none, delta) and zarrs knobs (chunk-versus-codec parallelism)")
    tn.add_argument("--client", choices=["obstore", "fsspec"], default="obstore", help="client for a --store URL (default obstore)")
    tn.add_argument("--verify-network", help="network conditions of a remote verification, comma list "
                                              "(default: none,latency=20ms; loopback servers only)")
    tn.add_argument("--budget", default="10m", help="time for the search, including the verification (e.g. 90s, 10m, 1h)")
    tn.add_argument("--require-readable-by", default="python",
                    help="readers the output must round-trip under: python, fused, zarrs, read_zarr (comma list), or none")
    tn.add_argument("--max-size-ratio", type=float, help="reject configs whose store is larger than this x anndata-default's")
    tn.add_argument("--pipelines", default="python,fused,zarrs", help="pipelines the config may use")
    tn.add_argument("--repeats", type=int, default=5, help="repeats in the verification")
    tn.add_argument("--timeout", type=float, default=1800, help="seconds before a worker is killed")
    tn.add_argument("--out", help="output directory (default results/tune/<dataset>)")
    tn.add_argument("--validate-search", action="store_true",
                    help="also measure the full grid of a small space and report how close the search gets, at what share of the time")
    tn.add_argument("--no-progress", action="store_true")
    tn.set_defaults(func=cmd_tune)

    mat = sub.add_parser("matrix", help="list points and whether each can run here, with reasons")
    _add_matrix_args(mat)
    mat.set_defaults(func=cmd_matrix)

    show = sub.add_parser("show", help="print the results table")
    show.add_argument("--results", default="results")
    show.add_argument("--dataset", help="only this dataset name")
    show.set_defaults(func=cmd_show)

    rep = sub.add_parser("report", help="write a report (markdown, HTML, plots) from result files only")
    rep.add_argument("--results", default="results", help="results directory or results.jsonl")
    rep.add_argument("--name", default="latest", help="report name: written to reports/<name>/")
    rep.add_argument("--out", help="output directory (overrides --name)")
    rep.add_argument("--recommended", help="point id, or a tune recommended.json, to mark in the plots")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", help="compare two result sets: ratios and a Mann-Whitney test on raw repeats")
    cmp_.add_argument("a", help="results directory or file A (the reference)")
    cmp_.add_argument("b", help="results directory or file B")
    cmp_.add_argument("--force", action="store_true", help="compare even across different machines or stacks (said in the output)")
    cmp_.add_argument("--alpha", type=float, default=0.05, help="significance level")
    cmp_.set_defaults(func=cmd_compare)

    gp = sub.add_parser("gpu", help="probe CUDA/kvikio and table which elements read onto the GPU, per codec (bit-for-bit checked)",
                        description="Without CUDA it prints the probe's reason: every gpu/gds point is then 'unsupported'.")
    gp.add_argument("--dataset", default="tiny", help="dataset to write and read back (default tiny)")
    gp.add_argument("--codecs", default="zstd-0,blosc-lz4-bitshuffle,none", help="comma list of codecs")
    gp.add_argument("--sharding", default="auto", help="sharding policy of the written stores")
    gp.add_argument("--results", default="results", help="results directory the capability rows are appended to")
    gp.set_defaults(func=cmd_gpu)

    eff = sub.add_parser("effects", help="within one results set: the effect of one axis (fsspec->obstore, asyncio->uvloop, consolidated off->on, pipelines) with Mann-Whitney tests")
    eff.add_argument("--results", default="results")
    eff.add_argument("--workload", help="comma list of workloads to show")
    eff.add_argument("--alpha", type=float, default=0.05)
    eff.set_defaults(func=cmd_effects)

    srv = sub.add_parser("serve", help="start the loopback S3 server or nginx for manual use and print the URL")
    srv.add_argument("kind", choices=["s3", "http"])
    srv.add_argument("--dir", help="directory nginx serves (http; default: current directory)")
    srv.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request (needs nginx's Lua module)")
    srv.set_defaults(func=cmd_serve)

    chk = sub.add_parser("check-store", help="check that a store's consolidated metadata still matches its nodes",
                         description="Compares the consolidated metadata in the root zarr.json with every node's own zarr.json "
                                     "(and, where the store can list, looks for nodes it does not know). Exit 0: fresh; 1: stale or absent.")
    chk.add_argument("url", help="a local path, s3://bucket/prefix (AWS_* variables) or https://host/path")
    chk.add_argument("--backend", choices=["local", "fsspec", "obstore"], help="client (default: local for paths, obstore for URLs)")
    chk.add_argument("--fix", action="store_true", help="re-consolidate with zarr.consolidate_metadata when stale (writable stores)")
    chk.set_defaults(func=cmd_check_store)

    ds = sub.add_parser("datasets", help="list, fetch the built-in, or make a synthetic dataset")
    ds.add_argument("action", choices=["list", "fetch", "make"])
    ds.add_argument("name", nargs="?", help="for make: tiny|10k|100k|1m, or a file stem with --cells")
    ds.add_argument("--cells", type=int, help="number of cells (make)")
    ds.add_argument("--genes", type=int, help="number of genes (make)")
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--out", help="output .h5ad path (make)")
    ds.set_defaults(func=cmd_datasets)
    return parser


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds context managers: workers and servers are stopped


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; finished points are saved, re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
