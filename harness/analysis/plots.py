"""Figures for reports, from result rows only (matplotlib, Agg backend; never imports the stack).

Each function takes the latest-per-(point, workload) DataFrame with `median`, `q1`, `q3`, `speedup`
and the point's axis columns, writes one PNG and returns a caption that says what to conclude.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..runtime import Store

BASELINE = "anndata-default"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # long labels are never cut
    plt.close(fig)
    return path


def heatmaps(df: pd.DataFrame, workload: str, path: Path) -> str | None:
    """Median time over sharding x codec, one panel per pipeline (matrix points only)."""
    data = df[(df["workload"] == workload) & (df["status"] == "ok") & (df["baseline"] == "")]
    if data.empty or data["sharding"].nunique() * data["codec"].nunique() < 2:
        return None
    pipelines = sorted(data["pipeline"].unique())
    vmin, vmax = data["median"].min(), data["median"].max()
    fig, axes = plt.subplots(1, len(pipelines), figsize=(4.2 * len(pipelines) + 2, 3.8), squeeze=False)
    fig.subplots_adjust(wspace=0.45)
    for ax, pipeline in zip(axes[0], pipelines, strict=True):
        grid = data[data["pipeline"] == pipeline].pivot_table(
            index="sharding", columns="codec", values="median", aggfunc="min"
        )
        image = ax.imshow(grid.values, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(grid.columns)), grid.columns, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(grid.index)), grid.index, fontsize=8)
        ax.set_title(f"pipeline: {pipeline}", fontsize=10)
        for (i, j), value in np.ndenumerate(grid.values):
            if not math.isnan(value):
                ax.text(
                    j,
                    i,
                    f"{value:.2g}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value < (vmin + vmax) / 2 else "black",
                )
    fig.colorbar(image, ax=axes[0].tolist(), label=f"{workload} median [s] (darker = faster)", fraction=0.04)
    fig.suptitle(f"{workload}: median seconds by sharding policy and codec", fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    best = data.loc[data["median"].idxmin()]
    return (
        f"{workload}: the fastest cell is {best['pipeline']} / {best['codec']} / {best['sharding']} at "
        f"{best['median']:.3g} s; darker cells are faster, and every panel shares one colour scale, so panels compare directly."
    )


def speedup_bars(df: pd.DataFrame, path: Path, top: int = 12) -> str | None:
    """Speedup vs anndata-default per workload, whiskers from the point's IQR."""
    data = df[(df["status"] == "ok") & df["speedup"].notna() & (df["point_id"] != BASELINE)]
    if data.empty:
        return None
    workloads = [w for w in data["workload"].unique()]
    order = (
        data.groupby("point_id")["speedup"]
        .apply(lambda s: float(np.exp(np.log(s).mean())))
        .sort_values(ascending=False)
    )
    points = list(order.index[:top])
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(points) * len(workloads) / 2 + 2))
    height = 0.8 / len(workloads)
    for k, workload in enumerate(workloads):
        rows = data[data["workload"] == workload].set_index("point_id").reindex(points)
        y = np.arange(len(points)) + k * height
        base = rows["median"] * rows["speedup"]
        lo, hi = base / rows["q3"], base / rows["q1"]
        ax.barh(
            y,
            rows["speedup"],
            height=height,
            label=workload,
            xerr=[(rows["speedup"] - lo).clip(lower=0), (hi - rows["speedup"]).clip(lower=0)],
            capsize=2,
        )
    ax.axvline(1.0, color="black", lw=1)
    ax.text(1.0, -0.7, " anndata-default", fontsize=8, va="top")
    ax.set_yticks(
        np.arange(len(points)) + 0.4 - height / 2, [p if len(p) < 60 else p[:57] + "…" for p in points], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("speedup vs anndata-default (log scale; >1 is faster; whiskers: IQR of the point)")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
    best = order.index[0]
    return (
        f"Points ordered by geometric-mean speedup; {best} is {order.iloc[0]:.2f}x anndata-default on average "
        "over the measured workloads. Bars left of the black line are slower than the default."
    )


def pareto(df: pd.DataFrame, path: Path, recommended: str | None = None) -> str | None:
    """Bytes on disk vs write time, colour = read time; the non-dominated points joined by a line."""
    write = df[(df["workload"] == "write") & (df["status"] == "ok")].set_index("point_id")
    read = df[(df["workload"] == "read") & (df["status"] == "ok")].set_index("point_id")["median"]
    if write.empty or "bytes" not in write:
        return None
    data = write[["median", "bytes"]].join(read.rename("read"), how="left").dropna(subset=["bytes"])
    fig, ax = plt.subplots(figsize=(8, 5))
    scatter = ax.scatter(
        data["median"], data["bytes"] / 1e6, c=data["read"], cmap="viridis", s=40, edgecolor="k", lw=0.3
    )
    if data["read"].notna().any():
        fig.colorbar(scatter, label="read median [s] (darker = faster)")
    front = data.sort_values("median")
    front = front[
        front["bytes"] < front["bytes"].cummin().shift(fill_value=float("inf"))
    ]  # strictly smaller than all faster points
    ax.plot(front["median"], front["bytes"] / 1e6, color="tab:red", lw=1, label="Pareto front (write time vs size)")
    for pid in (BASELINE, "h5ad", recommended):
        if pid and pid in data.index:
            ax.annotate(
                pid if len(pid) < 40 else pid[:37] + "…",
                (data.loc[pid, "median"], data.loc[pid, "bytes"] / 1e6),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=8,
                arrowprops={"arrowstyle": "-"},
            )
    if recommended and recommended in data.index:
        ax.scatter(
            [data.loc[recommended, "median"]],
            [data.loc[recommended, "bytes"] / 1e6],
            marker="*",
            s=250,
            color="gold",
            edgecolor="k",
            zorder=5,
            label="recommended",
        )
    ax.set_xlabel("write median [s]")
    ax.set_ylabel("bytes on disk [MB]")
    ax.legend(fontsize=8)
    _save(fig, path)
    return (
        f"Each dot is a point; the red line joins points no other point beats on both write time and size "
        f"({len(front)} of {len(data)}). Colour shows full-read time."
    )


def files_bars(df: pd.DataFrame, path: Path) -> str | None:
    """Files per store (the many-small-files cost), one bar per point."""
    data = df[(df["workload"] == "write") & df["files"].notna()].drop_duplicates("point_id").sort_values("files")
    if data.empty:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(data) + 1.5))
    colors = ["tab:gray" if p == BASELINE else "tab:blue" for p in data["point_id"]]
    ax.barh(data["point_id"].str.slice(0, 72), data["files"], color=colors)
    ax.set_xlabel("files in the written store (grey: anndata-default)")
    ax.tick_params(axis="y", labelsize=8)
    _save(fig, path)
    most = data.iloc[-1]
    return f"Stores range from {int(data['files'].min())} to {int(most['files'])} files ({most['point_id']} writes the most)."


def remote_loops(df: pd.DataFrame, path: Path) -> str | None:
    """Remote points: one panel per workload, a bar per store/loop/consolidated, grouped by network condition."""
    if "store" not in df:
        return None
    remote = df[
        df["store"].map(lambda s: isinstance(s, str) and Store.parse(s).remote)
        & (df["status"] == "ok")
        & df["median"].notna()
    ].copy()
    if remote.empty:
        return None
    remote["what"] = (
        remote["store"]
        + " "
        + remote["loop"]
        + " cons-"
        + remote["consolidated"]
        + remote["baseline"].map(lambda b: f" {b}" if b else "")
    )
    workloads = [w for w in remote["workload"].unique()]
    fig, axes = plt.subplots(
        1,
        len(workloads),
        figsize=(4.5 * len(workloads), 0.28 * remote["what"].nunique() * remote["net"].nunique() + 2),
        squeeze=False,
        sharey=True,
    )
    for ax, workload in zip(axes[0], workloads, strict=True):
        table = remote[remote["workload"] == workload].pivot_table(
            index="what", columns="net", values="median", aggfunc="median"
        )
        table.plot.barh(ax=ax, legend=ax is axes[0][0])
        ax.set_title(workload)
        ax.set_xlabel("median [s]")
        ax.tick_params(axis="y", labelsize=7)
    _save(fig, path)
    return "Median seconds per remote store, event loop and consolidated metadata, per network condition (shorter is faster)."


def effect_bars(effects: list, axis: str, path: Path) -> str | None:
    """B/A per workload for every pair of points differing only in `axis` (same run); bars left of 1 mean
    B is faster, hatched bars are not significant (Mann-Whitney)."""
    found = [e for e in effects if e.axis == axis]
    if not found:
        return None
    labels = [f"{e.workload} | {e.context}"[:90] for e in found]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(found) + 1.4))
    significant = [e.significant for e in found]
    ax.barh(
        labels,
        [e.ratio for e in found],
        color=["tab:green" if e.ratio < 1 else "tab:red" for e in found],
        hatch=None,
        alpha=1.0,
    )
    for bar, sig in zip(ax.patches, significant, strict=True):
        if not sig:
            bar.set_alpha(0.35)
            bar.set_hatch("//")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xlabel(f"B/A median time for {axis} (<1: B faster; faded: not significant)")
    ax.tick_params(axis="y", labelsize=7)
    _save(fig, path)
    faster = sum(1 for e, sig in zip(found, significant, strict=True) if sig and e.ratio < 1)
    slower = sum(1 for e, sig in zip(found, significant, strict=True) if sig and e.ratio > 1)
    return (
        f"{axis}: B significantly faster in {faster}, slower in {slower}, no significant difference in "
        f"{len(found) - faster - slower} of {len(found)} pairs (Mann-Whitney on the raw repeats, p < 0.05)."
    )


def tune_front(verdicts: list[dict], front: list[str], pick: str, path: Path) -> str | None:
    """Verified points of a tune: objective against bytes on disk, the Pareto front joined, the pick starred."""
    points = [v for v in verdicts if v.get("objective") and v.get("bytes")]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for v in points:
        ax.scatter(
            v["bytes"] / 1e6,
            v["objective"],
            s=45,
            color="tab:gray" if v["default"] else "tab:blue",
            edgecolor="k",
            lw=0.3,
            zorder=3,
        )
        ax.annotate(
            v["point_id"] if len(v["point_id"]) < 48 else v["point_id"][:45] + "…",
            (v["bytes"] / 1e6, v["objective"]),
            xytext=(6, 4),
            textcoords="offset points",
            fontsize=7,
        )
    on_front = sorted((v for v in points if v["point_id"] in front), key=lambda v: v["bytes"])
    ax.plot(
        [v["bytes"] / 1e6 for v in on_front],
        [v["objective"] for v in on_front],
        color="tab:red",
        lw=1,
        label="Pareto front (objective vs bytes)",
    )
    chosen = next((v for v in points if v["point_id"] == pick), None)
    if chosen:
        ax.scatter(
            [chosen["bytes"] / 1e6],
            [chosen["objective"]],
            marker="*",
            s=260,
            color="gold",
            edgecolor="k",
            zorder=5,
            label="pick",
        )
    ax.set_xlabel("bytes on disk [MB] (grey: anndata's defaults)")
    ax.set_ylabel("objective [s] (lower is better)")
    ax.legend(fontsize=8)
    _save(fig, path)
    return path.name
