"""Filters for sparse matrices: what runs before the compressor on CSR/CSC arrays.

- `none`: the compressor alone (anndata's layout).
- `delta`: numcodecs Delta on `indices` and `indptr`: sorted column indices within a row and the
  monotone indptr become small differences, which compress far better.
- `shuffle`: numcodecs byte Shuffle (element size = the array's item size) before the compressor on
  `data`, `indices` and `indptr`, as Blosc's shuffle does inside Blosc, for codecs without one.

anndata's write callback sees a sparse matrix as one element, so with a filter the harness writes the
group itself in anndata's format (encoding-type, encoding-version, shape; data, indices, indptr).
Whether every reader pipeline can decode a filter is checked by the cross-pipeline round trip before
a filter may be recommended.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from .errors import HarnessError

SPARSE_PARTS = ("data", "indices", "indptr")


class Filter(StrEnum):
    NONE = "none"
    DELTA = "delta"
    SHUFFLE = "shuffle"

    @classmethod
    def parse(cls, text: Any) -> Filter:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown filter {text!r}; valid: {', '.join(cls)}") from None


def part_codecs(name: Filter, part: str, dtype: Any, compressors: Any) -> dict[str, Any]:
    """`filters` / `compressors` kwargs for one array of a sparse matrix."""
    from zarr.codecs.numcodecs import Delta, Shuffle

    compressors = list(compressors) if isinstance(compressors, (list, tuple)) else [compressors] if compressors else []
    if name is Filter.DELTA and part in ("indices", "indptr"):
        return {"filters": [Delta(dtype=str(dtype))], "compressors": compressors}
    if name is Filter.SHUFFLE:
        return {"filters": None, "compressors": [Shuffle(elementsize=dtype.itemsize), *compressors]}
    return {"compressors": compressors}


def write_sparse(
    group: Any, key: str, elem: Any, encoding_type: str, kwargs: dict[str, Any], name: Filter, compressors: Any
) -> None:
    """Write a CSR/CSC matrix as anndata does, with the filter applied per part."""
    target = group.create_group(key, overwrite=True)
    target.attrs.update(
        {"encoding-type": encoding_type, "encoding-version": "0.1.0", "shape": [int(s) for s in elem.shape]}
    )
    layout = {k: v for k, v in kwargs.items() if k in ("chunks", "shards")}
    for part in SPARSE_PARTS:
        values = getattr(elem, part)
        extra = (
            dict(layout) if part != "indptr" and layout.get("chunks") else {}
        )  # indptr: one chunk, as small as it is
        if extra.get("shards") is None:
            extra.pop("shards", None)
        target.create_array(part, data=values, **extra, **part_codecs(name, part, values.dtype, compressors))
