"""`harness claims`: the zarr-v3 guide's claims, checked on this machine, data and stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import HarnessError
from .common import DATASET_HELP, DEFAULT_DATASET


def register(sub: argparse._SubParsersAction) -> None:
    cl = sub.add_parser(
        "claims",
        help="check the zarr-v3 guide's claims here: holds / does not hold / holds in part / cannot be checked",
        description="Runs the smallest sweep that decides each claim (reusing rows already in the results "
        "directory), locally and on the loopback S3/HTTP servers under --network, and prints each claim's "
        "verdict with its evidence (ratios with Mann-Whitney p, files, bytes, readers) and the stack it holds on. "
        "With --stack the same claims are asked of other package versions.",
    )
    cl.add_argument("--dataset", default=DEFAULT_DATASET, help=DATASET_HELP)
    cl.add_argument("--claims", default="a,b,c,d,e,f,g,h,i,j", help="which claims (comma list of letters)")
    cl.add_argument(
        "--network", default="latency=20ms", help="network condition of the remote claims (loopback servers)"
    )
    cl.add_argument("--local-only", action="store_true", help="skip the remote parts (no S3/HTTP servers)")
    cl.add_argument("--repeats", type=int, default=5, help="timed repeats per workload")
    cl.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds a point may take before its worker is killed (a worker measuring n points in a round "
        "gets n times this)",
    )
    cl.add_argument("--results", default="results", help="results directory (rows measured before are reused)")
    cl.add_argument("--stack", help="other package versions, e.g. 'zarr==3.2.*,zarrs==0.2.1' (see harness run --stack)")
    cl.add_argument("--no-progress", action="store_true")
    cl.set_defaults(func=cmd_claims)


def cmd_claims(args: argparse.Namespace) -> int:
    from ..analysis import results, tables
    from ..claims import CLAIMS, ClaimsRequest, run
    from ..measure.network import Network
    from ..measure.stacks import Stack

    keys = tuple(k.strip() for k in args.claims.split(",") if k.strip())
    if unknown := set(keys) - {c.key for c in CLAIMS}:
        raise HarnessError(f"unknown claim {sorted(unknown)[0]!r}; valid: {', '.join(c.key for c in CLAIMS)}")
    if args.repeats < 3:
        raise HarnessError("--repeats must be at least 3: a verdict needs a significance test")
    request = ClaimsRequest(
        dataset=args.dataset,
        results=Path(args.results),
        network=Network.parse(args.network),
        repeats=args.repeats,
        timeout=args.timeout,
        progress=not args.no_progress,
        keys=keys,
        local_only=args.local_only,
        stack=Stack.parse(args.stack) if args.stack else None,
    )
    run(request, log=print)
    print("\n".join(tables.claims_markdown(list(results.iter_rows(args.results)))))
    return 0
