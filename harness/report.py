"""Reports from result files only (never imports the measured stack): tables for now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

BASELINE = "anndata-default"
#: Column order of tables; mirrors harness.workloads.WORKLOADS (not imported: reports never import the stack).
WORKLOAD_ORDER = ("write", "read", "lazy-open", "lazy-rows", "lazy-random", "lazy-obs", "lazy-gene",
                  "stream-sync", "stream-async", "stream-dask", "stream-sync-shuffled", "stream-async-shuffled", "stream-dask-shuffled")


def with_speedup(df: pd.DataFrame) -> pd.DataFrame:
    """Add `speedup` = anndata-default median / this median, per dataset and workload.

    The reference is the latest ok anndata-default row on the same dataset fingerprint, stack, store,
    loop and network condition (falling back to the same store on any loop, then to the same protocol,
    e.g. s3-obstore's for s3-fsspec, then to the local one),
    which in a normal sweep is measured in the same run (baselines run on every store of a sweep).
    """
    df = df.copy()
    df["speedup"] = float("nan")
    for col, default in (("store", "local"), ("loop", "asyncio"), ("net", "none"), ("baseline", "")):
        if col not in df:
            df[col] = default
    ok = df[(df["status"] == "ok") & df["median"].notna()]
    base = ok[ok["baseline"] == BASELINE].sort_values("run_id")
    keys = ["dataset_fingerprint", "stack_key", "workload"]
    exact = base.groupby([*keys, "store", "loop", "net"])["median"].last()
    same_store = base.groupby([*keys, "store", "net"])["median"].last()
    protocols = base["store"].map(lambda store: str(store).rpartition("-")[0])  # "" for local stores
    same_protocol = base.assign(protocol=protocols).groupby([*keys, "protocol", "net"])["median"].last()
    local = base[base["store"] == "local"].groupby(keys)["median"].last()
    for idx, row in ok.iterrows():
        k = tuple(row[c] for c in keys)
        ref = exact.get((*k, row["store"], row["loop"], row["net"]))
        ref = ref if ref is not None else same_store.get((*k, row["store"], row["net"]))
        if ref is None and "-" in str(row["store"]):
            ref = same_protocol.get((*k, str(row["store"]).rpartition("-")[0], row["net"]))
        ref = ref if ref is not None else local.get(k)
        if ref is not None and row["median"]:
            df.at[idx, "speedup"] = ref / row["median"]
    return df


def latest(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, point, workload): the most recent measurement."""
    if df.empty:
        return df
    ordered = df.sort_values("run_id", kind="stable")
    return ordered.drop_duplicates(["dataset_fingerprint", "point_id", "workload"], keep="last")


def point_lines(df: pd.DataFrame, workloads: list[str]) -> list[dict[str, Any]]:
    """One entry per point, fastest first: a cell per workload (text, or the status when not ok),
    files and MB of the written store, and the pipelines that ran. Shared by every table format."""
    lines = []
    label = df["point_id"].astype(str)
    if "dataset_name" in df and df["dataset_name"].nunique() > 1:  # one results directory, several datasets
        label = label + " [" + df["dataset_name"].astype(str) + "]"
    df = df.assign(label=label)
    order = df.groupby("label")["median"].min().sort_values(na_position="last").index
    for pid in order:
        rows = df[df["label"] == pid].set_index("workload")
        cells: list[tuple[bool, str]] = []
        for w in workloads:
            if w not in rows.index:
                cells.append((True, ""))
            elif rows.loc[w, "status"] != "ok":
                cells.append((False, str(rows.loc[w, "status"])))
            else:
                r = rows.loc[w]
                speed = f" ({r['speedup']:.2f}x)" if pd.notna(r.get("speedup")) else ""
                cells.append((True, f"{r['median']:.3f} ±{r['iqr']:.3f}{speed}"))
        with_files = [w for w in ["write", *rows.index] if w in rows.index and pd.notna(rows.loc[w].get("files"))]
        store = rows.loc[with_files[0]] if with_files else rows.iloc[0]
        files, size = store.get("files"), store.get("bytes")
        ran = sorted({p for v in rows.get("pipeline_effective", pd.Series(dtype=object)).dropna() for p in v})
        lines.append({"point": pid, "cells": cells, "files": "" if pd.isna(files) else f"{int(files)}",
                      "mb": "" if pd.isna(size) else f"{size / 1e6:.1f}", "ran": ", ".join(ran)})
    return lines


def summary_table(df: pd.DataFrame, workloads: list[str] | None = None) -> Any:
    """A rich Table: one line per point, median ± IQR and speedup for each workload, files and MB."""
    from rich.table import Table

    df = with_speedup(latest(df))
    workloads = workloads or [w for w in WORKLOAD_ORDER if w in set(df["workload"])]
    table = Table(title="median seconds ±IQR (speedup vs anndata-default: >1 is faster)", show_lines=False)
    table.add_column("point", no_wrap=True)
    for w in workloads:
        table.add_column(w, justify="right")
    for name in ("files", "MB"):
        table.add_column(name, justify="right")
    table.add_column("pipeline ran")
    for line in point_lines(df, workloads):
        cells = [text if ok else f"[red]{text}[/red]" for ok, text in line["cells"]]
        table.add_row(line["point"], *cells, line["files"], line["mb"], line["ran"])
    return table


UNSTABLE_IQR = 0.10


def unstable(df: pd.DataFrame, threshold: float = UNSTABLE_IQR) -> list[str]:
    """pyperf-style warnings for measurements whose spread is large relative to their median."""
    ok = latest(df)
    ok = ok[(ok["status"] == "ok") & ok["median"].notna() & (ok["median"] > 0)]
    flagged = ok[ok["iqr"] > threshold * ok["median"]]
    return [f"{r.point_id} {r.workload}: IQR is {r.iqr / r.median:.0%} of the median; the result is unstable: "
            "rerun with more --repeats, on a quieter machine, or on a larger dataset" for r in flagged.itertuples()]


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that did not measure, with their reasons (latest per point and workload)."""
    df = latest(df)
    cols = [c for c in ("point_id", "workload", "status", "error") if c in df]
    return df[df["status"] != "ok"][cols].assign(error=lambda d: d.get("error", ""))


# --- full reports: markdown + HTML with figures ---------------------------------------------


def _markdown_table(df: pd.DataFrame) -> str:
    """Point x workload medians ±IQR (speedup) as a markdown table."""
    workloads = [w for w in WORKLOAD_ORDER if w in set(df["workload"])]
    lines = ["| point | " + " | ".join(workloads) + " | files | MB |", "|---" * (len(workloads) + 3) + "|"]
    for line in point_lines(df, workloads):
        cells = [text for _, text in line["cells"]]
        lines.append(f"| `{line['point']}` | " + " | ".join(cells) + f" | {line['files']} | {line['mb']} |")
    return "\n".join(lines)


def _provenance_notes(raw_rows: list[dict[str, Any]]) -> list[str]:
    """Say when rows come from different machines or stacks (they should not be compared blindly)."""
    machines = {(r.get("provenance") or {}).get("cpu", "?") + f" x{(r.get('provenance') or {}).get('cores', '?')}" for r in raw_rows}
    stacks = {r.get("stack_key") for r in raw_rows}
    notes = []
    if len(machines) > 1:
        notes.append(f"results come from {len(machines)} different machines: {', '.join(sorted(machines))}")
    if len(stacks) > 1:
        notes.append(f"results come from {len(stacks)} different code/stack versions; speedups use the anndata-default of the same stack")
    return notes


def _median(values: Any) -> float | None:
    if not isinstance(values, list) or not values:
        return None
    return float(pd.Series(values).median())


def remote_lines(df: pd.DataFrame) -> list[dict[str, str]]:
    """Per remote measurement: median ±IQR, requests and repeated requests per run, MB sent by the
    server, and for streams rows/s and time to first batch (medians over the repeats)."""
    if "requests" not in df:
        return []
    lines = []
    rows = df[(df["status"] == "ok") & df["requests"].notna()].sort_values(["workload", "median"])
    for r in rows.itertuples():
        counted, metrics = r.requests, (getattr(r, "metrics", None) if isinstance(getattr(r, "metrics", None), dict) else {})
        rps, first = _median(metrics.get("rows_per_s")), _median(metrics.get("first_batch_s"))
        lines.append({"point": r.point_id, "workload": r.workload, "time": f"{r.median:.3f} ±{r.iqr:.3f}",
                      "requests": f"{_median(counted.get('requests')):.0f}", "repeated": f"{_median(counted.get('repeated')):.0f}",
                      "mb": f"{(_median(counted.get('bytes')) or 0) / 1e6:.1f}",
                      "rows_s": "" if rps is None else f"{rps:,.0f}", "first": "" if first is None else f"{first:.3f}"})
    return lines


def effects_markdown(found: list) -> list[str]:
    """The within-run axis effects (`compare.axis_effects`: Mann-Whitney on raw repeats) as a markdown table."""
    if not found:
        return []
    md = ["| effect | workload | other axes (network) | A s | B s | B/A | p | verdict |", "|---" * 8 + "|"]
    md += [f"| {e.axis} | {e.workload} | `{e.context}` | {e.a:.3f} | {e.b:.3f} | {e.ratio:.2f} | "
           f"{'' if e.p_value is None else f'{e.p_value:.3f}'} | {e.verdict} |" for e in found]
    return md


def build(results_dir: Path, out_dir: Path, recommended: str | None = None) -> Path:
    """Write report.md, index.html and the figures for a results directory; returns the markdown path."""
    from . import plots, results
    from .errors import HarnessError

    path = Path(results_dir)
    path = path if path.is_file() else results.results_path(path)
    if not path.exists():
        raise HarnessError(f"no results file at {path}; run `harness run` first or pass --results DIR")
    every = list(results.iter_rows_any(path))
    raw = [r for r in every if r.get("schema") == results.SCHEMA]
    skipped = len(every) - len(raw)
    if not raw:
        raise HarnessError(f"{path} has no rows of schema {results.SCHEMA} ({skipped} rows of other schemas skipped); re-run the sweep")
    latest_raw = results.load(path)
    gpu_rows = latest(latest_raw[latest_raw["workload"].str.startswith("gpu-read")]) if not latest_raw.empty else latest_raw
    latest_raw = latest_raw[~latest_raw["workload"].str.startswith("gpu-read")]
    df = with_speedup(latest(latest_raw))
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str | None, str]] = []  # (title, image file, caption)
    figures = (("Speedup vs anndata-default", "speedup.png", lambda p: plots.speedup_bars(df, p)),
               ("Size vs write time (Pareto front)", "pareto.png", lambda p: plots.pareto(df, p, recommended)),
               ("Files per store", "files.png", lambda p: plots.files_bars(df, p)),
               ("Remote stores x event loop", "remote.png", lambda p: plots.remote_loops(df, p)))
    if not df.empty:  # (a results file of GPU capability rows only has no timings to plot)
        for workload in [w for w in WORKLOAD_ORDER if w in set(df["workload"])]:
            name = f"heatmap-{workload}.png"
            sections.append((f"{workload} by sharding and codec", name, plots.heatmaps(df, workload, out_dir / name) or ""))
        for title, name, fn in figures:
            sections.append((title, name, fn(out_dir / name) or ""))
    notes = _provenance_notes(raw) + unstable(df)
    if skipped:
        notes.append(f"{skipped} rows of an older or unknown schema were skipped")
    skipped_figs = [t for t, _, c in sections if not c]
    if skipped_figs:
        notes.append("figures skipped for lack of data: " + ", ".join(skipped_figs))
    datasets_seen = sorted(set(df["dataset_name"].dropna()))
    md = [f"# harness report: {', '.join(datasets_seen)}", "",
          f"{len(raw)} measurements from `{path}`; median seconds ±IQR (speedup vs anndata-default, >1 is faster).", ""]
    md += [f"> note: {n}" for n in notes] + ([""] if notes else [])
    md += ["## Table", "", _markdown_table(df), ""]
    for title, name, caption in sections:
        if caption:
            md += [f"## {title}", "", f"![{title}]({name})", "", caption, ""]
    if not gpu_rows.empty:
        md += ["## GPU capability (harness gpu)", "", "Each element read with zarr's GPU buffers and compared bit for bit "
               "with the CPU read of the same store.", "", "| element | codec | store | result |", "|---|---|---|---|"]
        for r in gpu_rows.itertuples():
            result = f"works, {r.median:.3f}s" if r.status == "ok" else f"{r.status}: {r.error}"
            md.append(f"| {r.workload.removeprefix('gpu-read ')} | {r.codec} | {r.store} | {result} |")
        md.append("")
    remote = remote_lines(df)
    if remote:
        md += ["## Remote requests", "", "Counted from the servers' access logs, per timed run (median); repeated = same "
               "object and range fetched again within one run.", "",
               "| point | workload | s ±IQR | requests | repeated | MB sent | rows/s | first batch s |", "|---" * 8 + "|"]
        md += [f"| `{x['point']}` | {x['workload']} | {x['time']} | {x['requests']} | {x['repeated']} | {x['mb']} | "
               f"{x['rows_s']} | {x['first']} |" for x in remote] + [""]
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
        md += ["## Not measured", ""] + [f"- `{r.point_id}` {r.workload}: {r.status} – {r.error}" for r in bad.itertuples()]
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
            body.append(("<table>" if not in_table else "") + "<tr>" + "".join(f"<{tag}>{html.escape(c.strip('`'))}</{tag}>" for c in cells) + "</tr>")
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
