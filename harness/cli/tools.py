"""`harness gpu`, `harness serve`, `harness check-store`, `harness datasets`: the tools around a sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import HarnessError

#: Codecs `harness ceiling` measures by default (the measure module is imported only when it runs).
CEILING_CODECS = (
    "zstd-0",
    "zstd-1",
    "zstd--1",
    "blosc-lz4-shuffle",
    "blosc-lz4-bitshuffle",
    "blosc-zstd-shuffle-1",
    "blosc-zstd-bitshuffle-1",
)


def register(sub: argparse._SubParsersAction) -> None:
    for add in (_add_gpu, _add_ceiling, _add_serve, _add_check_store, _add_datasets):
        add(sub)


def _add_gpu(sub: argparse._SubParsersAction) -> None:
    gp = sub.add_parser(
        "gpu",
        help="probe CUDA/kvikio and table which elements read onto the GPU, per codec (bit-for-bit checked)",
        description="Without CUDA it prints the probe's reason: every gpu/gds point is then 'unsupported'.",
    )
    gp.add_argument("--dataset", default="tiny", help="dataset to write and read back (default tiny)")
    gp.add_argument("--codecs", default="zstd-0,blosc-lz4-bitshuffle,none", help="comma list of codecs")
    gp.add_argument("--sharding", default="auto", help="sharding policy of the written stores")
    gp.add_argument("--results", default="results", help="results directory the capability rows are appended to")
    gp.set_defaults(func=cmd_gpu)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    srv = sub.add_parser("serve", help="start the loopback S3 server or nginx for manual use and print the URL")
    srv.add_argument("kind", choices=["s3", "http"])
    srv.add_argument("--dir", help="directory nginx serves (http; default: current directory)")
    srv.add_argument(
        "--latency-ms", type=float, default=0.0, help="added latency per request (needs nginx's Lua module)"
    )
    srv.set_defaults(func=cmd_serve)


def _add_check_store(sub: argparse._SubParsersAction) -> None:
    chk = sub.add_parser(
        "check-store",
        help="check that a store's consolidated metadata still matches its nodes",
        description="Compares the consolidated metadata in the root zarr.json with every node's own zarr.json "
        "(and, where the store can list, looks for nodes it does not know). Exit 0: fresh; 1: stale or absent.",
    )
    chk.add_argument("url", help="a local path, s3://bucket/prefix (AWS_* variables) or https://host/path")
    chk.add_argument(
        "--backend", choices=["local", "fsspec", "obstore"], help="client (default: local for paths, obstore for URLs)"
    )
    chk.add_argument(
        "--fix", action="store_true", help="re-consolidate with zarr.consolidate_metadata when stale (writable stores)"
    )
    chk.set_defaults(func=cmd_check_store)


def _add_datasets(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("datasets", help="list, fetch a built-in (real) dataset, or make a synthetic one")
    ds.add_argument("action", choices=["list", "fetch", "make"])
    ds.add_argument(
        "name",
        nargs="?",
        help="for fetch: pbmc3k (default) or pbmc68k; for make: tiny|10k|100k|1m, or a file stem with --cells",
    )
    ds.add_argument("--cells", type=int, help="number of cells (make)")
    ds.add_argument("--genes", type=int, help="number of genes (make)")
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--out", help="output .h5ad path (make)")
    ds.set_defaults(func=cmd_datasets)


def _gpu_rows(codecs: list[str], sharding: str, source) -> list[dict]:
    """Write the dataset per codec on the CPU, read each element on the GPU (local and gds stores)."""
    import tempfile

    from ..measure import gpu
    from ..runtime import IOConfig

    rows = []
    with tempfile.TemporaryDirectory(prefix="harness-gpu-") as tmp:
        for codec in codecs:
            target = Path(tmp) / f"{codec}.zarr"
            IOConfig(pipeline="fused", codec=codec, sharding=sharding).write(source, target)  # CPU write
            for store_kind in ("local", "gds"):
                rows += gpu.capability_table(target, codec, store_kind=store_kind)
            for r in gpu.gpu_write_interop(target, codec, Path(tmp) / "gpu-written"):
                rows.append({**r, "element": f"{r['element']} (GPU write, CPU read)", "store": "local"})
    return rows


def cmd_gpu(args: argparse.Namespace) -> int:
    """Probe the GPU stack; where CUDA works, write the dataset per codec and read each element on the GPU."""
    import json
    import time
    from dataclasses import asdict

    from ..analysis import results
    from ..analysis.results import Row
    from ..matrix import Point
    from ..measure import datasets, gpu, provenance

    found = gpu.probe()
    print("\n".join(found.lines()))
    dataset_path = datasets.resolve(args.dataset)
    rows = _gpu_rows(
        [c.strip() for c in args.codecs.split(",") if c.strip()], args.sharding, datasets.load(dataset_path)
    )
    width = max(len(r["element"]) for r in rows)
    print(f"{'element':<{width}}  codec                  store  result")
    for r in rows:
        detail = (
            f"works ({r.get('kind')}, via {r.get('via')}), {r['seconds']:.3f}s, bit-for-bit equal to the CPU read"
            if r["status"] == "works"
            else f"{r['status']}: {r.get('error', '')}"
        )
        print(f"{r['element']:<{width}}  {r['codec']:<22} {r['store']:<6} {detail}")
    run_id = time.strftime("%Y%m%dT%H%M%S")
    prov = provenance.collect(Path(args.results))
    common = {
        "provenance": prov,
        "stack_key": provenance.stack_key(prov),
        "run_id": run_id,
        "dataset": {"name": args.dataset, "path": str(dataset_path), "fingerprint": datasets.fingerprint(dataset_path)},
        "gpu_probe": json.loads(json.dumps(asdict(found))),
    }  # the probe above, once for every row
    out = []
    for i, r in enumerate(rows):
        point = Point.of(store=r["store"], pipeline="gpu", codec=r["codec"], sharding=args.sharding)
        status = {"works": "ok", "fails": "failed"}.get(r["status"], r["status"])
        out.append(
            Row(
                point.id,
                f"gpu-read {r['element']}",
                "skipped" if status == "absent" else status,
                r.get("error", ""),
                {
                    **common,
                    "key": f"gpu-{run_id}-{i}",
                    "point": point.to_dict(),
                    "values": [r["seconds"]] if "seconds" in r else [],
                },
            )
        )
    results.append(Path(args.results), out)
    print(f"capability rows appended to {results.results_file(args.results)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import time

    from ..measure import servers
    from ..measure.network import Network

    if args.kind == "s3":
        server = servers.start_s3(network=Network(latency_ms=args.latency_ms))
        hint = " ".join(f"{k}={v}" for k, v in server.env.items())
        print(
            f"S3 ({server.engine} behind nginx) at {server.url}, bucket s3://{servers.S3_BUCKET}"
            + (f" (+{args.latency_ms:g} ms per request)" if args.latency_ms else "")
            + f"\nexport {hint}"
        )
    else:
        root = Path(args.dir or ".").absolute()
        server = servers.start_http(root, latency_ms=args.latency_ms)
        print(
            f"nginx serving {root} at {server.url}"
            + (f" (+{args.latency_ms:g} ms per request)" if args.latency_ms else "")
        )
    print("Ctrl-C stops it.", flush=True)
    with server:
        try:
            while server.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_check_store(args: argparse.Namespace) -> int:
    from ..runtime import consolidated

    found = consolidated.check(args.url, args.backend, fix=args.fix)
    print(found.message())
    if args.fix and found.stale:
        print("re-consolidated: run check-store again to confirm")
        return 0
    return 1 if found.stale or not found.consolidated else 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from ..measure import datasets

    if args.action == "list":
        for name, spec in datasets.BUILTINS.items():
            print(f"{name}\t{spec.about}")
        for name, size in datasets.SYNTHETIC_SIZES.items():
            print(
                f"{name}\tsynthetic: {size.cells} cells x {size.genes} genes, ~{size.median_genes} non-zeros per cell"
            )
        return 0
    if args.action == "fetch":
        name = args.name or datasets.BUILTIN
        if name not in datasets.BUILTINS:
            raise HarnessError(f"unknown built-in dataset {name!r}; valid: {', '.join(datasets.BUILTINS)}")
        print(datasets.fetch_builtin(name))
        return 0
    name = args.name or "tiny"
    if name not in datasets.SYNTHETIC_SIZES and args.cells is None:
        raise HarnessError(f"unknown size {name!r}; valid: {', '.join(datasets.SYNTHETIC_SIZES)}, or pass --cells N")
    base = datasets.SYNTHETIC_SIZES.get(name, datasets.SYNTHETIC_SIZES["10k"])
    size = datasets.SyntheticSize(args.cells or base.cells, args.genes or base.genes, base.median_genes)
    out = Path(args.out) if args.out else datasets.synthetic_path(name) if args.cells is None else Path(f"{name}.h5ad")
    print(datasets.generate(out, size, seed=args.seed))
    return 0


def _add_ceiling(sub: argparse._SubParsersAction) -> None:
    ce = sub.add_parser(
        "ceiling",
        help="what this machine allows for a dataset's own arrays: each codec's ratio and MB/s, disk and memcpy",
        description="Encodes and decodes every array of X, the layers and obsm (sparse: data, indices, indptr apart) "
        "in 4 MiB pieces with numcodecs, on one thread and on all cores, and measures the results disk (page-cache "
        "write, fsync'd write, cold read) and memcpy. Rows go to the results directory; `harness show` and "
        "`harness report` print them.",
    )
    ce.add_argument(
        "--dataset", default="pbmc3k", help="pbmc3k (built-in), pbmc68k, tiny|10k|100k|1m, or a path to .h5ad"
    )
    ce.add_argument("--codecs", default=",".join(CEILING_CODECS), help="comma list of codecs")
    ce.add_argument("--results", default="results", help="results directory the rows are appended to")
    ce.add_argument(
        "--workdir", help="a directory on the disk stores are written to (default: the temporary directory)"
    )
    ce.set_defaults(func=cmd_ceiling)


def cmd_ceiling(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from ..analysis import results, tables
    from ..analysis.results import Row
    from ..measure import ceiling, datasets, provenance
    from ..runtime import parse_codec

    codecs = tuple(parse_codec(c.strip()).name for c in args.codecs.split(",") if c.strip())
    path = datasets.resolve(args.dataset)
    if path.is_dir():
        raise HarnessError(f"{path}: harness ceiling reads an .h5ad; write one with anndata's write_h5ad")
    found, storage = ceiling.measure(
        path, Path(args.workdir or tempfile.gettempdir()), codecs, progress=lambda what: print(f"  {what}", flush=True)
    )
    run_id = time.strftime("%Y%m%dT%H%M%S")
    prov = provenance.collect(Path(args.results))
    common = {
        "kind": "ceiling",
        "run_id": run_id,
        "provenance": prov,
        "stack_key": provenance.stack_key(prov),
        "dataset": {"name": args.dataset, "path": str(path), "fingerprint": datasets.fingerprint(path)},
    }
    rows = [
        Row(
            "ceiling",
            f"codec {c.array} {c.codec} x{c.threads}",
            "failed" if c.error else "ok",
            c.error,
            data={**common, **vars(c), "key": f"ceiling-{run_id}-{i}"},
        )
        for i, c in enumerate(found)
    ]
    rows += [
        Row("ceiling", f"storage {t.what}", "ok", data={**common, **vars(t), "key": f"ceiling-{run_id}-{t.what}"})
        for t in storage
    ]
    results.append(Path(args.results), rows)
    print("\n".join(tables.ceiling_markdown([r.to_json() for r in rows])))
    print(f"ceiling rows appended to {results.results_file(args.results)}")
    return 0
