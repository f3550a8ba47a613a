"""Provenance: what produced a measurement (stack, machine, code), recorded with every row.

Collected in the runner with importlib.metadata, so nothing of the measured stack is imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from .. import __version__

PACKAGES = (
    "anndata",
    "zarr",
    "zarrs",
    "numcodecs",
    "obstore",
    "fsspec",
    "uvloop",
    "numpy",
    "scipy",
    "pandas",
    "h5py",
    "dask",
    "xarray",
    "cupy-cuda12x",
    "kvikio-cu12",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def filesystem(path: Path) -> str:
    """File system type of the partition holding `path` (e.g. ext4, tmpfs, overlay)."""
    path = Path(path).absolute()
    best = None
    for part in psutil.disk_partitions(all=True):
        if str(path).startswith(part.mountpoint) and (best is None or len(part.mountpoint) > len(best.mountpoint)):
            best = part
    return best.fstype if best else "unknown"


@cache
def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the harness checkout; `diff_hash` changes whenever the code does."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD", "--", "harness"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "diff_hash": None}
    return {
        "commit": commit or None,
        "dirty": bool(diff),
        "diff_hash": hashlib.sha256(diff.encode()).hexdigest()[:12] if diff else None,
    }


def collect(workdir: Path) -> dict[str, Any]:
    """Everything a reader needs to trust or reproduce a number."""
    mem = psutil.virtual_memory()
    return {
        "harness": __version__,
        "git": git_state(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem.total / 2**30, 1),
        "filesystem": filesystem(workdir),
        "hostname": socket.gethostname(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def stack_key(prov: dict[str, Any]) -> str:
    """Hash of code + stack: a measurement is reusable on resume only under the same key."""
    keyed = {"harness": prov["harness"], "git": prov["git"], "packages": prov["packages"], "python": prov["python"]}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
