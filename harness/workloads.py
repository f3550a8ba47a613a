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

import numpy as np

from . import pipelines, stores, verify
from .matrix import Point
from .runtime import IOConfig

#: Environment the runner sets for workers of remote points (see harness.servers).
S3_BUCKET_ENV, HTTP_ROOT_ENV, HTTP_URL_ENV = "HARNESS_S3_BUCKET", "HARNESS_HTTP_ROOT", "HARNESS_HTTP_URL"

WORKLOADS = ("write", "read", "lazy-open", "lazy-rows", "lazy-random", "lazy-obs", "lazy-gene", "stream")
STREAM_BATCH_ROWS = 1024
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
            return f"s3://{bucket}/{self.workdir.parent.name}-{self.workdir.name}/store.zarr"
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
    import zarr

    if point.api == "h5ad":
        return nullcontext()
    return zarr.config.set({"codec_pipeline.path": pipelines.PIPELINE_PATHS[pipeline_for(point, workload)]})


def runtime_config(point: Point, workload: str = "write") -> IOConfig:
    """The production config equal to a matrix point: the harness measures what the runtime applies."""
    return IOConfig(store=point.store, loop=point.loop, pipeline=pipeline_for(point, workload), codec=point.codec,
                    sharding=point.sharding, consolidated=point.consolidated == "on")


def write_input(ctx: Context) -> Any:
    """What the write call is given: a fresh copy for write_zarr/write_h5ad, which convert strings
    to categoricals in place (FACTS: trap); the source itself for write_dispatched. Untimed."""
    return ctx.source if ctx.point.api == "dispatched" else ctx.source.copy()


def write_store(ctx: Context, adata: Any) -> None:
    """Write `adata` to `ctx.output` the way the point says (the timed part of `write`)."""
    import anndata as ad

    point = ctx.point
    backend, target = ctx.write_target
    if point.api == "h5ad":
        adata.write_h5ad(target)
    elif point.api == "anndata":
        ad.io.write_zarr(stores.open_store(backend, target), adata)
    else:
        replace(runtime_config(point, "write"), store=backend).write(adata, target)


def read_store(ctx: Context):
    import anndata as ad

    if ctx.point.api == "h5ad":
        return ad.io.read_h5ad(ctx.on_disk)
    if ctx.point.api == "anndata":
        return ad.io.read_zarr(stores.open_store(ctx.point.store, ctx.output, read_only=True))
    # IOConfig.read uses read_elem: read_zarr without the pipeline switch anndata applies inside it (FACTS: trap)
    return runtime_config(ctx.point, "read").read(ctx.output)


def open_lazy(ctx: Context):
    import anndata as ad

    if ctx.point.api == "h5ad":
        import h5py

        return ad.experimental.read_lazy(h5py.File(ctx.on_disk, "r"))
    if ctx.point.api == "anndata":
        import zarr

        store = stores.open_store(ctx.point.store, ctx.output, read_only=True)
        return ad.experimental.read_lazy(zarr.open_group(store, mode="r"))
    return runtime_config(ctx.point, "lazy-open").read_lazy(ctx.output)


class Workload:
    """Base class: subclasses define `run` and `verify`."""

    name: ClassVar[str]
    writes: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.result: Any = None

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


class Stream(Workload):
    """A data loader's access: read_lazy, then every row in batches of STREAM_BATCH_ROWS, X only."""

    name = "stream"

    def run(self) -> None:
        X = open_lazy(self.ctx).X
        nnz, total = 0, 0.0
        for start in range(0, X.shape[0], STREAM_BATCH_ROWS):
            batch = verify.to_numpy(X[start:start + STREAM_BATCH_ROWS])
            nnz += int(batch.nnz) if hasattr(batch, "nnz") else int(np.count_nonzero(batch))
            total += float(batch.sum())
        self.result = (nnz, total)

    def verify(self) -> None:
        X = self.ctx.source.X
        want_nnz = int(X.nnz) if hasattr(X, "nnz") else int(np.count_nonzero(X))
        nnz, total = self.result
        if nnz != want_nnz or not np.isclose(total, float(X.sum()), rtol=1e-6):
            raise verify.VerificationError(f"stream: {nnz} non-zeros summing to {total} read, {want_nnz} written")


REGISTRY: dict[str, type[Workload]] = {
    cls.name: cls for cls in (Write, Read, LazyOpen, LazyRows, LazyRandom, LazyObs, LazyGene, Stream)
}
assert tuple(REGISTRY) == WORKLOADS
