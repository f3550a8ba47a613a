"""Remote read knobs: zarr's request concurrency, and read caches for remote stores: zarr's CacheStore over the remote store, in memory or on local disk.

Measured remotely, `read_lazy` plus a subset fetches the same small objects again and again (indptr,
categorical codes); a cache with a size budget removes those round trips. A cache lives as long as the
store object it wraps (one `IOConfig.open_group`), so a store rewritten between two opens is never
served stale. The disk backend writes under HARNESS_CACHE_DIR (default: the harness cache) and removes
its directory when the store is garbage-collected.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HarnessError

CACHE_DIR_ENV = "HARNESS_CACHE_DIR"
UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9}


@dataclass(frozen=True)
class CacheSpec:
    """`none`, `memory-<size>` or `disk-<size>` (size: e.g. 256mb, 2gb)."""

    kind: str = "none"
    max_bytes: int = 0

    @property
    def name(self) -> str:
        if self.kind == "none":
            return "none"
        for unit, scale in sorted(UNITS.items(), key=lambda kv: -kv[1]):
            if self.max_bytes % scale == 0:
                return f"{self.kind}-{self.max_bytes // scale}{unit}"
        return f"{self.kind}-{self.max_bytes}b"


def parse_cache(text: str) -> CacheSpec:
    text = (text or "none").strip().lower()
    if text == "none":
        return CacheSpec()
    match = re.fullmatch(r"(memory|disk)-(-?\d+)(kb|mb|gb|b)", text)
    if not match:
        raise HarnessError(f"cache {text!r} not understood; use none, memory-<size> or disk-<size> (e.g. memory-256mb, disk-2gb)")
    kind, number, unit = match.group(1), int(match.group(2)), match.group(3)
    size = number * UNITS.get(unit, 1)
    if size <= 0:
        raise HarnessError(f"cache {text!r}: the size budget must be positive (e.g. {kind}-256mb)")
    return CacheSpec(kind, size)


def parse_concurrency(value: Any) -> int:
    """zarr's `async.concurrency`: a whole number of at least 1, given as int or text."""
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise HarnessError(f"concurrency {value!r} must be a whole number of at least 1 (zarr's default is 10)")
    return number


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "harness" / "store-cache")


def wrap(store: Any, spec: CacheSpec | str) -> Any:
    """`store` behind a CacheStore of `spec`'s kind and budget (`store` itself for `none`)."""
    spec = parse_cache(spec) if isinstance(spec, str) else spec
    if spec.kind == "none":
        return store
    from zarr.experimental.cache_store import CacheStore
    from zarr.storage import LocalStore, MemoryStore

    if spec.kind == "memory":
        backend: Any = MemoryStore()
        directory = None
    else:
        root = cache_root()
        try:
            root.mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(prefix="session-", dir=root))
        except OSError as exc:
            raise HarnessError(f"cache directory {root} is not writable ({exc.strerror}); set {CACHE_DIR_ENV} to a writable directory") from None
        backend = LocalStore(directory)
    cached = CacheStore(store, cache_store=backend, max_size=spec.max_bytes)
    if directory is not None:
        weakref.finalize(cached, shutil.rmtree, directory, True)
    return cached
