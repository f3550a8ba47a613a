"""Reports from result files only (never imports the measured stack): tables for now."""

from __future__ import annotations

from typing import Any

import pandas as pd

BASELINE = "anndata-default"
#: Column order of tables; mirrors harness.workloads.WORKLOADS (not imported: reports never import the stack).
WORKLOAD_ORDER = ("write", "read", "lazy-open", "lazy-rows", "lazy-random", "lazy-obs", "lazy-gene", "stream")


def with_speedup(df: pd.DataFrame) -> pd.DataFrame:
    """Add `speedup` = anndata-default median / this median, per dataset and workload.

    The reference is the latest ok anndata-default row on the same dataset fingerprint and stack,
    which in a normal sweep is measured in the same run (baselines are part of every sweep).
    """
    df = df.copy()
    df["speedup"] = float("nan")
    ok = df[(df["status"] == "ok") & df["median"].notna()]
    ref = ok[ok["point_id"] == BASELINE].sort_values("run_id").groupby(["dataset_fingerprint", "stack_key", "workload"])["median"].last()
    for idx, row in ok.iterrows():
        base = ref.get((row["dataset_fingerprint"], row["stack_key"], row["workload"]))
        if base is not None and row["median"]:
            df.at[idx, "speedup"] = base / row["median"]
    return df


def latest(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, point, workload): the most recent measurement."""
    if df.empty:
        return df
    return df.sort_values("run_id").groupby(["dataset_fingerprint", "point_id", "workload"], as_index=False).last()


def summary_table(df: pd.DataFrame, workloads: list[str] | None = None) -> Any:
    """A rich Table: one line per point, median ± IQR and speedup for each workload, files and MB."""
    from rich.table import Table

    df = with_speedup(latest(df))
    workloads = workloads or [w for w in WORKLOAD_ORDER if w in set(df["workload"])]
    table = Table(title="median seconds ±IQR (speedup vs anndata-default: >1 is faster)", show_lines=False)
    table.add_column("point", no_wrap=True)
    for w in workloads:
        table.add_column(w, justify="right")
    table.add_column("files", justify="right")
    table.add_column("MB", justify="right")
    table.add_column("pipeline ran")
    order = df.groupby("point_id")["median"].min().sort_values(na_position="last").index
    for pid in order:
        rows = df[df["point_id"] == pid].set_index("workload")
        cells = []
        for w in workloads:
            if w not in rows.index:
                cells.append("")
                continue
            r = rows.loc[w]
            if r["status"] != "ok":
                cells.append(f"[red]{r['status']}[/red]")
            else:
                speed = f" ({r['speedup']:.2f}x)" if pd.notna(r.get("speedup")) else ""
                cells.append(f"{r['median']:.3f} ±{r['iqr']:.3f}{speed}")
        size = rows["bytes"].dropna() if "bytes" in rows else pd.Series(dtype=float)
        files = rows["files"].dropna() if "files" in rows else pd.Series(dtype=float)
        ran = sorted({p for v in rows.get("pipeline_effective", pd.Series(dtype=object)).dropna() for p in v})
        table.add_row(pid, *cells, f"{int(files.iloc[0])}" if len(files) else "",
                      f"{size.iloc[0] / 1e6:.1f}" if len(size) else "", ", ".join(ran))
    return table


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that did not measure, with their reasons (latest per point and workload)."""
    df = latest(df)
    cols = [c for c in ("point_id", "workload", "status", "error") if c in df]
    return df[df["status"] != "ok"][cols].assign(error=lambda d: d.get("error", ""))
