"""What several commands share: the dataset option, the matrix options, the console, and `--store`."""

from __future__ import annotations

import argparse
import sys

from .. import matrix
from ..errors import HarnessError
from ..runtime import Location, Protocol, Store, parse_location

DEFAULT_DATASET = "pbmc3k"
DATASET_HELP = (
    "pbmc3k (built-in: 10x PBMC 3k raw counts), pbmc68k (built-in: scanpy's processed 700 cells), "
    "tiny|10k|100k|1m (synthetic), or a path to .h5ad/.zarr"
)


def add_matrix_args(p: argparse.ArgumentParser) -> None:
    axes_help = "; ".join(f"{k}: {v}" for k, v in matrix.AXES.items())
    p.add_argument(
        "--axis",
        action="append",
        metavar="NAME=V1,V2",
        help=f"sweep these values of an axis (repeatable; others keep the default sweep). {axes_help}",
    )
    p.add_argument(
        "--baselines",
        default=",".join(matrix.DEFAULT_BASELINES),
        help="comma list of baselines measured beside the matrix, or 'none' (default: all)",
    )


def points(args: argparse.Namespace) -> list[matrix.Point]:
    found = matrix.expand(matrix.parse_axes(args.axis or []))
    names = [] if args.baselines == "none" else [b.strip() for b in args.baselines.split(",") if b.strip()]
    for name in names:
        matrix.baseline_point(name)  # unknown names fail here, clearly
    return matrix.baselines_for(names, found) + found


def user_location(text: str | None) -> Location | None:
    """`--store` given as a user's remote location: s3://bucket/prefix or http(s)://host/path."""
    if text is None:
        return None
    try:
        location = parse_location(text)
    except HarnessError:
        location = None
    if location is None or location.protocol is Protocol.FILE:
        raise HarnessError(
            f"--store {text!r}: use s3://bucket/prefix or https://host/path (credentials from AWS_* "
            f"variables), or a store value ({', '.join(Store)})"
        )
    return location


def tune_store(text: str, client: str) -> tuple[Store, Location | None]:
    """(store, user location or None) from tune's `--store`: a store value, or an s3:// / http(s):// URL."""
    if "://" in text:
        location = user_location(text)
        return Store.of(location.protocol, client), location
    store = Store.parse(text)
    if store in (Store.FSSPEC, Store.OBSTORE):
        raise HarnessError(f"--store {text!r}: tune local data with --store local; remote stores are s3-* and http-*")
    return store, None


def console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 220)
