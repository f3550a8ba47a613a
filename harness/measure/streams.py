"""Streaming workloads: a data loader's pass over every row of X in batches, sync, async or through dask,
in sequential or shuffled order, each batch checked against the source."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from ..errors import UnsupportedPoint
from ..matrix import Point
from ..runtime import Loop
from . import verify
from .base import Workload
from .context import Context, open_lazy, open_x

STREAM_BATCH_ROWS = 2048
STREAM_IN_FLIGHT = 8
ASYNC_NEEDS_ZARR = "h5ad has no async API: stream-async needs a zarr store"


def batch_starts(n_rows: int, batch_rows: int, shuffled: bool, seed: int) -> list[int]:
    """First row of every batch, in reading order (a seeded permutation when shuffled)."""
    starts = list(range(0, n_rows, batch_rows))
    if shuffled:
        starts = [starts[i] for i in np.random.default_rng(seed).permutation(len(starts))]
    return starts


def batch_checksum(batch: Any) -> tuple[int, int, float, int]:
    """(rows, non-zeros, sum of values, sum of column indices): cheap enough to take inside the timed
    loop, and a fill value, a lost or a shifted batch all change it."""
    batch = verify.to_numpy(batch)
    if hasattr(batch, "nnz"):
        csr = batch.tocsr()
        return csr.shape[0], int(csr.nnz), float(csr.data.sum(dtype=np.float64)), int(csr.indices.sum(dtype=np.int64))
    nonzero = np.nonzero(batch)
    return batch.shape[0], int(nonzero[0].size), float(np.asarray(batch).sum(dtype=np.float64)), int(nonzero[1].sum())


class Stream(Workload):
    """A data loader's pass over every row in batches of STREAM_BATCH_ROWS (X only), three ways:

    - `sync`: anndata's sync API (`sparse_dataset` or the zarr array) on zarr's own I/O loop;
    - `async`: zarr's async API on the harness's own loop (the point's asyncio or uvloop), with
      STREAM_IN_FLIGHT batches in flight: the guide's future asynchronous partial reader;
    - `dask`: `read_lazy` and one dask compute per batch.
    Sequential or shuffled batch order. Records time to first batch and rows/s; `verify` checks that
    every batch arrived exactly once and matches the source.
    """

    mode: ClassVar[str] = "dask"
    shuffled: ClassVar[bool] = False

    @classmethod
    def unsupported_reason(cls, point: Point) -> str | None:
        if cls.mode == "async":  # opens the arrays by path: no listing needed
            return ASYNC_NEEDS_ZARR if point.api == "h5ad" else None
        return super().unsupported_reason(point)

    def run(self) -> None:
        n = self.ctx.source.n_obs
        starts = batch_starts(n, STREAM_BATCH_ROWS, self.shuffled, self.ctx.seed)
        t0 = time.perf_counter()
        first = None
        got: list[tuple[int, tuple]] = []
        for start, batch in self.batches(starts):
            got.append((start, batch_checksum(batch)))
            first = first if first is not None else time.perf_counter() - t0
        total = time.perf_counter() - t0
        self.metrics.update(first_batch_s=first or 0.0, rows_per_s=n / total if total else 0.0)
        self.result = got

    def batches(self, starts: list[int]):
        if self.mode == "dask":
            X = open_lazy(self.ctx).X
            for start in starts:
                yield start, X[start : start + STREAM_BATCH_ROWS]
        elif self.mode == "sync":
            X = open_x(self.ctx)
            for start in starts:
                yield start, X[start : start + STREAM_BATCH_ROWS]
        else:
            yield from stream_async(self.ctx, starts)

    def verify(self) -> None:
        X = self.ctx.source.X
        n = self.ctx.source.n_obs
        seen = [start for start, _ in self.result]
        if sorted(seen) != list(range(0, n, STREAM_BATCH_ROWS)):
            raise verify.VerificationError(
                f"{self.name}: batches {len(seen)} read, {len(set(seen))} distinct, "
                f"{len(range(0, n, STREAM_BATCH_ROWS))} expected (rows lost or read twice)"
            )
        for start, check in self.result:
            want = batch_checksum(X[start : start + STREAM_BATCH_ROWS])
            if check[:2] != want[:2] or check[3] != want[3] or not np.isclose(check[2], want[2], rtol=1e-9):
                raise verify.VerificationError(
                    f"{self.name}: batch at row {start} differs from the source "
                    f"(rows, nnz, sum, index sum) {check} != {want}"
                )


def stream_async(ctx: Context, starts: list[int]):
    """Run zarr's async API on a loop of the point's kind; yield batches in completion order."""
    import asyncio
    import queue
    import threading

    if ctx.point.api == "h5ad":
        raise UnsupportedPoint(ASYNC_NEEDS_ZARR)
    out: queue.Queue = queue.Queue(maxsize=STREAM_IN_FLIGHT * 2)
    done = object()

    def runner() -> None:
        try:
            if ctx.point.config.loop is Loop.UVLOOP:
                import uvloop

                uvloop.run(_produce(ctx, starts, out))
            else:
                asyncio.run(_produce(ctx, starts, out))
            out.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            out.put(exc)

    thread = threading.Thread(target=runner, name="harness-async-stream", daemon=True)
    thread.start()
    while (item := out.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


async def _produce(ctx: Context, starts: list[int], out: Any) -> None:
    import asyncio

    import scipy.sparse as sp
    import zarr.api.asynchronous as za

    store = ctx.point.config.open_store(ctx.output, read_only=True)
    group = await za.open_group(store=store, mode="r")
    node = await group.getitem("X")
    encoding = node.attrs.get("encoding-type", "")
    limit = asyncio.Semaphore(STREAM_IN_FLIGHT)
    loop = asyncio.get_running_loop()
    if encoding.endswith("_matrix"):
        if encoding != "csr_matrix":
            raise UnsupportedPoint(f"stream-async reads row batches of CSR matrices; X is {encoding}")
        data, indices, indptr_array = [await node.getitem(k) for k in ("data", "indices", "indptr")]
        indptr = np.asarray(await indptr_array.getitem(slice(None)))
        n_vars = int(node.attrs["shape"][1])

        async def fetch(start: int):
            stop = min(start + STREAM_BATCH_ROWS, len(indptr) - 1)
            lo, hi = int(indptr[start]), int(indptr[stop])
            async with limit:
                values, cols = await asyncio.gather(data.getitem(slice(lo, hi)), indices.getitem(slice(lo, hi)))
            return start, sp.csr_matrix((values, cols, indptr[start : stop + 1] - lo), shape=(stop - start, n_vars))
    else:

        async def fetch(start: int):
            async with limit:
                return start, await node.getitem(slice(start, start + STREAM_BATCH_ROWS))

    tasks = [asyncio.ensure_future(fetch(s)) for s in starts]
    try:
        for next_done in asyncio.as_completed(tasks):
            item = await next_done
            await loop.run_in_executor(None, out.put, item)  # back-pressure without blocking the loop
    finally:
        for task in tasks:
            task.cancel()


def _stream_class(mode: str, shuffled: bool) -> type[Stream]:
    name = f"stream-{mode}" + ("-shuffled" if shuffled else "")
    return type(
        f"Stream{mode.title()}{'Shuffled' if shuffled else ''}",
        (Stream,),
        {"name": name, "mode": mode, "shuffled": shuffled},
    )


STREAM_MODES = ("sync", "async", "dask")
STREAMS = [_stream_class(mode, shuffled) for shuffled in (False, True) for mode in STREAM_MODES]
