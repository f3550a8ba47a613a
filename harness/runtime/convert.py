"""Larger-than-memory writes: X and layers written through dask, every task owning whole shards.

Several writers of one shard lose data (a partial-shard write is read-modify-write of the whole shard:
zarr-python #3682, dask #12583), and a sparse matrix appended chunk by chunk rewrites shards (anndata
#2598). So the destination arrays are created first with the config's codecs and shards, their shard
lengths are read back (zarr's `auto` included), and each task writes whole shards of one array: for CSR/
CSC `data` and `indices` the ranges are in non-zeros (located in the source through `indptr`), for dense
arrays in rows; `indptr` is one task. A task holds one shard's source slice and its encoded copy, so the
memory per worker is bounded by the shard size (1 GB at most with `auto`), not by the matrix. `verify`
then compares every shard range of the destination with the source (CRC-32 of the bytes).

The tasks are dask.delayed: threads locally, the cluster's workers when a dask.distributed Client is
active. The small elements (obs, var, uns, obsm, ...) are written as usual, then metadata consolidated.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .sharding import SPARSE_ENCODINGS, dataset_kwargs_for
from .sparse import create_leaf, create_sparse

if TYPE_CHECKING:
    from .config import IOConfig


def is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")


# --- sources: where a task reads its slice ----------------------------------------------------------
@dataclass(frozen=True)
class FileSource:
    """An element of an .h5ad file or a zarr store, read slice by slice (picklable: a path and a key)."""

    path: str
    key: str

    def _open(self) -> Any:
        if Path(self.path).suffix in (".h5ad", ".h5", ".hdf5"):
            import h5py

            return h5py.File(self.path, "r")[self.key]
        import zarr

        return zarr.open_group(self.path, mode="r", use_consolidated=False)[self.key]

    def describe(self) -> dict[str, Any]:
        node = self._open()
        encoding = node.attrs.get("encoding-type", "array")
        if isinstance(encoding, bytes):
            encoding = encoding.decode()
        if encoding in SPARSE_ENCODINGS:
            shape = tuple(int(s) for s in node.attrs["shape"])
            dtypes = {p: node[p].dtype for p in ("data", "indices", "indptr")}
            return {"encoding": encoding, "shape": shape, "dtypes": dtypes, "nnz": int(node["data"].shape[0])}
        return {"encoding": "array", "shape": tuple(int(s) for s in node.shape), "dtype": node.dtype}

    def indptr(self) -> Any:
        import numpy as np

        return np.asarray(self._open()["indptr"][:])

    def part(self, name: str, start: int, stop: int, indptr: Any = None) -> Any:
        import numpy as np

        node = self._open()
        return np.asarray(node[name][start:stop] if name else node[start:stop])


class DaskSource:
    """A dask array of X or a layer (e.g. from `read_lazy`): sparse slices come from the rows holding them.

    A plain class, not a dataclass: dask.delayed would unpack a dataclass's fields and compute the whole
    array before the task runs."""

    def __init__(self, array: Any) -> None:
        if array.ndim == 2 and array.numblocks[1] > 1:
            array = array.rechunk({1: -1})  # whole rows per block: indptr and row slices need them
        self.array = array

    @property
    def sparse(self) -> bool:
        return hasattr(self.array._meta, "nnz")

    def describe(self) -> dict[str, Any]:
        shape = tuple(int(s) for s in self.array.shape)
        if not self.sparse:
            return {"encoding": "array", "shape": shape, "dtype": self.array.dtype}
        encoding = "csc_matrix" if getattr(self.array._meta, "format", "csr") == "csc" else "csr_matrix"
        first = self.array.blocks[(0,) * self.array.ndim].compute()
        dtypes = {"data": first.data.dtype, "indices": first.indices.dtype, "indptr": first.indptr.dtype}
        return {"encoding": encoding, "shape": shape, "dtypes": dtypes}

    def indptr(self) -> Any:
        """One pass over the blocks (each computed and dropped): the non-zeros of every row."""
        import dask
        import numpy as np

        counts = dask.compute(*[dask.delayed(_row_nnz)(b) for b in self.array.to_delayed().ravel()])
        return np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)

    def part(self, name: str, start: int, stop: int, indptr: Any = None) -> Any:
        import numpy as np

        if not name:
            return np.asarray(self.array[start:stop].compute())
        if name == "indptr":
            return indptr[start:stop]
        first = int(np.searchsorted(indptr, start, "right")) - 1
        last = int(np.searchsorted(indptr, stop, "left"))
        block = self.array[first:last].compute()
        offset = start - int(indptr[first])
        return getattr(block, name)[offset : offset + stop - start]


def _row_nnz(block: Any) -> Any:
    import numpy as np

    return np.diff(block.indptr)


# --- the plan: arrays to fill, ranges of whole shards -------------------------------------------------
@dataclass(frozen=True)
class Fill:
    """One task: elements [start, stop) of one array (`element`/`part`, part "" for a dense element)."""

    element: str
    part: str
    start: int
    stop: int

    @property
    def path(self) -> str:
        return f"{self.element}/{self.part}" if self.part else self.element


def ranges(length: int, step: int) -> Iterator[tuple[int, int]]:
    for start in range(0, length, max(1, step)):
        yield start, min(length, start + step)


def shard_length(array: Any) -> int:
    """Elements per shard along axis 0 (per chunk when unsharded)."""
    return int((array.shards or array.chunks)[0])


def _create(cfg: IOConfig, group: Any, element: str, info: dict[str, Any]) -> dict[str, Any]:
    """The destination arrays of one element, created empty with the config's layout; {part: array}."""
    from .sharding import Policy

    policy: Policy = cfg.sharding
    matrix = "X" if element == "X" else "layers"
    if info["encoding"] in SPARSE_ENCODINGS:
        proxy = SimpleNamespace(shape=info["shape"], nnz=info["nnz"], dtype=info["dtypes"]["data"])
        layout = dataset_kwargs_for(policy, info["encoding"], proxy, {})
        return create_sparse(
            group,
            element,
            info["encoding"],
            info["shape"],
            info["dtypes"],
            info["nnz"],
            layout,
            data=cfg.codec.for_data(matrix),
            index=cfg.codec.index,
            filters=cfg.filters,
            index_dtype=cfg.indices,
        )
    proxy = SimpleNamespace(shape=info["shape"], dtype=info["dtype"])
    layout = dataset_kwargs_for(policy, "array", proxy, {})
    array = create_leaf(
        group, element, layout, shape=info["shape"], dtype=info["dtype"], compressors=cfg.codec.dense.build()
    )
    array.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    return {"": array}


@dataclass
class Plan:
    """What `write_streamed` writes: the tasks (whole shards unless `partition` forces other ranges) and,
    per array, its length and elements per shard."""

    fills: list[Fill]
    arrays: dict[tuple[str, str], tuple[int, int]]  # (element, part) -> (length, elements per shard)

    def shard_ranges(self) -> list[Fill]:
        """Every shard of every array as a range (indptr whole): what `verify` checks."""
        return [
            Fill(element, part, a, b)
            for (element, part), (length, shard) in self.arrays.items()
            for a, b in (ranges(length, shard) if part != "indptr" else [(0, length)])
        ]


def plan(arrays: dict[str, dict[str, Any]], partition: int | None = None) -> Plan:
    """One task per shard of every array (`partition`: ranges of that many elements instead, e.g. misaligned)."""
    fills, sizes = [], {}
    for element, parts in arrays.items():
        for part, array in parts.items():
            length, shard = int(array.shape[0]), shard_length(array)
            sizes[(element, part)] = (length, shard)
            step = length if part == "indptr" else partition or shard
            fills += [Fill(element, part, a, b) for a, b in ranges(length, step)]
    return Plan(fills, sizes)


# --- the tasks ---------------------------------------------------------------------------------------
def _fill(cfg: IOConfig, caller: int, target: Any, fill: Fill, source: Any, indptr: Any) -> int:
    """Write one range; returns the bytes written (uncompressed). Activates the config on a cluster worker."""
    import zarr

    with _on_worker(cfg, caller):
        values = source.part(fill.part, fill.start, fill.stop, indptr)
        array = zarr.open_array(cfg.open_store(target), path=fill.path, mode="r+")
        array[fill.start : fill.stop] = values.astype(array.dtype, copy=False)
    return int(values.nbytes)


def _checksum(cfg: IOConfig, caller: int, target: Any, fill: Fill, source: Any, indptr: Any) -> str | None:
    """None when the destination's range equals the source's, else what differs."""
    import zarr

    with _on_worker(cfg, caller):
        expected = source.part(fill.part, fill.start, fill.stop, indptr)
        array = zarr.open_array(cfg.open_store(target, read_only=True), path=fill.path, mode="r")
        got = array[fill.start : fill.stop].astype(expected.dtype, copy=False)
    if zlib.crc32(expected.tobytes()) == zlib.crc32(got.tobytes()):
        return None
    wrong = int((expected != got).sum()) if expected.shape == got.shape else "all"
    return f"{fill.path}[{fill.start}:{fill.stop}]: {wrong} values differ from the source"


def _on_worker(cfg: IOConfig, caller: int):
    """In another process than the caller's (a dask.distributed worker) the config's settings must be set
    there; in the caller's threads they already are."""
    return cfg.activate() if os.getpid() != caller else nullcontext()


# --- what IOConfig.write and `harness convert` call -------------------------------------------------------
@dataclass
class Streamed:
    plan: Plan
    sources: dict[str, Any]
    indptrs: dict[str, Any]
    bytes_written: int

    def task_args(self, fill: Fill) -> tuple[Any, Any]:
        """A task's source and the indptr it needs (only a dask source locates non-zeros through it)."""
        source = self.sources[fill.element]
        return source, (self.indptrs.get(fill.element) if isinstance(source, DaskSource) else None)


def write_streamed(
    cfg: IOConfig, shell: Any, sources: dict[str, Any], target: Any, *, partition: int | None = None
) -> Streamed:
    """Write `shell` (an in-memory AnnData without the streamed elements) as usual, then every element of
    `sources` ({"X" or "layers/NAME": FileSource | DaskSource}) through dask, whole shards per task."""
    import dask
    import zarr

    dataclasses.replace(cfg, consolidated=False).write(shell, target)
    infos = {}
    indptrs: dict[str, Any] = {}
    for element, source in sources.items():
        info = source.describe()
        if info["encoding"] in SPARSE_ENCODINGS:
            indptrs[element] = source.indptr()
            info["nnz"] = int(indptrs[element][-1])
        infos[element] = info
    with cfg.activate() as active:
        group = zarr.open_group(active.open_store(target), mode="r+")
        if "layers" in [k.split("/")[0] for k in sources] and "layers" not in group:
            group.create_group("layers").attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})
        arrays = {element: _create(active, group, element, info) for element, info in infos.items()}
        streamed = Streamed(plan(arrays, partition), sources, indptrs, 0)
        streamed.bytes_written = sum(
            dask.compute(
                *[
                    dask.delayed(_fill)(active, os.getpid(), target, f, *streamed.task_args(f))
                    for f in streamed.plan.fills
                ]
            )
        )
        if cfg.consolidated:
            zarr.consolidate_metadata(active.open_store(target))
    return streamed


def verify(cfg: IOConfig, target: Any, streamed: Streamed) -> list[str]:
    """Every shard of every streamed array against the source (CRC-32); [] when all are equal."""
    import dask

    with cfg.activate() as active:
        found = dask.compute(
            *[
                dask.delayed(_checksum)(active, os.getpid(), target, f, *streamed.task_args(f))
                for f in streamed.plan.shard_ranges()
            ]
        )
    return [m for m in found if m]


def streamed_sources(adata: Any) -> dict[str, Any]:
    """The dask-backed X and layers of an AnnData, as sources: dense arrays and CSR matrices (a dask CSC
    matrix has no row blocks to locate non-zeros in; it is computed with the small elements)."""
    elements = {"X": adata.X, **{f"layers/{k}": v for k, v in adata.layers.items() if k is not None}}
    return {
        name: DaskSource(value)
        for name, value in elements.items()
        if is_dask(value) and getattr(value._meta, "format", "csr") == "csr"
    }


def shell_of(adata: Any, streamed: dict[str, Any]) -> Any:
    """An in-memory AnnData of everything but the streamed elements (obs, var, uns, obsm, ... computed)."""
    import anndata as ad

    def memory(x: Any) -> Any:
        to_memory = getattr(x, "to_memory", None)
        if to_memory is not None:
            return to_memory()
        return x.compute() if is_dask(x) else x

    layers = {k: memory(v) for k, v in adata.layers.items() if k is not None and f"layers/{k}" not in streamed}
    shell = ad.AnnData(
        X=None if "X" in streamed else memory(adata.X),
        obs=memory(adata.obs),
        var=memory(adata.var),
        uns=dict(adata.uns),
        obsm={k: memory(v) for k, v in adata.obsm.items()},
        varm={k: memory(v) for k, v in adata.varm.items()},
        obsp={k: memory(v) for k, v in adata.obsp.items()},
        varp={k: memory(v) for k, v in adata.varp.items()},
        layers=layers,
    )
    return shell
