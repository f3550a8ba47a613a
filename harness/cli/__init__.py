"""Command line: `harness run | tune | matrix | show | report | compare | effects | gpu | serve |
check-store | datasets | claims | convert`. Each command declares its own arguments next to its `cmd_*` function.

Errors the user can fix print as one line, `harness: error: ...`, with exit code 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..errors import HarnessError
from . import analyse, claims, convert, sweep, tools, tune

#: Packages of the `bench` / `report` extras the commands need (the runtime alone needs none of them).
EXTRAS = {"rich": "bench", "psutil": "bench", "s3fs": "bench", "moto": "bench", "matplotlib": "report"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness",
        description="Measure and tune how AnnData is stored on zarr v3: store "
        "backend, event loop, codec pipeline, codec, sharding, consolidated metadata.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (sweep, tune, claims, convert, analyse, tools):
        module.register(sub)
    return parser


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds context managers: workers and servers are stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        if args.debug:
            raise
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if args.debug or exc.name not in EXTRAS:
            raise
        print(
            f"harness: error: `harness {args.command}` needs {exc.name}: pip install 'harness[{EXTRAS[exc.name]}]' "
            "(or harness[all])",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; finished points are saved, re-run the same command to resume", file=sys.stderr)
        return 130
