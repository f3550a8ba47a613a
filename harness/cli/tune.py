"""`harness tune`: search, verify beside anndata's defaults, emit `recommended_config()`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import HarnessError
from .common import DATASET_HELP, DEFAULT_DATASET, tune_store
from .sweep import CLUSTER_HELP, add_loader_args


def register(sub: argparse._SubParsersAction) -> None:
    tn = sub.add_parser(
        "tune",
        help="find the best configuration for a dataset and objective, verify it, emit it (or keep anndata's default)",
        description="Successive halving over the matrix on row samples (anndata's defaults in every rung, ties kept per layout), "
        "then the finalists are verified beside anndata's defaults on the full dataset in interleaved rounds. A change "
        "is recommended only when it beats anndata-default on the objective with significance, reads back under every "
        "required reader and is no larger than --max-size-ratio x its bytes; otherwise the answer is to keep the "
        "default. Writes recommended.json, io_config.py (recommended_config()), summary.md and front.png.",
    )
    tn.add_argument("--dataset", default=DEFAULT_DATASET, help=DATASET_HELP)
    tn.add_argument(
        "--objective",
        help="write | read | lazy (geo-mean of lazy-open, lazy-rows, lazy-random) | balanced (geo-mean of write, "
        "read, lazy-rows, lazy-random, equal weights) | size (bytes on disk). Default: balanced; lazy for remote stores",
    )
    _constraint_args(tn)
    _remote_args(tn)
    _run_args(tn)
    add_loader_args(tn, procs=False)
    tn.set_defaults(func=cmd_tune)


def _constraint_args(tn: argparse.ArgumentParser) -> None:
    tn.add_argument(
        "--max-size-ratio",
        type=float,
        default=1.0,
        help="the store may be at most this x anndata-default's bytes on the full data (default 1.0: "
        "never larger than the default; e.g. 1.5 allows 50%% more)",
    )
    tn.add_argument(
        "--max-slowdown",
        type=_slowdown,
        default=1.1,
        help="no workload the verification measures (locally write, read and the five lazy ones), in the objective "
        "or not, may be more than this x slower than anndata-default's: significantly (paired p < 0.05), or on the "
        "geometric mean of the rounds' ratios once --deciding-rounds are over (default 1.1); 'none' allows any slowdown the "
        "objective pays for",
    )
    tn.add_argument(
        "--require-readable-by",
        default="python",
        help="readers the output must round-trip under: python, fused, zarrs, read_zarr (comma list), or none",
    )
    tn.add_argument("--pipelines", default="python,fused,zarrs", help="pipelines the config may use")
    tn.add_argument(
        "--deep",
        action="store_true",
        help="also search the deeper axes: sparse filters (none, delta) "
        "and zarrs knobs (chunk-versus-codec parallelism)",
    )


def _remote_args(tn: argparse.ArgumentParser) -> None:
    tn.add_argument(
        "--store",
        default="local",
        help="where the data will live: local; s3-obstore, s3-fsspec, http-obstore, http-fsspec (loopback "
        "servers); or your own s3://bucket/prefix (AWS_* variables) or https://host/path (serving "
        "--workdir). Remote tuning searches concurrency, a read cache and the layout, and verifies "
        "against the default remote setup (same client, concurrency 10, no cache, anndata's layout)",
    )
    tn.add_argument("--client", choices=["obstore", "fsspec"], default="obstore", help="client for a --store URL")
    tn.add_argument(
        "--verify-network",
        help="network conditions of a remote verification, comma list "
        "(default: none,latency=20ms; loopback servers only)",
    )


def _run_args(tn: argparse.ArgumentParser) -> None:
    tn.add_argument(
        "--budget",
        default="20m",
        help="time for the search and the verification (e.g. 90s, 20m, 1h); "
        "a budget too small for more rungs verifies the first rung's best",
    )
    tn.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="interleaved rounds of the full-data verification (at least 4 for a Mann-Whitney p < 0.05)",
    )
    tn.add_argument(
        "--deciding-rounds",
        type=int,
        default=5,  # tune.request.DECIDING_ROUNDS (not imported: --help needs no bench extra; a test checks they agree)
        help="after the --repeats rounds, at most this many more rounds of a finalist that meets the rest of the "
        "rule but is slower than anndata's default on a workload, round by round, by more than --max-slowdown without "
        "significance: only those workloads, beside the default, until significantly beyond --max-slowdown or back "
        "within it; one still beyond it after them rules the finalist out (default: %(default)s; "
        "0: none, so any such workload rules its finalist out)",
    )
    tn.add_argument(
        "--finalists",
        default="auto",
        help="how many of the search's best the verification races on the full data beside anndata's defaults: "
        "the best within the size limit, the best overall, then those that bring a pipeline or a layout not yet "
        "raced and are not slower than the default on the sample's median, then the next best. Each costs at least two "
        "rounds on the full data. auto (the default): 4, and up to 8 where the budget leaves room after the search "
        "(small data: its full-data rounds are cheap and a sample ranks it worst), or every survivor when the search "
        "stops because another rung would save the verification less than it costs; a number races exactly that "
        "many (fewer is cheaper and may miss the best: README, tune)",
    )
    tn.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds a point may take before its worker is killed (a worker measuring n points in a round "
        "gets n times this)",
    )
    tn.add_argument("--out", help="output directory (default results/tune/<dataset>)")
    tn.add_argument(
        "--validate-search",
        nargs="?",
        const="small",
        choices=("small", "full"),
        help="measure every point of a space on the full data (the grid), then tune over it, and report how close "
        "the tune's pick is to the grid's best, at what share of its cost, and how well the first rung ranks. "
        "small (the default): a 20-point space; full: the tune's own space (47 points with the defaults, "
        "about 2 h on 100k here, grid and tune)",
    )
    tn.add_argument(
        "--validate-grid",
        type=Path,
        metavar="VALIDATION_JSON",
        help="with --validate-search: do not measure the grid again, take it (rows and wall clock) from the "
        "validation-*.json of an earlier run on the same dataset and space, and time only the tune against it "
        "(e.g. after a change to the search: minutes instead of hours; rerun both on another host or day)",
    )
    tn.add_argument("--cluster", help=CLUSTER_HELP.replace("the points", "the search's rounds and the verification"))
    tn.add_argument("--no-progress", action="store_true")


def _slowdown(text: str) -> float:
    """--max-slowdown: a factor of at least 1, or none (math.inf)."""
    if text.strip().lower() == "none":
        return math.inf
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a factor (e.g. 1.1) or none") from None


def _finalists(text: str) -> int | None:
    """--finalists: auto (None: as many as the budget leaves room for, `tune.finalist_count`) or a number of at
    least 1; a one-line error otherwise."""
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise HarnessError(f"--finalists {text}: pass auto or a number of at least 1 (the race needs one)")
    return int(text)


def _comma(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def request_from(args: argparse.Namespace):
    """The TuneRequest the options mean, every setting parsed here (a typo fails before the search)."""
    from ..measure.cluster import ClusterSpec
    from ..measure.network import Network
    from ..runtime.loader import LoaderSpec
    from ..tune import TuneRequest
    from ..tune.space import DEEP_AXES, STREAM_SPACE, Constraints, check_objective, parse_budget, remote_space

    store, location = tune_store(args.store, args.client)
    objective = args.objective or ("lazy" if store.remote else "balanced")
    check_objective(objective)
    networks = tuple(
        map(Network.parse, _comma(args.verify_network or ("none,latency=20ms" if store.remote else "none")))
    )
    readers = () if args.require_readable_by == "none" else _comma(args.require_readable_by)
    constraints = Constraints(
        readable_by=readers,
        max_size_ratio=args.max_size_ratio,
        max_slowdown=args.max_slowdown,
        pipelines=_comma(args.pipelines),
    )
    if args.repeats < 4:
        raise HarnessError("--repeats must be at least 4: with fewer rounds no difference can reach p < 0.05")
    if args.deciding_rounds < 0:
        raise HarnessError(f"--deciding-rounds {args.deciding_rounds}: give 0 (none) or more")
    request = TuneRequest(
        dataset=args.dataset,
        objective=objective,
        constraints=constraints,
        budget_s=parse_budget(args.budget),
        repeats=args.repeats,
        deciding_rounds=args.deciding_rounds,
        finalists=_finalists(args.finalists),
        out=Path(args.out) if args.out else None,
        timeout=args.timeout,
        progress=not args.no_progress,
        store=store,
        store_url=location,
        verify_networks=networks if store.remote else (Network(),),
        loader=LoaderSpec(batch_size=args.batch, run_rows=args.run_rows, preload=args.preload),
        cluster=ClusterSpec.parse(args.cluster) if args.cluster else None,
    )
    if request.cluster and not request.cluster.local and store.remote and not location:
        raise HarnessError(
            f"the loopback S3/HTTP servers are not reachable from the workers of {request.cluster.label}: "
            "pass --store s3://... or https://... that they can reach, or use --cluster local:N"
        )
    if store.remote:
        request.space = remote_space(store)
    elif objective == "stream":
        request.space = dict(STREAM_SPACE)
    if args.validate_grid and not args.validate_search:
        raise HarnessError("--validate-grid reuses a validation's grid: add --validate-search (small or full)")
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

        space = request.space if args.validate_search == "full" else None
        validate.run(request, log=print, space=space, reuse=args.validate_grid)
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
