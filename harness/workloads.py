"""Workloads: real anndata calls on a real store, each verifying what it read against the source.

A workload is constructed once per point with its `Context`, then `run` is timed, `reset` runs untimed before
every repeat (fresh output path for writes, evicted page cache for cold reads) and `verify` runs
untimed after the last repeat. asv suites, pytest-benchmark and the runner all use these classes.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import os
import time

import numpy as np

from . import stores, verify
from .matrix import Point
from .runtime import IOConfig

#: Environment the runner sets for workers of remote points (see harness.servers).
S3_BUCKET_ENV, HTTP_ROOT_ENV, HTTP_URL_ENV = "HARNESS_S3_BUCKET", "HARNESS_HTTP_ROOT", "HARNESS_HTTP_URL"
S3_PREFIX_ENV = "HARNESS_S3_PREFIX"  # a user's prefix inside the bucket (`--store s3://bucket/prefix`)

WORKLOADS = ("write", "read", "lazy-open", "lazy-rows", "lazy-random", "lazy-obs", "lazy-gene",
             "stream-sync", "stream-async", "stream-dask", "stream-sync-shuffled", "stream-async-shuffled", "stream-dask-shuffled")
STREAM_BATCH_ROWS = 2048
ASYNC_NEEDS_ZARR = "h5ad has no async API: stream-async needs a zarr store"
HTTP_NEEDS_CONSOLIDATED = ("HTTP cannot list directories (the server answers 403), so opening a group needs consolidated "
                           "metadata: measured only with cons-on")
STREAM_IN_FLIGHT = 8
DEFAULT_WORKLOADS = ("write", "read", "lazy-rows", "lazy-random")


@dataclass
class Context:
    """What every workload of one point shares: the point, the in-memory source and a scratch dir."""

    point: Point
    source: Any  # anndata.AnnData, fully in memory
    workdir: Path
    seed: int = 0
    cold: bool = True
    last_cold: bool = False

    @property
    def on_disk(self) -> Path:
        """Where the store's files live on this machine (for http: the directory nginx serves)."""
        return self.workdir / ("data.h5ad" if self.point.api == "h5ad" else "store.zarr")

    @property
    def output(self) -> Path | str:
        """What the point's backend opens: a path, an s3:// prefix, or the http:// URL of `on_disk`."""
        protocol = stores.protocol_of(self.point.store)
        if protocol == "s3":
            bucket = os.environ.get(S3_BUCKET_ENV, "harness")
            prefix = "/".join(p for p in (os.environ.get(S3_PREFIX_ENV, ""), f"{self.workdir.parent.name}-{self.workdir.name}") if p)
            return f"s3://{bucket}/{prefix}/store.zarr"
        if protocol == "http":
            root, url = Path(os.environ[HTTP_ROOT_ENV]), os.environ[HTTP_URL_ENV].rstrip("/")
            return f"{url}/{self.on_disk.absolute().relative_to(root.absolute()).as_posix()}"
        return self.on_disk

    @property
    def write_target(self) -> tuple[str, Path | str]:
        """(backend, target) writes go through: http is read-only, so its store is written to disk."""
        if stores.protocol_of(self.point.store) == "http":
            return "local", self.on_disk
        return self.point.store, self.output

    @property
    def measured_at(self) -> Path | str:
        """What footprint and cache eviction look at: the files on disk, or the S3 prefix."""
        return self.output if stores.protocol_of(self.point.store) == "s3" else self.on_disk


def pipeline_for(point: Point, workload: str) -> str:
    """The pipeline zarr is configured with while a workload runs.

    anndata-default emulates a user without zarrs: write_zarr/read_zarr get Fused (what anndata 0.13
    switches to), read_lazy keeps zarr's default. anndata-default+zarrs leaves zarr's default in place
    so that anndata itself switches write_zarr/read_zarr to zarrs, as it does for users.
    """
    if point.baseline == "anndata-default":
        return "fused" if workload in ("write", "read") else "python"
    if point.baseline == "anndata-default+zarrs":
        return "python"
    return point.pipeline


def zarr_config(point: Point, workload: str):
    """The zarr (and dask) settings the point means, as a context (the runtime's own `settings`)."""
    if point.api == "h5ad":
        return nullcontext()
    return runtime_config(point, workload).settings()


def runtime_config(point: Point, workload: str = "write") -> IOConfig:
    """The production config equal to a matrix point: the harness measures what the runtime applies."""
    return IOConfig(store=point.store, loop=point.loop, pipeline=pipeline_for(point, workload), codec=point.codec,
                    sharding=point.sharding, consolidated=point.consolidated == "on",
                    concurrency=int(point.concurrency), cache=point.cache, knobs=point.knobs, filters=point.filters,
                    align_dask=point.input == "dask-aligned", client=point.client)


def write_input(ctx: Context) -> Any:
    """What the write call is given: a fresh copy for write_zarr/write_h5ad, which convert strings
    to categoricals in place (FACTS: trap); the source itself for write_dispatched. Untimed."""
    if ctx.point.input != "memory":
        from .daskinput import as_dask

        return as_dask(ctx.source)  # building the dask graph is untimed; computing it is part of the write
    return ctx.source if ctx.point.api == "dispatched" else dataframes_copied(ctx.source)


def dataframes_copied(adata: Any) -> Any:
    """An AnnData sharing `adata`'s matrices with its own obs/var (and raw.var): what write_zarr and
    write_h5ad change in place. A full `.copy()` would hold the matrices twice (at 1M cells, 6 GB more)."""
    import anndata as ad

    raw = None
    if adata.raw is not None:
        raw = ad.AnnData(X=adata.raw.X, var=adata.raw.var.copy(), varm=dict(adata.raw.varm))
    return ad.AnnData(X=adata.X, obs=adata.obs.copy(), var=adata.var.copy(), uns=dict(adata.uns), obsm=dict(adata.obsm),
                      varm=dict(adata.varm), layers=dict(adata.layers), obsp=dict(adata.obsp), varp=dict(adata.varp), raw=raw)


def write_store(ctx: Context, adata: Any) -> None:
    """Write `adata` to `ctx.output` the way the point says (the timed part of `write`)."""
    import anndata as ad

    point = ctx.point
    backend, target = ctx.write_target
    if point.api == "h5ad":
        adata.write_h5ad(target)
    elif point.api == "anndata":
        ad.io.write_zarr(stores.open_store(backend, target, client=point.client), adata)
    else:
        replace(runtime_config(point, "write"), store=backend).write(adata, target)


def read_store(ctx: Context):
    import anndata as ad

    if ctx.point.api == "h5ad":
        return ad.io.read_h5ad(ctx.on_disk)
    if ctx.point.api == "anndata":
        return ad.io.read_zarr(stores.open_store(ctx.point.store, ctx.output, read_only=True, client=ctx.point.client))
    # IOConfig.read uses read_elem: read_zarr without the pipeline switch anndata applies inside it (FACTS: trap)
    return runtime_config(ctx.point, "read").read(ctx.output)


def open_lazy(ctx: Context):
    import anndata as ad

    if ctx.point.api == "h5ad":
        import h5py

        return ad.experimental.read_lazy(h5py.File(ctx.on_disk, "r"))
    if ctx.point.api == "anndata":
        import zarr

        store = stores.open_store(ctx.point.store, ctx.output, read_only=True, client=ctx.point.client)
        return ad.experimental.read_lazy(zarr.open_group(store, mode="r"))
    return runtime_config(ctx.point, "lazy-open").read_lazy(ctx.output)


class Workload:
    """Base class: subclasses define `run` and `verify`."""

    name: ClassVar[str]
    writes: ClassVar[bool] = False
    opens_group: ClassVar[bool] = True  # opens the root group: without consolidated metadata that lists the store

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.result: Any = None
        self.metrics: dict[str, float] = {}

    @classmethod
    def unsupported_reason(cls, point: Point) -> str | None:
        """Why this workload cannot run for `point` at all (the worker records it as unsupported, asv skips
        it in setup), or None."""
        if (cls.opens_group and point.api != "h5ad" and point.consolidated == "off"
                and stores.protocol_of(point.store) == "http"):
            return HTTP_NEEDS_CONSOLIDATED
        return None

    def config(self):
        return zarr_config(self.ctx.point, self.name)

    def reset(self) -> None:
        """Untimed, before each repeat: evict the store from the page cache for cold reads."""
        if self.ctx.cold:
            self.ctx.last_cold = stores.drop_page_cache(self.ctx.measured_at)

    def run(self) -> None:
        raise NotImplementedError

    def verify(self) -> None:
        raise NotImplementedError


class Write(Workload):
    name = "write"
    writes = True
    opens_group = False  # creates it (HTTP points write to the served directory)

    def reset(self) -> None:
        stores.remove(self.ctx.measured_at)
        self.input = write_input(self.ctx)

    def run(self) -> None:
        write_store(self.ctx, self.input)

    def verify(self) -> None:
        with zarr_config(self.ctx.point, "read"):
            verify.assert_anndata_equal(read_store(self.ctx), self.ctx.source, "written store")


class Read(Workload):
    name = "read"

    def run(self) -> None:
        self.result = read_store(self.ctx)

    def verify(self) -> None:
        verify.assert_anndata_equal(self.result, self.ctx.source, "read")


class LazyOpen(Workload):
    name = "lazy-open"

    def run(self) -> None:
        self.result = open_lazy(self.ctx)

    def verify(self) -> None:
        if self.result.shape != self.ctx.source.shape:
            raise verify.VerificationError(f"read_lazy shape {self.result.shape} != {self.ctx.source.shape}")
        if list(self.result.obs_names) != list(self.ctx.source.obs_names):
            raise verify.VerificationError("read_lazy obs_names differ from the source")


class LazySubset(Workload):
    """Open lazily, select rows, materialise the subset (X, layers, obsm, obs) with `to_memory()`."""

    def rows(self) -> Any:
        raise NotImplementedError

    def run(self) -> None:
        self.result = open_lazy(self.ctx)[self.rows()].to_memory()

    def verify(self) -> None:
        verify.assert_anndata_equal(self.result, self.ctx.source[self.rows()], self.name)


class LazyRows(LazySubset):
    name = "lazy-rows"

    def rows(self) -> slice:
        n = self.ctx.source.n_obs
        count = max(1, min(n // 4, 5_000))
        start = n // 3
        return slice(start, min(n, start + count))


class LazyRandom(LazySubset):
    name = "lazy-random"

    def rows(self) -> np.ndarray:
        n = self.ctx.source.n_obs
        rng = np.random.default_rng(self.ctx.seed)
        return np.sort(rng.choice(n, size=max(1, min(n // 4, 500)), replace=False))


class LazyObs(Workload):
    name = "lazy-obs"

    def run(self) -> None:
        self.result = open_lazy(self.ctx).obs.to_memory()

    def verify(self) -> None:
        verify.assert_frame_equal(self.result, self.ctx.source.obs, "lazy obs")


class LazyGene(Workload):
    name = "lazy-gene"

    def gene(self) -> str:
        return str(self.ctx.source.var_names[self.ctx.source.n_vars // 2])

    def run(self) -> None:
        self.result = verify.to_numpy(open_lazy(self.ctx)[:, self.gene()].X)

    def verify(self) -> None:
        verify.assert_matrix_equal(self.result, self.ctx.source[:, self.gene()].X, "one gene")


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
                yield start, X[start:start + STREAM_BATCH_ROWS]
        elif self.mode == "sync":
            X = open_x(self.ctx)
            for start in starts:
                yield start, X[start:start + STREAM_BATCH_ROWS]
        else:
            yield from stream_async(self.ctx, starts)

    def verify(self) -> None:
        X = self.ctx.source.X
        n = self.ctx.source.n_obs
        seen = [start for start, _ in self.result]
        if sorted(seen) != list(range(0, n, STREAM_BATCH_ROWS)):
            raise verify.VerificationError(f"{self.name}: batches {len(seen)} read, {len(set(seen))} distinct, "
                                           f"{len(range(0, n, STREAM_BATCH_ROWS))} expected (rows lost or read twice)")
        for start, check in self.result:
            want = batch_checksum(X[start:start + STREAM_BATCH_ROWS])
            if check[:2] != want[:2] or check[3] != want[3] or not np.isclose(check[2], want[2], rtol=1e-9):
                raise verify.VerificationError(f"{self.name}: batch at row {start} differs from the source "
                                               f"(rows, nnz, sum, index sum) {check} != {want}")


def open_x(ctx: Context) -> Any:
    """X through anndata's sync API: a backed sparse dataset, or the zarr/h5py array when dense."""
    import anndata as ad

    if ctx.point.api == "h5ad":
        import h5py

        group = h5py.File(ctx.on_disk, "r")
    else:
        import zarr

        group = zarr.open_group(runtime_config(ctx.point, "read").open_store(ctx.output, read_only=True), mode="r")
    node = group["X"]
    return ad.io.sparse_dataset(node) if node.attrs.get("encoding-type", "").endswith("_matrix") else node


def stream_async(ctx: Context, starts: list[int]):
    """Run zarr's async API on a loop of the point's kind; yield batches in completion order."""
    import asyncio
    import queue
    import threading

    if ctx.point.api == "h5ad":
        from .errors import UnsupportedPoint

        raise UnsupportedPoint(ASYNC_NEEDS_ZARR)
    out: queue.Queue = queue.Queue(maxsize=STREAM_IN_FLIGHT * 2)
    done = object()

    def runner() -> None:
        try:
            if ctx.point.loop == "uvloop":
                import uvloop

                uvloop.run(_produce(ctx, starts, out))
            else:
                asyncio.run(_produce(ctx, starts, out))
            out.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
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

    store = runtime_config(ctx.point, "read").open_store(ctx.output, read_only=True)
    group = await za.open_group(store=store, mode="r")
    node = await group.getitem("X")
    encoding = node.attrs.get("encoding-type", "")
    limit = asyncio.Semaphore(STREAM_IN_FLIGHT)
    loop = asyncio.get_running_loop()
    if encoding.endswith("_matrix"):
        if encoding != "csr_matrix":
            from .errors import UnsupportedPoint

            raise UnsupportedPoint(f"stream-async reads row batches of CSR matrices; X is {encoding}")
        data, indices, indptr_array = [await node.getitem(k) for k in ("data", "indices", "indptr")]
        indptr = np.asarray(await indptr_array.getitem(slice(None)))
        n_vars = int(node.attrs["shape"][1])

        async def fetch(start: int):
            stop = min(start + STREAM_BATCH_ROWS, len(indptr) - 1)
            lo, hi = int(indptr[start]), int(indptr[stop])
            async with limit:
                values, cols = await asyncio.gather(data.getitem(slice(lo, hi)), indices.getitem(slice(lo, hi)))
            return start, sp.csr_matrix((values, cols, indptr[start:stop + 1] - lo), shape=(stop - start, n_vars))
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
    return type(f"Stream{mode.title()}{'Shuffled' if shuffled else ''}", (Stream,), {"name": name, "mode": mode, "shuffled": shuffled})


STREAM_MODES = ("sync", "async", "dask")
STREAMS = [_stream_class(mode, shuffled) for shuffled in (False, True) for mode in STREAM_MODES]


REGISTRY: dict[str, type[Workload]] = {
    cls.name: cls for cls in (Write, Read, LazyOpen, LazyRows, LazyRandom, LazyObs, LazyGene, *STREAMS)
}
assert tuple(REGISTRY) == WORKLOADS
