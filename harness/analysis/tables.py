"""Tables from result rows: speedups against anndata-default, one line per point, problems and unstable
measurements, remote request counts, axis effects; as rich tables for the terminal and as markdown."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..matrix import LOADER_WORKLOADS, WORKLOADS
from ..runtime import Store
from .results import network_of
from .stats import mann_whitney, median, summary

BASELINE = "anndata-default"
WORKLOAD_ORDER = WORKLOADS  # column order of tables


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
    protocols = base["store"].map(_protocol)
    same_protocol = base.assign(protocol=protocols).groupby([*keys, "protocol", "net"])["median"].last()
    local = base[base["store"] == "local"].groupby(keys)["median"].last()
    for idx, row in ok.iterrows():
        k = tuple(row[c] for c in keys)
        ref = exact.get((*k, row["store"], row["loop"], row["net"]))
        ref = ref if ref is not None else same_store.get((*k, row["store"], row["net"]))
        if ref is None and _protocol(row["store"]) != "file":
            ref = same_protocol.get((*k, _protocol(row["store"]), row["net"]))
        ref = ref if ref is not None else local.get(k)
        if ref is not None and row["median"]:
            df.at[idx, "speedup"] = ref / row["median"]
    return df


def _protocol(store: Any) -> str:
    return str(Store.parse(store).protocol)


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
        lines.append(
            {
                "point": pid,
                "cells": cells,
                "files": "" if pd.isna(files) else f"{int(files)}",
                "mb": "" if pd.isna(size) else f"{size / 1e6:.1f}",
                "ran": ", ".join(ran),
            }
        )
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
    return [
        f"{r.point_id} {r.workload}: IQR is {r.iqr / r.median:.0%} of the median; the result is unstable: "
        "rerun with more --repeats, on a quieter machine, or on a larger dataset"
        for r in flagged.itertuples()
    ]


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that did not measure, with their reasons (latest per point and workload)."""
    df = latest(df)
    cols = [c for c in ("point_id", "workload", "status", "error") if c in df]
    return df[df["status"] != "ok"][cols].assign(error=lambda d: d.get("error", ""))


# --- full reports: markdown + HTML with figures ---------------------------------------------


def markdown_table(df: pd.DataFrame) -> str:
    """Point x workload medians ±IQR (speedup) as a markdown table."""
    workloads = [w for w in WORKLOAD_ORDER if w in set(df["workload"])]
    lines = ["| point | " + " | ".join(workloads) + " | files | MB |", "|---" * (len(workloads) + 3) + "|"]
    for line in point_lines(df, workloads):
        cells = [text for _, text in line["cells"]]
        lines.append(f"| `{line['point']}` | " + " | ".join(cells) + f" | {line['files']} | {line['mb']} |")
    return "\n".join(lines)


def _median_of(values: Any) -> float | None:
    return median(values) if isinstance(values, list) else None


def remote_lines(df: pd.DataFrame) -> list[dict[str, str]]:
    """Per remote measurement: median ±IQR, requests and repeated requests per run, MB sent by the
    server, and for streams rows/s and time to first batch (medians over the repeats)."""
    if "requests" not in df:
        return []
    lines = []
    rows = df[(df["status"] == "ok") & df["requests"].notna()].sort_values(["workload", "median"])
    for r in rows.itertuples():
        counted, metrics = (
            r.requests,
            (getattr(r, "metrics", None) if isinstance(getattr(r, "metrics", None), dict) else {}),
        )
        rps, first = _median_of(metrics.get("rows_per_s")), _median_of(metrics.get("first_batch_s"))
        lines.append(
            {
                "point": r.point_id,
                "workload": r.workload,
                "time": f"{r.median:.3f} ±{r.iqr:.3f}",
                "requests": f"{_median_of(counted.get('requests')):.0f}",
                "repeated": f"{_median_of(counted.get('repeated')):.0f}",
                "mb": f"{(_median_of(counted.get('bytes')) or 0) / 1e6:.1f}",
                "rows_s": "" if rps is None else f"{rps:,.0f}",
                "first": "" if first is None else f"{first:.3f}",
            }
        )
    return lines


def effects_markdown(found: list) -> list[str]:
    """The within-run axis effects (`compare.axis_effects`: Mann-Whitney on raw repeats) as a markdown table."""
    if not found:
        return []
    md = ["| effect | workload | other axes (network) | A s | B s | B/A | p | verdict |", "|---" * 8 + "|"]
    md += [
        f"| {e.axis} | {e.workload} | `{e.context}` | {e.a:.3f} | {e.b:.3f} | {e.ratio:.2f} | "
        f"{'' if e.p_value is None else f'{e.p_value:.3f}'} | {e.verdict} |"
        for e in found
    ]
    return md


def ceiling_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """`harness ceiling` rows as markdown: per array and codec the ratio and encode/decode MB/s on one thread and
    on all cores (latest run per dataset), then the storage and memcpy throughput."""
    rows = [r for r in rows if r.get("kind") == "ceiling"]
    if not rows:
        return []
    latest = max(r.get("run_id", "") for r in rows)
    failed = [r for r in rows if r.get("run_id", "") == latest and r.get("status", "ok") != "ok"]
    rows = [r for r in rows if r.get("run_id", "") == latest and r.get("status", "ok") == "ok"]
    if not rows:
        return [f"- {r['workload']} failed: {r.get('error', '')}" for r in failed]
    codecs = {(r["array"], r["codec"]): {} for r in rows if "codec" in r}
    threads = sorted({r["threads"] for r in rows if "threads" in r})
    for r in rows:
        if "codec" in r:
            codecs[(r["array"], r["codec"])][r["threads"]] = r
    name = (rows[0].get("dataset") or {}).get("name", "?")
    head = " | ".join(f"encode / decode MB/s x{t}" for t in threads)
    md = [
        f"Ceilings of {name} (numcodecs on 4 MiB pieces; MB/s of raw bytes, median of 3):",
        "",
        f"| array | codec | ratio | {head} |",
        "|---" * (3 + len(threads)) + "|",
    ]
    for (array, codec), by_threads in codecs.items():
        first = next(iter(by_threads.values()))
        cells = [
            f"{by_threads[t]['encode_mb_s']:,.0f} / {by_threads[t]['decode_mb_s']:,.0f}" if t in by_threads else ""
            for t in threads
        ]
        md.append(f"| {array} | {codec} | {first['ratio']:.2f} | " + " | ".join(cells) + " |")
    storage = [r for r in rows if "what" in r]
    if storage:
        md += ["", "| storage | MB/s |", "|---|---|"] + [f"| {r['what']} | {r['mb_s']:,.0f} |" for r in storage]
    if failed:
        md += ["", *(f"- {r['workload']} failed: {r.get('error', '')}" for r in failed)]
    return md


def loader_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The training-loader workloads, one line per (setting, point, workload): cells/s (all processes) with its IQR,
    the slowest process, p99 batch latency and time to the first batch, medians over the repeats; each line of the
    harness's loaders says how it compares with annbatch's `Loader` on the same store, setting and run (ratio of
    cells/s, Mann-Whitney p). A setting is the dataset, network, runs R x preload K, batch B and processes."""
    found = [r for r in rows if r.get("workload") in LOADER_WORKLOADS and r.get("status") == "ok" and r.get("metrics")]
    if not found:
        return []
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in sorted(found, key=lambda r: r.get("run_id", "")):
        latest[(_loader_setting(r), r["point_id"], r["workload"])] = r
    md = [
        "| data, network | R x K, B | processes | point | workload | cells/s ±IQR | slowest process | p99 batch ms "
        "| first batch s | vs annbatch's Loader |",
        "|---" * 10 + "|",
    ]
    order = {w: i for i, w in enumerate(LOADER_WORKLOADS)}
    for (setting, point_id, workload), r in sorted(
        latest.items(), key=lambda kv: (kv[0][0], order[kv[0][2]], -(median(kv[1]["metrics"]["cells_per_s"]) or 0))
    ):
        (data, net, runs, procs), cells = setting, r["metrics"]["cells_per_s"]
        m = {k: median(v) for k, v in r["metrics"].items()}
        theirs = latest.get((setting, point_id, "stream-annbatch"))
        versus = "–"
        if theirs is not None and workload != "stream-annbatch":
            other = theirs["metrics"]["cells_per_s"]
            p = mann_whitney(cells, other)
            versus = f"{median(cells) / median(other):.2f}x" + (f" (p={p:.3f})" if p is not None else "")
        md.append(
            f"| {data}, {net} | {runs} | {procs} | `{point_id}` | {workload} | {m['cells_per_s']:,.0f} "
            f"±{summary(cells).iqr:,.0f} | {m.get('proc_cells_per_s_min') or m['cells_per_s']:,.0f} | "
            f"{m['p99_batch_s'] * 1e3:.0f} | {m['first_batch_s']:.3f} | {versus} |"
        )
    return md


def _loader_setting(row: dict[str, Any]) -> tuple[str, str, str, int]:
    """(dataset, network, "R x K, B", processes) of a loader row; rows written before the loader spec was recorded
    say "?" for R x K, B."""
    spec = row.get("loader") or {}
    runs = f"{spec['run_rows']} x {spec['preload']}, {spec['batch_size']}" if spec else "?"
    procs = int(spec.get("procs") or median(row["metrics"].get("procs")) or 1)
    return (row.get("dataset") or {}).get("name", "?"), network_of(row), runs, procs


def claims_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """`harness claims` verdicts (the latest run per stack): claim, verdict, evidence, stack."""
    claims = [r for r in rows if r.get("kind") == "claim"]
    if not claims:
        return []
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(claims, key=lambda r: r.get("run_id", "")):
        latest[(r["workload"], r.get("stack", ""))] = r
    md = ["| claim | verdict | evidence | stack |", "|---|---|---|---|"]
    for (workload, stack), r in sorted(latest.items()):
        evidence = "; ".join(r.get("evidence") or []).replace("|", "/")
        md.append(f"| {workload.removeprefix('claim ')}. {r['quote']} | **{r['verdict']}** | {evidence} | {stack} |")
    return md
