"""Fuzzed round trips: hypothesis draws AnnData objects and configs from the matrix; every write, read
back under every reader pipeline (and anndata's read_zarr), is equal to the source or fails loudly.

Examples hypothesis once found are kept below as `@example`s, so they run on every test run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import harness.runtime.pipelines as rpipelines
from harness.errors import UnsupportedPoint
from harness.matrix import Point, invalid_reason
from harness.measure import context, verify
from harness.runtime import element_keys, zarrs_obstore_unsafe

READERS = [p for p in ("python", "fused", "zarrs") if not rpipelines.unavailable_reason(p)]
COLUMN_KINDS = ("categorical", "string", "nullable-int", "bool", "float")
# control characters are refused loudly by obstore (tested below), so names here are printable unicode
names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/"),
    min_size=1,
    max_size=4,
)


def _column(kind: str, n: int, rng: np.random.Generator) -> pd.Series | pd.Categorical | np.ndarray:
    if kind == "categorical":
        return pd.Categorical(rng.choice(["a", "β", "c"], size=n))
    if kind == "string":
        return np.array([f"s{i}ü" for i in rng.integers(0, 5, size=n)], dtype=object)
    if kind == "nullable-int":
        values = pd.array(rng.integers(-3, 3, size=n), dtype="Int64")
        values[rng.random(n) < 0.3] = pd.NA
        return values
    if kind == "bool":
        return rng.random(n) < 0.5
    return rng.normal(size=n)


@st.composite
def anndatas(draw: st.DrawFn):
    import anndata as ad

    n_obs, n_vars = draw(st.integers(1, 12)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    layout = draw(st.sampled_from(["csr", "csc", "dense"]))
    dtype = draw(st.sampled_from(["float32", "float64", "int32"]))
    density = draw(st.sampled_from([0.0, 0.3, 1.0]))  # 0.0: zero non-zeros
    dense = (rng.random((n_obs, n_vars)) < density) * rng.integers(1, 50, size=(n_obs, n_vars))
    X = dense.astype(dtype)
    X = sp.csr_matrix(X) if layout == "csr" else sp.csc_matrix(X) if layout == "csc" else X
    prefix = draw(names)
    obs = pd.DataFrame(index=[f"{prefix}{i}" for i in range(n_obs)])
    for i, kind in enumerate(draw(st.lists(st.sampled_from(COLUMN_KINDS), max_size=3))):  # may stay empty
        obs[f"{draw(names)}_{i}"] = _column(kind, n_obs, rng)
    var = pd.DataFrame(index=[f"g{draw(names)}{j}" for j in range(n_vars)])
    uns = {"empty": np.array([], dtype="float64")} if draw(st.booleans()) else {}
    return ad.AnnData(X=X, obs=obs, var=var, uns=uns)


configs = st.builds(
    Point.of,
    store=st.sampled_from(["local", "obstore"]),
    pipeline=st.sampled_from(READERS),
    codec=st.sampled_from(["zstd-0", "blosc-lz4-bitshuffle", "none"]),
    sharding=st.sampled_from(["none", "auto", "rows-4x2"]),
    consolidated=st.sampled_from(["on", "off"]),
    filters=st.sampled_from(["none", "none", "delta", "shuffle"]),
)


def round_trip(adata, point: Point, workdir: Path) -> None:
    """Write with the point, read back with every reader; equal, or a loud exception (never a wrong value)."""
    import anndata as ad

    ctx = context.Context(point, adata, workdir)
    refused = (
        bool(zarrs_obstore_unsafe(element_keys(adata))) and point.axis("store") == "obstore"
    )  # the runtime's guard
    try:
        with context.zarr_config(point, "write"):
            context.write_store(ctx, adata.copy())
    except UnsupportedPoint:
        assert refused and point.axis("pipeline") == "zarrs"
        return
    for reader in READERS:
        reader_ctx = replace(ctx, point=point.with_axes(pipeline=reader))
        if refused and reader == "zarrs":  # would read fill values: must be refused, loudly
            with (
                pytest.raises(UnsupportedPoint, match="silently reads fill values"),
                context.zarr_config(reader_ctx.point, "read"),
            ):
                context.read_store(reader_ctx)
            continue
        with context.zarr_config(reader_ctx.point, "read"):
            got = context.read_store(reader_ctx)
        verify.assert_anndata_equal(got, adata, f"read by {reader}")
        assert type(got.X) is type(adata.X), f"read by {reader}: {type(got.X).__name__} for {type(adata.X).__name__}"
        assert set(got.uns) == set(adata.uns) and all(got.uns[k].shape == adata.uns[k].shape for k in adata.uns)
    with context.zarr_config(point.with_axes(pipeline="python"), "read"):
        verify.assert_anndata_equal(ad.io.read_zarr(ctx.on_disk), adata, "read_zarr")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(adata=anndatas(), point=configs)
def test_fuzzed_round_trips_are_equal(adata, point: Point) -> None:
    assume(invalid_reason(point) is None)  # e.g. a sparse filter with anndata's auto sharding
    with TemporaryDirectory() as tmp:
        round_trip(adata, point, Path(tmp))


@pytest.mark.parametrize("case", ["one-row", "zero-nnz-csc", "empty-obs-unicode", "found-zarrs-obstore-brace"])
def test_edge_cases_round_trip(case: str, tmp_path: Path) -> None:
    import anndata as ad

    if case == "one-row":
        adata = ad.AnnData(X=sp.csr_matrix(np.array([[0, 3, 0]], dtype="float32")))
    elif case == "zero-nnz-csc":
        adata = ad.AnnData(X=sp.csc_matrix((4, 5), dtype="float32"))
    elif case == "empty-obs-unicode":
        adata = ad.AnnData(X=np.ones((2, 2), dtype="int32"), obs=pd.DataFrame(index=["ζ", "日本"]))
    else:  # hypothesis found it: zarrs over obstore read an obs column named '{_0' as zeros
        adata = ad.AnnData(
            X=np.ones((3, 1), dtype="float32"), obs=pd.DataFrame({"{_0": [1.4, -0.7, 0.4]}, index=["a", "b", "c"])
        )
    adata.obs_names = adata.obs_names.astype(str)
    adata.var_names = adata.var_names.astype(str)
    store = "obstore" if case.startswith("found") else "local"
    round_trip(adata, Point.of(store=store, pipeline="fused", sharding="rows-4x2"), tmp_path)


def test_control_characters_in_names_fail_loudly_on_obstore(tmp_path: Path) -> None:
    import anndata as ad

    adata = ad.AnnData(X=np.ones((2, 1), dtype="float32"), obs=pd.DataFrame({"\x1f_0": [1.0, 2.0]}, index=["a", "b"]))
    point = Point.of(store="obstore", pipeline="fused")
    with pytest.raises(ValueError, match="illegal character"), context.zarr_config(point, "write"):
        context.write_store(context.Context(point, adata, tmp_path), adata.copy())
