"""Filters for sparse matrices: what runs before the compressor on CSR/CSC arrays.

- `none`: the compressor alone (anndata's layout).
- `delta`: numcodecs Delta on `indices` and `indptr`: sorted column indices within a row and the
  monotone indptr become small differences, which compress far better.
- `shuffle`: numcodecs byte Shuffle (element size = the array's item size) before the compressor on
  `data`, `indices` and `indptr`, as Blosc's shuffle does inside Blosc, for codecs without one.

anndata's write callback sees a sparse matrix as one element, so with a filter the harness writes the
group itself in anndata's format (harness.runtime.sparse).
Whether every reader pipeline can decode a filter is checked by the cross-pipeline round trip before
a filter may be recommended.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from .errors import HarnessError


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
