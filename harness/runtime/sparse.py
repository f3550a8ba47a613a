"""The harness's own CSR/CSC writer, in anndata's format (encoding-type, encoding-version, shape; data,
indices, indptr), for what anndata's sparse writer cannot do: it gives all three arrays the same codec
and no filters. Used when a matrix's values and its indices take different codecs, with a filter, or
with the minimal index dtype; every reader pipeline and anndata's read_zarr read the result back (the
cross-pipeline round trip checks that before anything is recommended)."""

from __future__ import annotations

from contextlib import nullcontext
from enum import StrEnum
from typing import Any

from .codecs import CodecSpec
from .errors import HarnessError
from .filters import Filter, part_codecs

PARTS = ("data", "indices", "indptr")


class IndexDtype(StrEnum):
    """The dtype of CSR/CSC `indices`: as the matrix has them (int32 or int64), or the smallest unsigned
    integer that holds the minor axis (uint16 for up to 65,535 genes), as anndata's
    `write_csr_csc_indices_with_min_possible_dtype` setting does."""

    DEFAULT = "default"
    MINIMAL = "minimal"

    @classmethod
    def parse(cls, text: Any) -> IndexDtype:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown index dtype {text!r}; valid: {', '.join(cls)}") from None


def minimal_dtype(minor_size: int) -> Any:
    import numpy as np

    for dtype in (np.uint8, np.uint16, np.uint32):
        if minor_size <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def write_sparse(
    group: Any,
    key: str,
    elem: Any,
    encoding_type: str,
    layout: dict[str, Any],
    *,
    data: CodecSpec,
    index: CodecSpec,
    filters: Filter = Filter.NONE,
    index_dtype: IndexDtype = IndexDtype.DEFAULT,
) -> None:
    """Write a CSR/CSC matrix as anndata does, with a codec for its values, one for indices and indptr,
    the filter per part, and the index dtype asked for."""
    shape = [int(s) for s in elem.shape]
    target = _sparse_group(group, key, encoding_type, shape)
    for part in PARTS:
        values = getattr(elem, part)
        dtype, compressors = _part_encoding(part, values.dtype, shape, encoding_type, data, index, filters, index_dtype)
        create_leaf(
            target, part, layout, one_chunk=part == "indptr", data=values.astype(dtype, copy=False), **compressors
        )


def create_sparse(
    group: Any,
    key: str,
    encoding_type: str,
    shape: tuple[int, int],
    dtypes: dict[str, Any],
    nnz: int,
    layout: dict[str, Any],
    *,
    data: CodecSpec,
    index: CodecSpec,
    filters: Filter = Filter.NONE,
    index_dtype: IndexDtype = IndexDtype.DEFAULT,
) -> dict[str, Any]:
    """The arrays `write_sparse` would write for a matrix of this shape, nnz and dtypes (per part), created
    empty for tasks to fill shard by shard (harness.runtime.convert); returns {part: zarr array}."""
    target = _sparse_group(group, key, encoding_type, [int(s) for s in shape])
    major = shape[0] if encoding_type == "csr_matrix" else shape[1]
    lengths = {"data": nnz, "indices": nnz, "indptr": major + 1}
    out = {}
    for part in PARTS:
        dtype, compressors = _part_encoding(part, dtypes[part], shape, encoding_type, data, index, filters, index_dtype)
        out[part] = create_leaf(
            target, part, layout, one_chunk=part == "indptr", shape=(lengths[part],), dtype=dtype, **compressors
        )
    return out


def _sparse_group(group: Any, key: str, encoding_type: str, shape: list[int]) -> Any:
    target = group.create_group(key, overwrite=True)
    target.attrs.update({"encoding-type": encoding_type, "encoding-version": "0.1.0", "shape": shape})
    return target


def _part_encoding(
    part: str,
    dtype: Any,
    shape: Any,
    encoding_type: str,
    data: CodecSpec,
    index: CodecSpec,
    filters: Filter,
    index_dtype: IndexDtype,
) -> tuple[Any, dict[str, Any]]:
    """A part's dtype (`part_dtype`) and its codecs: the values' codec for `data`, the index codec for
    `indices` and `indptr`, each with the filter for that part."""
    dtype = part_dtype(part, dtype, index_dtype, shape, encoding_type)
    return dtype, part_codecs(filters, part, dtype, (data if part == "data" else index).build())


def part_dtype(part: str, dtype: Any, index_dtype: IndexDtype, shape: Any, encoding_type: str) -> Any:
    """The dtype a CSR/CSC part is written with: its own, or for `indices` the minimal one if asked."""
    import numpy as np

    if part == "indices" and index_dtype is IndexDtype.MINIMAL:
        return minimal_dtype(int(shape[encoding_type == "csr_matrix"]))
    return np.dtype(dtype)


def create_leaf(group: Any, name: str, layout: dict[str, Any], *, one_chunk: bool = False, **kwargs: Any) -> Any:
    """`group.create_array(name, **kwargs)` with a policy's layout (`dataset_kwargs_for`): its chunks and
    shards, or, where the policy left the shards to anndata, anndata's auto sharding. `one_chunk` (a
    sparse matrix's indptr) takes zarr's default chunking whatever the layout says."""
    if "shards" not in layout:
        with _auto_shard_size():
            return group.create_array(name, shards="auto", **kwargs)
    chunking = {k: v for k, v in layout.items() if k in ("chunks", "shards") and v is not None}
    return group.create_array(name, **({} if one_chunk or not chunking.get("chunks") else chunking), **kwargs)


def _auto_shard_size():
    """anndata's auto sharding: zarr's `shards="auto"` aiming at 1 GB shards (unless the user set a target)."""
    import zarr

    if isinstance(zarr.config.get("array.target_shard_size_bytes", None), int):
        return nullcontext()
    return zarr.config.set({"array.target_shard_size_bytes": 1_000_000_000})
