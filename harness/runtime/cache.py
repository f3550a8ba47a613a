"""Remote read knobs: zarr's request concurrency, and read caches for remote stores: zarr's CacheStore
over the remote store, in memory or on local disk.

Measured remotely, `read_lazy` plus a subset fetches the same small objects again and again (indptr,
categorical codes); a cache with a size budget removes those round trips. A cache lives as long as the
store object it wraps (one `IOConfig.open_group`), so a store rewritten between two opens is never
served stale. The disk backend writes under HARNESS_CACHE_DIR (default: the harness cache) and removes
its directory when the store is garbage-collected.

zarr's CacheStore checks the cache, then fetches: concurrent misses of one key (dask tasks of one
`read_lazy` all wanting `X/indptr`, shard indexes read by every chunk request) each go to the server.
`CoalescingCacheStore` lets the first miss fetch and the others await its result.
"""

from __future__ import annotations

import asyncio
import functools
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


def parse_cache(text: Any) -> CacheSpec:
    if isinstance(text, CacheSpec):
        return text
    text = str(text or "none").strip().lower()
    if text == "none":
        return CacheSpec()
    match = re.fullmatch(r"(memory|disk)-(-?\d+)(kb|mb|gb|b)", text)
    if not match:
        raise HarnessError(
            f"cache {text!r} not understood; use none, memory-<size> or disk-<size> (e.g. memory-256mb, disk-2gb)"
        )
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


def wrap(store: Any, spec: CacheSpec) -> Any:
    """`store` behind a CacheStore of `spec`'s kind and budget (`store` itself for `none`)."""
    if spec.kind == "none":
        return store
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
            raise HarnessError(
                f"cache directory {root} is not writable ({exc.strerror}); set {CACHE_DIR_ENV} to a writable directory"
            ) from None
        backend = LocalStore(directory)
    cached = coalescing_cache_class()(store, cache_store=backend, max_size=spec.max_bytes)
    if directory is not None:
        weakref.finalize(cached, shutil.rmtree, directory, True)
    return cached


@functools.cache
def coalescing_cache_class() -> type:
    """zarr's CacheStore with concurrent misses of one (key, byte range) sent to the store once
    (built on first use: zarr is imported only when a cache is used)."""
    from zarr.experimental.cache_store import CacheStore

    class CoalescingCacheStore(CacheStore):
        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            inflight = self.__dict__.setdefault("_inflight", {})
            token = (key, repr(byte_range), asyncio.get_running_loop())
            if (task := inflight.get(token)) is None:
                task = inflight[token] = asyncio.ensure_future(super().get(key, prototype, byte_range))
                task.add_done_callback(lambda _: inflight.pop(token, None))
            return await asyncio.shield(task)  # a cancelled caller does not cancel the others' fetch

    return CoalescingCacheStore
