"""`harness convert`: rewrite an .h5ad or zarr AnnData to a tuned layout, larger than memory, verified."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import HarnessError


def register(sub: argparse._SubParsersAction) -> None:
    cv = sub.add_parser(
        "convert",
        help="rewrite an .h5ad or zarr AnnData to a tuned zarr layout, in bounded memory, and verify it",
        description="Reads X and the layers slice by slice from SRC, writes them to DST through dask with every "
        "task owning whole shards (CSR/CSC data and indices split in non-zeros along indptr, dense arrays in "
        "rows), so memory per worker is bounded by the shard size, then compares every shard with the source "
        "(CRC-32 of data, indices, indptr). obs, var, uns and obsm are read into memory and written as usual.",
    )
    cv.add_argument("src", help="an .h5ad file or a zarr store holding an AnnData")
    cv.add_argument("dst", help="the zarr store to write (must not exist)")
    cv.add_argument("--config", help="io_config.py (its recommended_config()) or an IOConfig JSON; default: IOConfig()")
    cv.add_argument(
        "--cluster",
        help="run the tasks on a dask.distributed cluster: local:N starts N single-threaded workers on 127.0.0.1 "
        "(each holds one task, so memory per worker stays one shard's worth); tcp://HOST:PORT joins a scheduler "
        "whose workers see SRC and DST at the same paths. Default: dask's threads in this process",
    )
    cv.add_argument("--no-verify", action="store_true", help="skip the shard-by-shard comparison with the source")
    cv.add_argument("--results", help="append the measurement (workload 'convert') to this results directory")
    cv.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    import contextlib

    from ..analysis import results
    from ..analysis.results import Row, Status
    from ..measure import cluster, conversion, provenance
    from ..measure.cluster import ClusterSpec

    cfg = conversion.load_config(args.config)
    if cfg.api.value == "anndata":
        raise HarnessError("--config keeps anndata's default writer: convert with anndata.io.write_zarr instead")
    spec = ClusterSpec.parse(args.cluster) if args.cluster else None
    with cluster.connect(spec, timed=False) if spec else contextlib.nullcontext() as client:
        done = conversion.convert(Path(args.src), Path(args.dst), cfg, client=client, verify=not args.no_verify)
    rss = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in done.peak_rss.items())
    print(
        f"converted {done.cells:,} cells in {done.seconds:.1f} s ({done.cells_per_s:,.0f} cells/s), {done.tasks} tasks; "
        f"peak RSS {rss}; {done.files:,} files, {done.bytes / 1e9:.2f} GB"
    )
    verdict = "not verified" if args.no_verify else "verified equal" if not done.mismatches else "MISMATCH"
    print(f"{verdict} ({done.verify_seconds:.1f} s)" + "".join(f"\n  {m}" for m in done.mismatches[:20]))
    if args.results:
        status = Status.OK if not done.mismatches else Status.FAILED
        row = Row(
            "convert",
            "convert",
            status,
            "" if status is Status.OK else "; ".join(done.mismatches[:5]),
            {
                "kind": "convert",
                "key": f"convert-{Path(args.dst).name}-{provenance.collect(Path(args.dst))['date']}",
                "source": str(args.src),
                "config": json.loads(cfg.to_json()),
                "cluster": spec.label if spec else "threads",
                **done.to_dict(),
                "provenance": provenance.collect(Path(args.dst)),
            },
        )
        results.append(Path(args.results), [row])
    return 0 if not done.mismatches else 1
