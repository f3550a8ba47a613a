"""`harness tune`: search, verify beside anndata's defaults, emit `recommended_config()`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import HarnessError
from .common import DATASET_HELP, DEFAULT_DATASET, tune_store


def register(sub: argparse._SubParsersAction) -> None:
    tn = sub.add_parser(
        "tune",
        help="find the best configuration for a dataset and objective, verify it, emit it",
        description="Successive halving over the matrix on row subsamples, then the finalists are verified "
        "beside anndata's defaults on the full dataset (same run) and round-tripped under every "
        "reader pipeline. Writes recommended.json, io_config.py (recommended_config()) and summary.md.",
    )
    tn.add_argument("--dataset", default=DEFAULT_DATASET, help=DATASET_HELP)
    tn.add_argument(
        "--objective",
        help="write | read | lazy (geo-mean of lazy-open, lazy-rows, lazy-random) | balanced (geo-mean of write, "
        "read, lazy-rows, lazy-random, equal weights) | size (bytes on disk). Default: balanced; lazy for remote stores",
    )
    tn.add_argument(
        "--store",
        default="local",
        help="where the data will live: local; s3-obstore, s3-fsspec, http-obstore, http-fsspec (loopback servers); "
        "or your own s3://bucket/prefix (AWS_* variables) or https://host/path (serving --workdir). Remote "
        "tuning searches concurrency, a read cache and the layout, and verifies against the default remote "
        "setup (same client, concurrency 10, no cache, anndata's layout)",
    )
    tn.add_argument(
        "--deep",
        action="store_true",
        help="also search the deeper axes: sparse filters (none, delta) and zarrs knobs (chunk-versus-codec parallelism)",
    )
    tn.add_argument(
        "--client", choices=["obstore", "fsspec"], default="obstore", help="client for a --store URL (default obstore)"
    )
    tn.add_argument(
        "--verify-network",
        help="network conditions of a remote verification, comma list "
        "(default: none,latency=20ms; loopback servers only)",
    )
    tn.add_argument(
        "--budget", default="10m", help="time for the search, including the verification (e.g. 90s, 10m, 1h)"
    )
    tn.add_argument(
        "--require-readable-by",
        default="python",
        help="readers the output must round-trip under: python, fused, zarrs, read_zarr (comma list), or none",
    )
    tn.add_argument(
        "--max-size-ratio", type=float, help="reject configs whose store is larger than this x anndata-default's"
    )
    tn.add_argument("--pipelines", default="python,fused,zarrs", help="pipelines the config may use")
    tn.add_argument("--repeats", type=int, default=5, help="repeats in the verification")
    tn.add_argument("--timeout", type=float, default=1800, help="seconds before a worker is killed")
    tn.add_argument("--out", help="output directory (default results/tune/<dataset>)")
    tn.add_argument(
        "--validate-search",
        action="store_true",
        help="also measure the full grid of a small space and report how close the search gets, at what share of the time",
    )
    tn.add_argument("--no-progress", action="store_true")
    tn.set_defaults(func=cmd_tune)


def _comma(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def request_from(args: argparse.Namespace):
    """The TuneRequest the options mean, every setting parsed here (a typo fails before the search)."""
    from ..measure.network import Network
    from ..tune import TuneRequest
    from ..tune.space import DEEP_AXES, Constraints, check_objective, parse_budget, remote_space

    store, location = tune_store(args.store, args.client)
    objective = args.objective or ("lazy" if store.remote else "balanced")
    check_objective(objective)
    if args.repeats < 1:
        raise HarnessError("--repeats must be at least 1")
    networks = tuple(
        map(Network.parse, _comma(args.verify_network or ("none,latency=20ms" if store.remote else "none")))
    )
    readers = () if args.require_readable_by == "none" else _comma(args.require_readable_by)
    constraints = Constraints(readable_by=readers, max_size_ratio=args.max_size_ratio, pipelines=_comma(args.pipelines))
    request = TuneRequest(
        dataset=args.dataset,
        objective=objective,
        constraints=constraints,
        budget_s=parse_budget(args.budget),
        repeats=args.repeats,
        out=Path(args.out) if args.out else None,
        timeout=args.timeout,
        progress=not args.no_progress,
        store=store,
        store_url=location,
        verify_networks=networks if store.remote else (Network(),),
    )
    if store.remote:
        request.space = remote_space(store)
    if args.validate_search and (args.deep or store.remote):
        raise HarnessError(
            "--validate-search measures the local search space; drop --deep / --store or --validate-search"
        )
    if args.deep:
        request.space = {**request.space, **DEEP_AXES}
    return request


def cmd_tune(args: argparse.Namespace) -> int:
    from .. import tune

    request = request_from(args)
    if args.validate_search:
        from ..tune import validate

        validate.run(request, log=print)
        return 0
    out = tune.run(request, log=print)
    print((out / "summary.md").read_text())
    print(f"recommended configuration: {out / 'recommended.json'}")
    print(f"generated module:          {out / 'io_config.py'}")
    print("use it:")
    print(f"    import sys; sys.path.insert(0, {str(out)!r})")
    print("    from io_config import recommended_config")
    where = (
        request.store_url.url
        if request.store_url
        else {"s3": "s3://bucket/data.zarr", "http": "https://host/data.zarr"}.get(
            str(request.store.protocol), "out.zarr"
        )
    )
    if request.store.remote:
        print(f'    cfg = recommended_config(); lazy = cfg.read_lazy("{where}")  # its store client, options and cache')
        print("    subset = cfg.to_memory(lazy[rows])  # computed under its concurrency and dask threads")
    else:
        print(f'    cfg = recommended_config(); cfg.write(adata, "{where}"); lazy = cfg.read_lazy("{where}")')
    return 0
