"""`harness report`, `harness compare`, `harness effects`: what result files say (never imports the stack)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import HarnessError
from .common import console


def register(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("report", help="write a report (markdown, HTML, plots) from result files only")
    rep.add_argument("--results", default="results", help="results directory or results.jsonl")
    rep.add_argument("--name", default="latest", help="report name: written to reports/<name>/")
    rep.add_argument("--out", help="output directory (overrides --name)")
    rep.add_argument("--recommended", help="point id, or a tune recommended.json, to mark in the plots")
    rep.set_defaults(func=cmd_report)

    cmp_ = sub.add_parser("compare", help="compare two result sets: ratios and a Mann-Whitney test on raw repeats")
    cmp_.add_argument("a", help="results directory or file A (the reference)")
    cmp_.add_argument("b", help="results directory or file B")
    cmp_.add_argument(
        "--force", action="store_true", help="compare even across different machines or stacks (said in the output)"
    )
    cmp_.add_argument("--alpha", type=float, default=0.05, help="significance level")
    cmp_.set_defaults(func=cmd_compare)

    eff = sub.add_parser(
        "effects",
        help="within one results set: the effect of one axis (fsspec->obstore, asyncio->uvloop, "
        "consolidated off->on, pipelines) with Mann-Whitney tests",
    )
    eff.add_argument("--results", default="results")
    eff.add_argument("--workload", help="comma list of workloads to show")
    eff.add_argument("--alpha", type=float, default=0.05)
    eff.set_defaults(func=cmd_effects)


def cmd_report(args: argparse.Namespace) -> int:
    from ..analysis import report

    recommended = args.recommended
    if recommended and Path(recommended).is_file():
        recommended = json.loads(Path(recommended).read_text()).get("point_id")
    out = Path(args.out) if args.out else Path("reports") / args.name
    md = report.build(Path(args.results), out, recommended=recommended)
    print(f"report: {md}\nhtml:   {out / 'index.html'}")
    return 0


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]):
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in ("A", "B", "A s", "B s", "B/A", "p") else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def cmd_compare(args: argparse.Namespace) -> int:
    from ..analysis.compare import compare

    found, warnings = compare(Path(args.a), Path(args.b), force=args.force, alpha=args.alpha)
    out = console()
    for w in warnings:
        out.print(f"[bold yellow]{w}[/bold yellow]")
    rows = [
        (c.point_id, c.workload, f"{c.a:.3f}", f"{c.b:.3f}", f"{c.ratio:.2f}", _p(c.p_value), c.verdict) for c in found
    ]
    out.print(
        _table(
            f"B vs A: median seconds, ratio B/A (<1: B faster), Mann-Whitney p (alpha {args.alpha})",
            ("point", "workload", "A", "B", "B/A", "p", "verdict"),
            rows,
        )
    )
    return 0


def cmd_effects(args: argparse.Namespace) -> int:
    from ..analysis import results
    from ..analysis.compare import axis_effects

    df = results.load(args.results)
    if df.empty:
        raise HarnessError(f"no results in {args.results}; run `harness run` first")
    found = [
        e for e in axis_effects(df, alpha=args.alpha) if not args.workload or e.workload in args.workload.split(",")
    ]
    if not found:
        print(
            "no pairs of points that differ in one axis only (fsspec/obstore, asyncio/uvloop, consolidated off/on, pipelines)"
        )
        return 0
    rows = [
        (e.axis, e.workload, e.context, f"{e.a:.3f}", f"{e.b:.3f}", f"{e.ratio:.2f}", _p(e.p_value), e.verdict)
        for e in found
    ]
    console().print(
        _table(
            f"effect of one axis, same run: B/A < 1 means B is faster; Mann-Whitney p (alpha {args.alpha})",
            ("effect", "workload", "other axes (network)", "A s", "B s", "B/A", "p", "verdict"),
            rows,
        )
    )
    return 0
