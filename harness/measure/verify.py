"""Equality checks between what a workload read and the source, by value (not by dtype or repr).

pandas 3 and anndata's lazy readers may change missing-value markers, string dtypes and unused
categories; a benchmark must not fail on those, and must fail on any changed value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import VerificationError


def to_numpy(x: Any) -> Any:
    """Materialise dask / sparse / xarray values into numpy or scipy objects."""
    if hasattr(x, "compute"):
        x = x.compute()
    if hasattr(x, "to_memory"):
        x = x.to_memory()
    return x


def assert_matrix_equal(got: Any, want: Any, what: str) -> None:
    import scipy.sparse as sp

    got, want = to_numpy(got), to_numpy(want)
    if got.shape != want.shape:
        raise VerificationError(f"{what}: shape {got.shape} read back, {want.shape} written")
    if sp.issparse(got) or sp.issparse(want):
        if _same_compressed(got, want):
            return
        a = sp.csr_matrix(got) if sp.issparse(got) else sp.csr_matrix(np.asarray(got))
        b = sp.csr_matrix(want) if sp.issparse(want) else sp.csr_matrix(np.asarray(want))
        if (a != b).nnz:
            raise VerificationError(f"{what}: {(a != b).nnz} values differ from the source")
        return
    if not np.array_equal(np.asarray(got), np.asarray(want), equal_nan=np.asarray(want).dtype.kind == "f"):
        raise VerificationError(f"{what}: values differ from the source")


def _same_compressed(got: Any, want: Any) -> bool:
    """Equal CSR/CSC of one format, compared array by array: no `a != b` matrix (at 1M cells that
    temporary alone is gigabytes). False means "compare by value", not "different"."""
    fmt = getattr(got, "format", None)
    if fmt not in ("csr", "csc") or getattr(want, "format", None) != fmt:
        return False
    return (
        np.array_equal(got.indptr, want.indptr)
        and np.array_equal(got.indices, want.indices)
        and np.array_equal(got.data, want.data, equal_nan=got.data.dtype.kind == "f")
    )


def _column_values(series: pd.Series) -> np.ndarray:
    values = np.array(series.astype(object), dtype=object)
    values[pd.isna(values)] = None
    return values


def assert_frame_equal(got: pd.DataFrame, want: pd.DataFrame, what: str) -> None:
    got = to_numpy(got)
    if list(map(str, got.index)) != list(map(str, want.index)):
        raise VerificationError(f"{what}: index differs from the source")
    missing = set(want.columns) - set(got.columns)
    if missing:
        raise VerificationError(f"{what}: columns {sorted(missing)} missing after read")
    for col in want.columns:
        a, b = _column_values(got[col]), _column_values(want[col])
        if len(a) != len(b) or not bool(np.all(a == b)):
            raise VerificationError(f"{what}: column {col!r} differs from the source")


def assert_anndata_equal(got: Any, want: Any, what: str = "AnnData") -> None:
    """X, layers, obsm, obs and var by value."""
    if got.shape != want.shape:
        raise VerificationError(f"{what}: shape {got.shape} read back, {want.shape} written")
    assert_matrix_equal(got.X, want.X, f"{what}.X")
    for key in want.layers:
        assert_matrix_equal(got.layers[key], want.layers[key], f"{what}.layers[{key!r}]")
    for key in want.obsm:
        assert_matrix_equal(got.obsm[key], want.obsm[key], f"{what}.obsm[{key!r}]")
    assert_frame_equal(got.obs, want.obs, f"{what}.obs")
    assert_frame_equal(got.var, want.var, f"{what}.var")
