"""`harness compare A B`: two result sets side by side, with a significance test on raw repeats.

Like asv, a difference counts only when a two-sided Mann-Whitney U test on the raw repeats says so
(p < alpha). Results from different machines or stacks are refused unless forced, and then the
output says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import results
from .errors import HarnessError

ALPHA = 0.05


def _rows(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    path = Path(path)
    file = path if path.is_file() else results.results_path(path)
    if not file.exists():
        raise HarnessError(f"no results file at {file}")
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in results.iter_rows(file):
        key = ((row.get("dataset") or {}).get("fingerprint", "?"), row.get("point_id", "?"), row.get("workload", "?"))
        latest[key] = row  # rows are appended in time order: the last one wins
    if not latest:
        raise HarnessError(f"{file} has no rows of schema {results.SCHEMA}")
    return latest


def identity(rows: dict[Any, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(machines, stacks) a result set was measured on."""
    machines, stacks = set(), set()
    for row in rows.values():
        prov = row.get("provenance") or {}
        machines.add(f"{prov.get('cpu')} x{prov.get('cores')} {prov.get('memory_gb')} GB")
        stacks.add(", ".join(f"{k} {v}" for k, v in sorted((prov.get("packages") or {}).items()) if v) + f", python {prov.get('python')}")
    return machines, stacks


@dataclass
class Comparison:
    point_id: str
    workload: str
    a: float
    b: float
    ratio: float  # b / a: < 1 means B is faster
    p_value: float | None
    verdict: str


def mann_whitney(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value, or None when there are too few repeats to ever reach significance."""
    if len(a) < 3 or len(b) < 3:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def verdict(a: list[float], b: list[float], alpha: float = ALPHA) -> tuple[float | None, str]:
    p = mann_whitney(a, b)
    if p is None:
        return None, "too few repeats"
    if p >= alpha:
        return p, "not significant"
    ratio = results.stats(b)["median"] / results.stats(a)["median"]
    return p, (f"B {1 / ratio:.2f}x faster" if ratio < 1 else f"B {ratio:.2f}x slower")


def compare(a_dir: Path, b_dir: Path, *, force: bool = False, alpha: float = ALPHA) -> tuple[list[Comparison], list[str]]:
    """Pair rows by (dataset, point, workload); returns comparisons and warnings."""
    a, b = _rows(a_dir), _rows(b_dir)
    warnings: list[str] = []
    (ma, sa), (mb, sb) = identity(a), identity(b)
    differs = [what for what, x, y in (("machines", ma, mb), ("stacks", sa, sb)) if x != y]
    if differs:
        message = f"A and B were measured on different {' and '.join(differs)}"
        if not force:
            raise HarnessError(f"{message}; their ratios mix machine and code effects. Pass --force to compare anyway")
        warnings.append(f"FORCED: {message}; ratios mix machine and code effects")
    out = []
    for key in sorted(set(a) & set(b)):
        ra, rb = a[key], b[key]
        if ra.get("status") != "ok" or rb.get("status") != "ok":
            continue
        va, vb = ra.get("values") or [], rb.get("values") or []
        p, word = verdict(va, vb, alpha)
        ma_, mb_ = results.stats(va)["median"], results.stats(vb)["median"]
        out.append(Comparison(key[1], key[2], ma_, mb_, mb_ / ma_, p, word))
    if not out:
        warnings.append("no (dataset, point, workload) measured ok in both result sets")
    return out, warnings


#: Within-run questions the remote issue asks: (axis, A value, B value). For the store axis the pair
#: is the client on the same protocol, so `fsspec->obstore` pairs s3-fsspec with s3-obstore and
#: http-fsspec with http-obstore.
EFFECTS: tuple[tuple[str, str, str], ...] = (
    ("store", "fsspec", "obstore"), ("loop", "asyncio", "uvloop"), ("consolidated", "off", "on"),
    ("pipeline", "python", "zarrs"), ("pipeline", "fused", "zarrs"), ("filters", "none", "delta"),
    ("filters", "none", "shuffle"), ("input", "dask", "dask-aligned"), ("input", "memory", "dask"),
    ("cache", "none", "memory-512mb"), ("concurrency", "10", "64"), ("knobs", "default", "dask-workers=32"),
    ("client", "default", "s3fs-no-head"), ("knobs", "default", "zarrs-chunk-min=1"), ("knobs", "default", "zarrs-chunk-max=1"),
    ("knobs", "default", "zarrs-chunk-max=2"), ("knobs", "default", "zarrs-workers=1"),
)


@dataclass
class Effect(Comparison):
    """B vs A for two points of one run that differ in one axis only; `point_id` names the other axis
    values and the network condition."""

    axis: str = ""

    @property
    def context(self) -> str:
        return self.point_id


def _swap(axis: str, value: str, a: str, b: str) -> str | None:
    if axis == "store":
        protocol, _, client = value.rpartition("-")
        return f"{protocol}-{b}" if client == a and protocol else None
    return b if value == a else None


def axis_effects(df: Any, effects: tuple[tuple[str, str, str], ...] = EFFECTS, alpha: float = ALPHA) -> list[Effect]:
    """Every pair of measured points that differ only in one axis of `effects`, same workload, dataset,
    stack and network condition, with a Mann-Whitney test on their raw repeats (rows of `results.load`)."""
    from .matrix import AXES, QUIET_DEFAULTS

    ok = df[(df["status"] == "ok") & df["values"].notna()] if not df.empty else df
    if ok.empty:
        return []
    ok = ok.sort_values("run_id").drop_duplicates(["dataset_fingerprint", "stack_key", "point_id", "workload"], keep="last")
    axes = list(AXES)
    for axis, default in QUIET_DEFAULTS.items():  # rows written before these axes existed
        ok = ok.assign(**{axis: ok[axis].fillna(default) if axis in ok else default})
    index = {(r.dataset_fingerprint, r.stack_key, r.net, r.workload, r.baseline, *(getattr(r, a) for a in axes)): r
             for r in ok.itertuples()}
    out: list[Effect] = []
    for (fp, stack, net, workload, baseline, *values), row_a in index.items():
        for axis, a, b in effects:
            i = axes.index(axis)
            swapped = _swap(axis, values[i], a, b)
            if swapped is None:
                continue
            other = [*values[:i], swapped, *values[i + 1:]]
            row_b = index.get((fp, stack, net, workload, baseline, *other))
            if row_b is None:
                continue
            va, vb = list(row_a.values), list(row_b.values)
            p, word = verdict(va, vb, alpha)
            ma, mb = results.stats(va)["median"], results.stats(vb)["median"]
            hidden = f"{values[i].rpartition('-')[0]}-*" if axis == "store" else "*"
            context = "/".join(v if k != axis else hidden for k, v in zip(axes, values, strict=True)
                               if k == axis or k not in QUIET_DEFAULTS or v != QUIET_DEFAULTS[k])
            context = (f"{baseline}@" if baseline else "") + context + ("" if net == "none" else f" ({net})")
            out.append(Effect(context, workload, ma, mb, mb / ma, p, word, axis=f"{axis}: {a}->{b}"))
    return sorted(out, key=lambda e: (e.axis, e.workload, e.context))
