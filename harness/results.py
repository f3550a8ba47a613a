"""Results: append-only JSON lines, one row per (point, workload), every repeat kept.

Rows are written with one `write` + fsync each, so a killed sweep never leaves half a row that
`load` cannot skip. `load` returns a pandas DataFrame with medians and IQR computed from the raw
values, never stored in place of them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .errors import HarnessError

SCHEMA = 1
RESULTS_FILE = "results.jsonl"
STATUSES = ("ok", "failed", "timeout", "skipped", "unsupported", "invalid")


def results_path(results_dir: Path) -> Path:
    return Path(results_dir) / RESULTS_FILE


def append(results_dir: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows durably (one line each, flushed and fsynced)."""
    path = results_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell():  # a writer killed mid-line left no newline: end that line so ours stays whole
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        for row in rows:
            fh.write((json.dumps({"schema": SCHEMA, **row}, default=str) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def iter_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a results file; a truncated last line (a killed writer) is skipped, not fatal."""
    return (row for row in iter_rows_any(path) if row.get("schema") == SCHEMA)


def iter_rows_any(path: Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of any file (e.g. a worker's output, which carries no schema field)."""
    if not Path(path).exists():
        return
    with open(path) as fh:
        for line in fh:
            if line.endswith("\n"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def stats(values: list[float]) -> dict[str, float | None]:
    """Median and inter-quartile range of the repeats."""
    if not values:
        return {"median": None, "iqr": None, "q1": None, "q3": None}
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(med), "iqr": float(q3 - q1), "q1": float(q1), "q3": float(q3)}


def load(results_dir: Path | str) -> Any:
    """All rows of a results directory (or file) as a DataFrame, with median/IQR columns."""
    import pandas as pd

    from .matrix import QUIET_DEFAULTS

    path = Path(results_dir)
    path = path if path.is_file() else results_path(path)
    rows = []
    for row in iter_rows(path):
        flat = {k: v for k, v in row.items() if k not in ("provenance", "point", "dataset")}
        flat.update({f"dataset_{k}": v for k, v in (row.get("dataset") or {}).items()})
        point = row.get("point") or {}
        if "cache" in flat and "cache" not in point:  # rows from before the cache axis: their page-cache state
            flat["page_cache"] = flat.pop("cache")
        flat.update(point)
        for axis, default in QUIET_DEFAULTS.items():  # axes added later, at their defaults
            flat.setdefault(axis, default)
        flat.update(stats(row.get("values") or []))
        flat["net"] = (row.get("network") or {}).get("condition", "none")
        flat["point_raw"] = flat.get("point_id")
        if flat["net"] != "none":  # one table line per point and network condition
            flat["point_id"] = f"{flat['point_id']} ({flat['net']})"
        rows.append(flat)
    return pd.DataFrame(rows)


def done_keys(results_dir: Path) -> set[str]:
    """Keys of rows that need no re-run on resume (ok, unsupported, invalid)."""
    return {r["key"] for r in iter_rows(results_path(results_dir)) if r.get("status") in ("ok", "unsupported", "invalid") and "key" in r}


@contextmanager
def locked(results_dir: Path) -> Iterator[None]:
    """Exclusive lock on a results directory: two sweeps never interleave rows."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    fh = open(results_dir / ".lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise HarnessError(
            f"results directory {results_dir} is locked by another running sweep; "
            "wait for it to finish or pass --results OTHER_DIR"
        ) from None
    try:
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
