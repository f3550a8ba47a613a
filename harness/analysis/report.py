"""Reports from result files only (never imports the measured stack): markdown and a self-contained HTML
page with the tables and figures, each figure with a caption that says what to conclude."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import HarnessError
from . import results
from .ceilings import attribution_markdown
from .tables import (
    WORKLOAD_ORDER,
    ceiling_markdown,
    claims_markdown,
    effects_markdown,
    latest,
    loader_markdown,
    markdown_table,
    problems,
    remote_lines,
    unstable,
    with_speedup,
)


def _provenance_notes(raw_rows: list[dict[str, Any]]) -> list[str]:
    """Say when rows come from different machines or stacks (they should not be compared blindly)."""
    machines, stacks = results.identity(raw_rows)
    notes = []
    if len(machines) > 1:
        notes.append(f"results come from {len(machines)} different machines: {', '.join(sorted(machines))}")
    if len(stacks) > 1:
        notes.append(
            f"results come from {len(stacks)} different stacks; speedups use the anndata-default of the same stack"
        )
    return notes


def build(results_dir: Path, out_dir: Path, recommended: str | None = None) -> Path:
    """Write report.md, index.html and the figures for a results directory; returns the markdown path."""
    from . import plots

    path = results.results_file(results_dir)
    if not path.exists():
        raise HarnessError(f"no results file at {path}; run `harness run` first or pass --results DIR")
    every = list(results.iter_lines(path))
    raw = [r for r in every if r.get("schema") == results.SCHEMA]
    skipped = len(every) - len(raw)
    if not raw:
        raise HarnessError(
            f"{path} has no rows of schema {results.SCHEMA} ({skipped} rows of other schemas skipped); re-run the sweep"
        )
    ceilings = ceiling_markdown(raw)
    ceiling_rows = [r for r in raw if r.get("kind") == "ceiling"]
    claim_rows = [r for r in raw if r.get("kind") == "claim"]
    raw = [r for r in raw if r.get("kind") not in results.NOT_TIMINGS]
    latest_raw = results.load(path)
    if not latest_raw.empty and "kind" in latest_raw:
        latest_raw = latest_raw[~latest_raw["kind"].isin(results.NOT_TIMINGS)]
    gpu_rows = (
        latest(latest_raw[latest_raw["workload"].str.startswith("gpu-read")]) if not latest_raw.empty else latest_raw
    )
    latest_raw = latest_raw[~latest_raw["workload"].str.startswith("gpu-read")]
    df = with_speedup(latest(latest_raw))
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str | None, str]] = []  # (title, image file, caption)
    figures = (
        ("Speedup vs anndata-default", "speedup.png", lambda p: plots.speedup_bars(df, p)),
        ("Size vs write time (Pareto front)", "pareto.png", lambda p: plots.pareto(df, p, recommended)),
        ("Files per store", "files.png", lambda p: plots.files_bars(df, p)),
        ("Remote stores x event loop", "remote.png", lambda p: plots.remote_loops(df, p)),
    )
    if not df.empty:  # (a results file of GPU capability rows only has no timings to plot)
        for workload in [w for w in WORKLOAD_ORDER if w in set(df["workload"])]:
            name = f"heatmap-{workload}.png"
            sections.append(
                (f"{workload} by sharding and codec", name, plots.heatmaps(df, workload, out_dir / name) or "")
            )
        for title, name, fn in figures:
            sections.append((title, name, fn(out_dir / name) or ""))
    notes = _provenance_notes(raw) + unstable(df)
    if skipped:
        notes.append(f"{skipped} rows of an older or unknown schema were skipped")
    skipped_figs = [t for t, _, c in sections if not c]
    if skipped_figs:
        notes.append("figures skipped for lack of data: " + ", ".join(skipped_figs))
    datasets_seen = sorted(set(df["dataset_name"].dropna()))
    md = [
        f"# harness report: {', '.join(datasets_seen)}",
        "",
        f"{len(raw)} measurements from `{path}`; median seconds ±IQR (speedup vs anndata-default, >1 is faster).",
        "",
    ]
    md += [f"> note: {n}" for n in notes] + ([""] if notes else [])
    md += ["## Table", "", markdown_table(df), ""]
    for title, name, caption in sections:
        if caption:
            md += [f"## {title}", "", f"![{title}]({name})", "", caption, ""]
    if ceilings:
        md += ["## Ceilings (harness ceiling)", "", *ceilings, ""]
    if claims := claims_markdown(claim_rows):
        md += ["## The zarr-v3 guide's claims (harness claims)", "", *claims, ""]
    if loaders := loader_markdown(raw):
        md += ["## Training loaders (cells/s and batch latency)", "", *loaders, ""]
    if attributed := attribution_markdown([*raw, *ceiling_rows]):
        md += ["## Where the time goes (harness run --attribute)", "", *attributed, ""]
    if not gpu_rows.empty:
        md += [
            "## GPU capability (harness gpu)",
            "",
            "Each element read with zarr's GPU buffers and compared bit for bit with the CPU read of the same store.",
            "",
            "| element | codec | store | result |",
            "|---|---|---|---|",
        ]
        for r in gpu_rows.itertuples():
            result = f"works, {r.median:.3f}s" if r.status == "ok" else f"{r.status}: {r.error}"
            md.append(f"| {r.workload.removeprefix('gpu-read ')} | {r.codec} | {r.store} | {result} |")
        md.append("")
    remote = remote_lines(df)
    if remote:
        md += [
            "## Remote requests",
            "",
            "Counted from the servers' access logs, per timed run (median); repeated = same "
            "object and range fetched again within one run.",
            "",
            "| point | workload | s ±IQR | requests | repeated | MB sent | rows/s | first batch s |",
            "|---" * 8 + "|",
        ]
        md += [
            f"| `{x['point']}` | {x['workload']} | {x['time']} | {x['requests']} | {x['repeated']} | {x['mb']} | "
            f"{x['rows_s']} | {x['first']} |"
            for x in remote
        ] + [""]
    from .compare import axis_effects

    found = axis_effects(latest_raw)
    effects = effects_markdown(found)
    if effects:
        md += ["## Effects of one axis (same run, Mann-Whitney on raw repeats)", ""]
        for axis in dict.fromkeys(e.axis for e in found):
            name = "effect-" + "".join(c if c.isalnum() else "-" for c in axis) + ".png"
            caption = plots.effect_bars(found, axis, out_dir / name)
            if caption:
                md += [f"![{axis}]({name})", "", caption, ""]
        md += effects + [""]
    bad = problems(df)
    if not bad.empty:
        md += ["## Not measured", ""] + [
            f"- `{r.point_id}` {r.workload}: {r.status} – {r.error}" for r in bad.itertuples()
        ]
    report = out_dir / "report.md"
    report.write_text("\n".join(md) + "\n")
    (out_dir / "index.html").write_text(_html(md))
    return report


def _html(md_lines: list[str]) -> str:
    """A self-contained page from the markdown (tables and images only; no extra dependency)."""
    import html

    body, in_table = [], False
    for line in md_lines:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if not in_table else "td"
            body.append(
                ("<table>" if not in_table else "")
                + "<tr>"
                + "".join(f"<{tag}>{html.escape(c.strip('`'))}</{tag}>" for c in cells)
                + "</tr>"
            )
            in_table = True
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("!["):
            alt, src = line[2:].split("](")
            body.append(f'<img src="{html.escape(src.rstrip(")"))}" alt="{html.escape(alt)}" style="max-width:100%">')
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            body.append(f"<p>{html.escape(line.lstrip('> -'))}</p>")
    if in_table:
        body.append("</table>")
    style = "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>harness report</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
