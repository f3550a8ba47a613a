"""Ceilings: what this machine allows for this dataset's own arrays, so a point's speed can be read as a
share of what is possible instead of a bare number of seconds.

- Codecs: every array of X, the layers and obsm (a sparse matrix's `data`, `indices` and `indptr`
  separately) cut into 4 MiB pieces and encoded, then decoded, with numcodecs on one thread and on every
  core (a thread pool; Blosc's own threads off, so one call is one thread): ratio and MB/s of raw bytes.
- Storage: large-file throughput of the results disk: a write into the page cache, a write with fsync,
  and a cold read (the file evicted from the page cache first); and memcpy, the ceiling of everything.
Each figure is the median of REPEATS runs.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime import parse_codec

CHUNK_BYTES = 4 << 20
DISK_BYTES = 512 << 20
REPEATS = 3


@dataclass(frozen=True)
class CodecCeiling:
    array: str
    codec: str
    threads: int
    raw_bytes: int
    ratio: float
    encode_mb_s: float
    decode_mb_s: float
    error: str = ""  # the codec failed on this array (the other measurements go on)


@dataclass(frozen=True)
class Throughput:
    what: str  # page-cache-write, fsync-write, cold-read, memcpy
    mb_s: float


def dataset_arrays(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, values) of every array of X, layers and obsm (sparse: data, indices and indptr)."""
    import h5py

    with h5py.File(path, "r") as f:
        names = ["X", *(f"layers/{k}" for k in f.get("layers", {})), *(f"obsm/{k}" for k in f.get("obsm", {}))]
        for name in names:
            node = f[name]
            if isinstance(node, h5py.Group):
                for part in ("data", "indices", "indptr"):
                    yield f"{name}.{part}", node[part][...]
            else:
                yield name, node[...]


def numcodecs_codec(name: str) -> Any:
    """The numcodecs object a codec name means (zarr's Zstd and Blosc codecs call these)."""
    from numcodecs import Blosc, Zstd

    spec = parse_codec(name)
    if spec.kind == "zstd":
        return Zstd(level=spec.level, checksum=spec.checksum)
    shuffle = {"shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE, "noshuffle": Blosc.NOSHUFFLE}[spec.shuffle]
    return Blosc(cname=spec.cname, clevel=spec.level, shuffle=shuffle)


@contextmanager
def blosc_single_threaded() -> Iterator[None]:
    from numcodecs import blosc

    previous = blosc.use_threads
    blosc.use_threads = False
    try:
        yield
    finally:
        blosc.use_threads = previous


def _median_seconds(work: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def codec_ceiling(name: str, values: np.ndarray, codec: str, threads: int) -> CodecCeiling:
    values = np.ascontiguousarray(values).reshape(-1)  # pieces by elements: a 2-D array sliced by rows ran empty
    step = max(1, CHUNK_BYTES // max(1, values.itemsize))
    pieces = [values[i : i + step] for i in range(0, values.size, step)] or [values]
    local = threading.local()  # one codec object per thread: a compression context is not shared

    def coder() -> Any:
        if not hasattr(local, "codec"):
            local.codec = numcodecs_codec(codec)
        return local.codec

    def encode(x: np.ndarray) -> bytes:
        return bytes(coder().encode(x))  # owned bytes: never a view of a buffer the codec reuses

    def decode(b: bytes) -> Any:
        return coder().decode(b)

    raw = values.nbytes
    try:
        with blosc_single_threaded(), ThreadPoolExecutor(threads) as pool:
            run = (lambda f, xs: list(pool.map(f, xs))) if threads > 1 else (lambda f, xs: [f(x) for x in xs])
            encoded = run(encode, pieces)
            encode_s = _median_seconds(lambda: run(encode, pieces))
            decode_s = _median_seconds(lambda: run(decode, encoded))
    except Exception as exc:  # noqa: BLE001 - a codec failing on one array is a finding, not the end of the run
        nan = float("nan")
        return CodecCeiling(name, codec, threads, raw, nan, nan, nan, f"{type(exc).__name__}: {exc}")
    return CodecCeiling(
        name,
        codec,
        threads,
        raw,
        raw / max(1, sum(len(e) for e in encoded)),
        raw / 1e6 / encode_s,
        raw / 1e6 / decode_s,
    )


def storage_ceilings(directory: Path, nbytes: int = DISK_BYTES) -> list[Throughput]:
    """Large-file write (page cache; with fsync) and cold read on `directory`'s disk, and memcpy."""
    from .storefiles import drop_page_cache

    block = np.random.default_rng(0).integers(0, 255, size=nbytes, dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix="harness-ceiling-") as tmp:
        path = Path(tmp) / "big.bin"

        def write(sync: bool) -> None:
            with open(path, "wb") as fh:
                fh.write(block.data)
                if sync:
                    fh.flush()
                    os.fsync(fh.fileno())

        def cold_read() -> None:
            drop_page_cache(path)
            with open(path, "rb") as fh:
                while fh.read(16 << 20):
                    pass

        cached = _median_seconds(lambda: write(False))
        synced = _median_seconds(lambda: write(True))
        cold = _median_seconds(cold_read)
    copy = _median_seconds(lambda: block.copy())
    mb = nbytes / 1e6
    return [
        Throughput("page-cache-write", mb / cached),
        Throughput("fsync-write", mb / synced),
        Throughput("cold-read", mb / cold),
        Throughput("memcpy", mb / copy),
    ]


def measure(
    path: Path, workdir: Path, codecs: tuple[str, ...], progress: Callable[[str], None] | None = None
) -> tuple[list[CodecCeiling], list[Throughput]]:
    """Every codec on every array, on one thread and on all cores; then the storage."""
    cores = os.cpu_count() or 1
    found = []
    for name, values in dataset_arrays(path):
        for codec in codecs:
            for threads in dict.fromkeys((1, cores)):
                if progress:
                    progress(f"{name} {codec} x{threads}")
                found.append(codec_ceiling(name, values, codec, threads))
    return found, storage_ceilings(workdir)
