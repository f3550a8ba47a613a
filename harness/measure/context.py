"""What every workload of one point shares: the point, the in-memory source, where its store lives,
and the anndata calls that write, read and open it the way the point says.

A matrix point goes through `IOConfig` (the runtime), so the configuration measured is the one a
user applies; baselines call anndata's own entry points (`write_zarr`, `read_zarr`, `read_lazy`).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..matrix import Input, Point
from ..runtime import Pipeline, Protocol, Store
from ..runtime.config import Api
from ..runtime.loader import LoaderSpec

#: Environment the runner sets for workers of remote points (see harness.measure.servers).
S3_BUCKET_ENV, HTTP_ROOT_ENV, HTTP_URL_ENV = "HARNESS_S3_BUCKET", "HARNESS_HTTP_ROOT", "HARNESS_HTTP_URL"
S3_PREFIX_ENV = "HARNESS_S3_PREFIX"  # a user's prefix inside the bucket (`--store s3://bucket/prefix`)
DASK_ROWS = 1000  # row chunks of dask-backed input (read_lazy's default order of magnitude)


@dataclass
class Context:
    """What every workload of one point shares: the point, the in-memory source and a scratch dir."""

    point: Point
    source: Any  # anndata.AnnData, fully in memory
    workdir: Path
    seed: int = 0
    cold: bool = True
    last_cold: bool = False
    loader: LoaderSpec = field(default_factory=LoaderSpec)  # batch, runs and preload of the loader workloads
    procs: int = 1  # loader processes at once on the store

    @property
    def protocol(self) -> Protocol:
        return self.point.config.store.protocol

    @property
    def on_disk(self) -> Path:
        """Where the store's files live on this machine (for http: the directory nginx serves)."""
        return self.workdir / ("data.h5ad" if self.point.api == "h5ad" else "store.zarr")

    @property
    def output(self) -> Path | str:
        """What the point's backend opens: a path, an s3:// prefix, or the http:// URL of `on_disk`."""
        if self.protocol is Protocol.S3:
            bucket = os.environ.get(S3_BUCKET_ENV, "harness")
            prefix = "/".join(
                p for p in (os.environ.get(S3_PREFIX_ENV, ""), f"{self.workdir.parent.name}-{self.workdir.name}") if p
            )
            return f"s3://{bucket}/{prefix}/store.zarr"
        if self.protocol is Protocol.HTTP:
            root, url = Path(os.environ[HTTP_ROOT_ENV]), os.environ[HTTP_URL_ENV].rstrip("/")
            return f"{url}/{self.on_disk.absolute().relative_to(root.absolute()).as_posix()}"
        return self.on_disk

    @property
    def write_target(self) -> tuple[Store, Path | str]:
        """(store, target) writes go through: a read-only protocol's store is written to the served disk."""
        if not self.point.config.store.supports_writes:
            return Store.LOCAL, self.on_disk
        return self.point.config.store, self.output

    @property
    def measured_at(self) -> Path | str:
        """What footprint and cache eviction look at: the files on disk, or the S3 prefix."""
        return self.output if self.protocol is Protocol.S3 else self.on_disk


def pipeline_for(point: Point, workload: str) -> Pipeline:
    """The pipeline zarr is configured with while a workload runs.

    anndata-default emulates a user without zarrs: write_zarr/read_zarr get Fused (what anndata 0.13
    switches to), read_lazy keeps zarr's default. anndata-default+zarrs leaves zarr's default in place
    so that anndata itself switches write_zarr/read_zarr to zarrs, as it does for users.
    """
    if point.baseline == "anndata-default":
        return Pipeline.FUSED if workload in ("write", "read") else Pipeline.PYTHON
    if point.baseline == "anndata-default+zarrs":
        return Pipeline.PYTHON
    return point.config.pipeline


def zarr_config(point: Point, workload: str):
    """The zarr (and dask) settings the point means, as a context: the runtime's own `settings`, and for
    anndata's own calls the pipeline a user of that baseline has (`pipeline_for`)."""
    if point.api == "h5ad":
        return nullcontext()
    stack = point.config.settings()
    if point.config.api is Api.ANNDATA:
        import zarr

        stack.enter_context(zarr.config.set({"codec_pipeline.path": pipeline_for(point, workload).path}))
    return stack


def as_dask(adata: Any, rows: int = DASK_ROWS) -> Any:
    """A copy of `adata` whose X and layers are dask arrays of `rows`-row chunks (sparse chunks stay sparse)."""
    import dask.array as da

    out = adata.copy()
    out.X = da.from_array(adata.X, chunks=(rows, -1), asarray=False)
    for key in [k for k in adata.layers.keys() if k is not None]:  # anndata 0.13 lists X as layers[None]
        out.layers[key] = da.from_array(adata.layers[key], chunks=(rows, -1), asarray=False)
    return out


def write_input(ctx: Context) -> Any:
    """What the write call is given: a fresh copy for write_zarr/write_h5ad, which convert strings
    to categoricals in place (FACTS: trap); the source itself for write_dispatched. Untimed."""
    if ctx.point.input is not Input.MEMORY:
        return as_dask(ctx.source)  # building the dask graph is untimed; computing it is part of the write
    return ctx.source if ctx.point.api == "dispatched" else dataframes_copied(ctx.source)


def dataframes_copied(adata: Any) -> Any:
    """An AnnData sharing `adata`'s matrices with its own obs/var (and raw.var): what write_zarr and
    write_h5ad change in place. A full `.copy()` would hold the matrices twice (at 1M cells, 6 GB more)."""
    import anndata as ad

    raw = None
    if adata.raw is not None:
        raw = ad.AnnData(X=adata.raw.X, var=adata.raw.var.copy(), varm=dict(adata.raw.varm))
    return ad.AnnData(
        X=adata.X,
        obs=adata.obs.copy(),
        var=adata.var.copy(),
        uns=dict(adata.uns),
        obsm=dict(adata.obsm),
        varm=dict(adata.varm),
        layers=dict(adata.layers),
        obsp=dict(adata.obsp),
        varp=dict(adata.varp),
        raw=raw,
    )


def write_store(ctx: Context, adata: Any) -> None:
    """Write `adata` to `ctx.output` the way the point says (the timed part of `write`)."""
    store, target = ctx.write_target
    if ctx.point.api == "h5ad":
        adata.write_h5ad(target)
    elif ctx.point.api == "annbatch":
        _write_annbatch(replace(ctx.point.config, store=store), adata, target)
    else:
        replace(ctx.point.config, store=store).write(adata, target)


def _write_annbatch(cfg: Any, adata: Any, target: Any) -> None:
    """annbatch's own writer (`write_sharded`, its defaults), then consolidated metadata as every point has."""
    import zarr
    from annbatch import write_sharded

    with cfg.activate():
        group = zarr.open_group(cfg.open_store(target), mode="w", zarr_format=3)
        write_sharded(group, adata)
        zarr.consolidate_metadata(group.store)


def read_store(ctx: Context) -> Any:
    """Read the whole store: `IOConfig.read` (read_elem: read_zarr without the pipeline switch anndata applies
    inside it, FACTS: trap; read_zarr itself for anndata's own calls)."""
    import anndata as ad

    if ctx.point.api == "h5ad":
        return ad.io.read_h5ad(ctx.on_disk)
    return ctx.point.config.read(ctx.output)


def open_lazy(ctx: Context) -> Any:
    import anndata as ad

    if ctx.point.api == "h5ad":
        import h5py

        return ad.experimental.read_lazy(h5py.File(ctx.on_disk, "r"))
    return ctx.point.config.read_lazy(ctx.output)


def open_x(ctx: Context) -> Any:
    """X through anndata's sync API: a backed sparse dataset, or the zarr/h5py array when dense."""
    import anndata as ad

    if ctx.point.api == "h5ad":
        import h5py

        group = h5py.File(ctx.on_disk, "r")
    else:
        import zarr

        group = zarr.open_group(ctx.point.config.open_store(ctx.output, read_only=True), mode="r")
    node = group["X"]
    return ad.io.sparse_dataset(node) if node.attrs.get("encoding-type", "").endswith("_matrix") else node
