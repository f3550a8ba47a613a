"""Attribution: where a workload's wall time goes, from one extra, untimed, instrumented run.

numcodecs' Zstd and Blosc `encode` / `decode` are timed inside the call (zarr's Zstd and Blosc codecs call
them, on zarr's threads), and the store's `get` / `get_partial_values` / `set` at the store (zarr's
LocalStore, ObjectStore and FsspecStore). What neither covers is the rest: anndata, zarr's Python,
copies, waiting. Times are summed over threads, so with both cores busy a bucket can exceed the wall
time; CPU use is (user + sys) / (wall x cores). zarrs runs its codecs and I/O in Rust: there the buckets
stay empty and the rest is everything.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CODEC_METHODS = {"encode": "encode_s", "decode": "decode_s"}
STORE_METHODS = {"get": "store_get_s", "get_partial_values": "store_get_s", "set": "store_set_s"}


def _codec_classes() -> list[type]:
    from numcodecs import Blosc, Zstd

    return [Zstd, Blosc]


def _store_classes() -> list[type]:
    from zarr.storage import FsspecStore, LocalStore, ObjectStore

    return [LocalStore, ObjectStore, FsspecStore]


@contextmanager
def instrument() -> Iterator[dict[str, float]]:
    """Patch the codec and store classes for the duration; yields the seconds per bucket, summed over threads."""
    spent: dict[str, float] = defaultdict(float)
    lock = threading.Lock()
    saved: list[tuple[type, str, Any]] = []

    def add(bucket: str, seconds: float) -> None:
        with lock:
            spent[bucket] += seconds

    def sync_timed(original: Callable, bucket: str) -> Callable:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                add(bucket, time.perf_counter() - t0)

        return wrapper

    def async_timed(original: Callable, bucket: str) -> Callable:
        @functools.wraps(original)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                add(bucket, time.perf_counter() - t0)

        return wrapper

    for classes, methods, wrap in (
        (_codec_classes(), CODEC_METHODS, sync_timed),
        (_store_classes(), STORE_METHODS, async_timed),
    ):
        for cls in classes:
            for method, bucket in methods.items():
                if method in vars(cls):
                    saved.append((cls, method, vars(cls)[method]))
                    setattr(cls, method, wrap(vars(cls)[method], bucket))
    try:
        yield spent
    finally:
        for cls, method, original in reversed(saved):
            setattr(cls, method, original)


def attribute(run: Callable[[], Any]) -> dict[str, float]:
    """Run once, instrumented: wall and CPU seconds, codec and store seconds, and what is left."""
    with instrument() as spent:
        c0, t0 = os.times(), time.perf_counter()
        run()
        wall, c1 = time.perf_counter() - t0, os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    cores = os.cpu_count() or 1
    out = {
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_use": cpu / (wall * cores) if wall else 0.0,
        "cores": cores,
        **{bucket: spent.get(bucket, 0.0) for bucket in ("encode_s", "decode_s", "store_get_s", "store_set_s")},
    }
    out["rest_s"] = max(
        0.0, wall - (out["encode_s"] + out["decode_s"] + out["store_get_s"] + out["store_set_s"]) / cores
    )
    return out
