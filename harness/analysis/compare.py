"""`harness compare A B`: two result sets side by side, with a significance test on raw repeats.

Like asv, a difference counts only when a two-sided Mann-Whitney U test on the raw repeats says so
(p < alpha). Results from different machines or stacks are refused unless forced, and then the
output says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..runtime import Store
from . import results
from .stats import ALPHA, mann_whitney, median


def _rows(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    file = results.results_file(path)
    if not file.exists():
        raise HarnessError(f"no results file at {file}")
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in results.iter_rows(file):
        key = ((row.get("dataset") or {}).get("fingerprint", "?"), row.get("point_id", "?"), row.get("workload", "?"))
        latest[key] = row  # rows are appended in time order: the last one wins
    if not latest:
        raise HarnessError(f"{file} has no rows of schema {results.SCHEMA}")
    return latest


@dataclass
class Comparison:
    """B against A for one (point, workload): medians, ratio, and the significance as data; text is made
    only by `verdict` at the end."""

    point_id: str
    workload: str
    a: float
    b: float
    ratio: float  # b / a: < 1 means B is faster
    p_value: float | None  # two-sided Mann-Whitney on the raw repeats; None: too few repeats
    alpha: float = ALPHA

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        if self.p_value is None:
            return "too few repeats"
        if not self.significant:
            return "not significant"
        return f"B {1 / self.ratio:.2f}x faster" if self.ratio < 1 else f"B {self.ratio:.2f}x slower"


def compared(point_id: str, workload: str, a: list[float], b: list[float], alpha: float = ALPHA) -> Comparison:
    ma, mb = median(a), median(b)
    return Comparison(point_id, workload, ma, mb, mb / ma, mann_whitney(a, b), alpha)


def compare(
    a_dir: Path, b_dir: Path, *, force: bool = False, alpha: float = ALPHA
) -> tuple[list[Comparison], list[str]]:
    """Pair rows by (dataset, point, workload); returns comparisons and warnings."""
    a, b = _rows(a_dir), _rows(b_dir)
    warnings: list[str] = []
    (ma, sa), (mb, sb) = results.identity(a.values()), results.identity(b.values())
    if ma != mb:  # a machine effect hides in every ratio
        message = "A and B were measured on different machines"
        if not force:
            raise HarnessError(f"{message}; their ratios mix machine and code effects. Pass --force to compare anyway")
        warnings.append(f"FORCED: {message}; ratios mix machine and code effects")
    if sa != sb:  # comparing stacks is what --stack is for: said, not refused
        warnings.append(
            f"A and B were measured on different stacks ({'; '.join(sorted(sa))} vs {'; '.join(sorted(sb))}): "
            "the ratios are the stack's effect on this machine"
        )
    out = []
    for key in sorted(set(a) & set(b)):
        ra, rb = a[key], b[key]
        if ra.get("status") != "ok" or rb.get("status") != "ok":
            continue
        out.append(compared(key[1], key[2], ra.get("values") or [], rb.get("values") or [], alpha))
    if not out:
        warnings.append("no (dataset, point, workload) measured ok in both result sets")
    return out, warnings


#: Within-run questions the remote issue asks: (axis, A value, B value). For the store axis the pair
#: is the client on the same protocol, so `fsspec->obstore` pairs s3-fsspec with s3-obstore and
#: http-fsspec with http-obstore.
EFFECTS: tuple[tuple[str, str, str], ...] = (
    ("store", "fsspec", "obstore"),
    ("loop", "asyncio", "uvloop"),
    ("consolidated", "off", "on"),
    ("pipeline", "python", "zarrs"),
    ("pipeline", "fused", "zarrs"),
    ("filters", "none", "delta"),
    ("filters", "none", "shuffle"),
    ("input", "dask", "dask-aligned"),
    ("input", "memory", "dask"),
    ("cache", "none", "memory-512mb"),
    ("concurrency", "10", "64"),
    ("knobs", "default", "dask-workers=32"),
    ("client", "default", "s3fs-no-head"),
    ("knobs", "default", "zarrs-chunk-min=1"),
    ("knobs", "default", "zarrs-chunk-max=1"),
    ("knobs", "default", "zarrs-chunk-max=2"),
    ("knobs", "default", "zarrs-workers=1"),
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
    if axis == "store":  # the client library on the same (remote) protocol
        store = Store.parse(value)
        return str(Store.of(store.protocol, b)) if store.remote and store.client == a else None
    return b if value == a else None


def axis_effects(df: Any, effects: tuple[tuple[str, str, str], ...] = EFFECTS, alpha: float = ALPHA) -> list[Effect]:
    """Every pair of measured points that differ only in one axis of `effects`, same workload, dataset,
    stack and network condition, with a Mann-Whitney test on their raw repeats (rows of `results.load`)."""
    from ..matrix import AXES, QUIET_DEFAULTS

    ok = df[(df["status"] == "ok") & df["values"].notna()] if not df.empty else df
    if ok.empty:
        return []
    ok = ok.sort_values("run_id").drop_duplicates(
        ["dataset_fingerprint", "stack_key", "point_id", "workload"], keep="last"
    )
    axes = list(AXES)
    for axis, default in QUIET_DEFAULTS.items():  # rows written before these axes existed
        ok = ok.assign(**{axis: ok[axis].fillna(default) if axis in ok else default})
    index = {
        (r.dataset_fingerprint, r.stack_key, r.net, r.workload, r.baseline, *(getattr(r, a) for a in axes)): r
        for r in ok.itertuples()
    }
    out: list[Effect] = []
    for (fp, stack, net, workload, baseline, *values), row_a in index.items():
        for axis, a, b in effects:
            i = axes.index(axis)
            swapped = _swap(axis, values[i], a, b)
            if swapped is None:
                continue
            other = [*values[:i], swapped, *values[i + 1 :]]
            row_b = index.get((fp, stack, net, workload, baseline, *other))
            if row_b is None:
                continue
            hidden = f"{Store.parse(values[i]).protocol}-*" if axis == "store" else "*"
            context = "/".join(
                v if k != axis else hidden
                for k, v in zip(axes, values, strict=True)
                if k == axis or k not in QUIET_DEFAULTS or v != QUIET_DEFAULTS[k]
            )
            context = (f"{baseline}@" if baseline else "") + context + ("" if net == "none" else f" ({net})")
            c = compared(context, workload, list(row_a.values), list(row_b.values), alpha)
            out.append(Effect(c.point_id, c.workload, c.a, c.b, c.ratio, c.p_value, c.alpha, axis=f"{axis}: {a}->{b}"))
    return sorted(out, key=lambda e: (e.axis, e.workload, e.context))
