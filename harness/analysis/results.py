"""Results: append-only JSON lines, one typed `Row` per (point, workload), every repeat kept.

Rows are written with one `write` + fsync each, so a killed sweep never leaves half a row that
`load` cannot skip. `load` returns a pandas DataFrame with medians and IQR computed from the raw
values, never stored in place of them. Reads result files only: nothing of the measured stack.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from .stats import summary

SCHEMA = 1
#: Rows that are not timings of a (point, workload): machine ceilings, claim verdicts, conversions.
NOT_TIMINGS = ("ceiling", "claim", "convert")
RESULTS_FILE = "results.jsonl"


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"  # it ran and broke, or read back something else than was written (error says which)
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    UNSUPPORTED = "unsupported"  # this machine or stack cannot run it (error says why)
    INVALID = "invalid"  # the combination makes no sense (error says why)

    @property
    def final(self) -> bool:
        """A resumed sweep does not re-run it: the answer would be the same."""
        return self in (Status.OK, Status.UNSUPPORTED, Status.INVALID)


@dataclass
class Row:
    """One (point, workload): its status and, when not ok, the reason; everything else it measured or
    carries (raw repeats, CPU, files and bytes, requests, provenance, ...) in `data`."""

    point_id: str
    workload: str
    status: Status = Status.OK
    error: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def with_data(self, **data: Any) -> Row:
        return Row(self.point_id, self.workload, self.status, self.error, {**self.data, **data})

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            **self.data,
            "point_id": self.point_id,
            "workload": self.workload,
            "status": str(self.status),
            **({"error": self.error} if self.error or not self.ok else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        rest = {k: v for k, v in data.items() if k not in ("schema", "point_id", "workload", "status", "error")}
        return cls(data["point_id"], data["workload"], data.get("status", "ok"), data.get("error") or "", rest)


def results_file(path: Path | str) -> Path:
    """The results file of a results directory, or the file itself: the one resolver every reader uses."""
    path = Path(path)
    return path if path.suffix == ".jsonl" or path.is_file() else path / RESULTS_FILE


def append(results_dir: Path, rows: Iterable[Row]) -> None:
    """Append rows durably (one line each, flushed and fsynced)."""
    path = results_file(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell():  # a writer killed mid-line left no newline: end that line so ours stays whole
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.write(b"\n")
        for row in rows:
            fh.write((json.dumps(row.to_json(), default=str) + "\n").encode())
        fh.flush()
        os.fsync(fh.fileno())


def iter_rows(path: Path | str) -> Iterator[dict[str, Any]]:
    """Rows of this schema in a results file or directory; a truncated last line (a killed writer) is skipped."""
    return (row for row in iter_lines(results_file(path)) if row.get("schema") == SCHEMA)


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of any file (e.g. a worker's output, or rows of older schemas)."""
    if not Path(path).exists():
        return
    with open(path) as fh:
        for line in fh:
            if line.endswith("\n"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def load(path: Path | str) -> Any:
    """All rows of a results directory (or file) as a DataFrame, with median/IQR columns."""
    import pandas as pd

    from ..matrix import QUIET_DEFAULTS

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
        flat.update(summary(row.get("values") or []).as_dict())
        flat["net"] = network_of(row)
        flat["point_raw"] = flat.get("point_id")
        if flat["net"] != "none":  # one table line per point and network condition
            flat["point_id"] = f"{flat['point_id']} ({flat['net']})"
        rows.append(flat)
    return pd.DataFrame(rows)


def network_of(row: Mapping[str, Any]) -> str:
    """The network condition a row was measured under ("none": no added latency)."""
    return (row.get("network") or {}).get("condition", "none")


def done_keys(results_dir: Path) -> set[str]:
    """Keys of rows that need no re-run on resume (ok, unsupported, invalid)."""
    return {
        r["key"]
        for r in iter_rows(results_dir)
        if "key" in r and r.get("status") in {s.value for s in Status if s.final}
    }


def identity(rows: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
    """(machines, stacks) a set of rows was measured on (stack: package versions and Python, not the
    harness's own code): what compare and report check before comparing."""
    machines, stacks = set(), set()
    for row in rows:
        prov = row.get("provenance") or {}
        machines.add(f"{prov.get('cpu')} x{prov.get('cores')} {prov.get('memory_gb')} GB")
        stacks.add(
            ", ".join(f"{k} {v}" for k, v in sorted((prov.get("packages") or {}).items()) if v)
            + f", python {prov.get('python')}"
        )
    return machines, stacks


@contextmanager
def locked(results_dir: Path) -> Iterator[None]:
    """Exclusive lock on a results directory: two sweeps never interleave rows."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    fh = open(results_dir / ".lock", "w")  # noqa: SIM115 - held open while the sweep runs: the lock is its handle
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
