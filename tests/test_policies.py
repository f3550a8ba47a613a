from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.runtime.sharding import dataset_kwargs_for, parse_policy


def _csr(n_rows: int, n_cols: int, per_row: int) -> sp.csr_matrix:
    indptr = np.arange(n_rows + 1) * per_row
    indices = np.tile(np.arange(per_row), n_rows)
    return sp.csr_matrix((np.ones(n_rows * per_row, np.float32), indices, indptr), shape=(n_rows, n_cols))


def test_rows_policy_converts_rows_to_nonzeros_for_csr() -> None:
    X = _csr(1000, 50, per_row=10)  # 10 non-zeros per row
    kwargs = dataset_kwargs_for(parse_policy("rows-100x4"), "csr_matrix", X, {})
    assert kwargs["chunks"] == (1000,)  # 100 rows x 10 nnz per row
    assert kwargs["shards"] == (4000,)


def test_rows_policy_uses_columns_for_csc() -> None:
    X = _csr(1000, 50, per_row=10).tocsc()  # 10_000 nnz over 50 columns = 200 per column
    kwargs = dataset_kwargs_for(parse_policy("rows-5x2"), "csc_matrix", X, {})
    assert kwargs["chunks"] == (1000,)
    assert kwargs["shards"] == (2000,)


def test_rows_policy_keeps_full_width_for_dense_and_clips_to_the_array() -> None:
    kwargs = dataset_kwargs_for(parse_policy("rows-64x16"), "array", np.zeros((100, 7)), {})
    assert kwargs["chunks"] == (64, 7)
    assert kwargs["shards"] == (128, 7)  # only two chunks fit 100 rows


def test_guide_example_is_verbatim() -> None:
    policy = parse_policy("guide-example")
    dense = dataset_kwargs_for(policy, "array", np.zeros((10, 10)), {})
    assert dense == {"shards": (256, 256), "chunks": (128, 128)}
    column = dataset_kwargs_for(policy, "array", np.zeros(10), {})
    assert column == {"shards": (65536,), "chunks": (32768,)}
    sparse = dataset_kwargs_for(policy, "csr_matrix", _csr(10, 10, 2), {})
    assert sparse == {"shards": (2**16,), "chunks": (2**8,)}


def test_none_disables_anndata_auto_sharding_and_auto_leaves_it() -> None:
    assert dataset_kwargs_for(parse_policy("none"), "array", np.zeros(5), {}) == {"shards": None}
    assert dataset_kwargs_for(parse_policy("auto"), "array", np.zeros(5), {}) == {}


def test_per_role_policy_applies_each_rule_to_its_role() -> None:
    policy = parse_policy("sparse:rows-10x2+columns:none")
    assert policy.dense.kind == "auto"
    assert dataset_kwargs_for(policy, "string-array", np.array(["a", "b"], dtype=object), {}) == {"shards": None}
    assert "chunks" in dataset_kwargs_for(policy, "csr_matrix", _csr(100, 10, 3), {})
    with pytest.raises(HarnessError, match="unknown role"):
        parse_policy("genes:rows-1x1")


def test_containers_pass_through() -> None:
    assert dataset_kwargs_for(parse_policy("rows-10x2"), "dataframe", None, {"x": 1}) == {"x": 1}


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 5000),
    per_shard=st.integers(1, 64),
    n=st.integers(1, 3000),
    width=st.integers(1, 40),
    per_row=st.integers(1, 20),
)
def test_shards_are_always_whole_multiples_of_chunks(
    rows: int, per_shard: int, n: int, width: int, per_row: int
) -> None:
    policy = parse_policy(f"rows-{rows}x{per_shard}")
    for enc, elem in (
        ("array", np.zeros((n, width))),
        ("array", np.zeros(n)),
        ("csr_matrix", _csr(n, per_row, per_row)),
    ):
        kwargs = dataset_kwargs_for(policy, enc, elem, {})
        for chunk, shard in zip(kwargs["chunks"], kwargs["shards"], strict=True):
            assert chunk >= 1 and shard % chunk == 0


def test_edge_shapes_empty_rows_one_row_and_arrays_smaller_than_a_chunk() -> None:
    policy = parse_policy("rows-4096x16")
    X = _csr(10, 5, per_row=2)
    X = sp.vstack([X, sp.csr_matrix((5, 5), dtype=np.float32)]).tocsr()  # five empty rows
    kwargs = dataset_kwargs_for(policy, "csr_matrix", X, {})
    assert kwargs["chunks"] == (20,) and kwargs["shards"] == (20,)  # clipped to the 20 non-zeros
    assert dataset_kwargs_for(policy, "csr_matrix", sp.csr_matrix((4, 4)), {}) == {"shards": None}
    assert dataset_kwargs_for(policy, "array", np.zeros((1, 10)), {}) == {"chunks": (1, 10), "shards": (1, 10)}
    assert dataset_kwargs_for(policy, "array", np.zeros(0), {}) == {"shards": None}


def test_guard_rails_bound_shard_memory_and_file_count() -> None:
    from harness.runtime import sharding

    wide = np.zeros((3, 1), dtype=np.float64)
    huge = type("Huge", (), {"shape": (10_000_000, 50_000), "dtype": np.dtype("float32")})()
    kwargs = dataset_kwargs_for(parse_policy("rows-100000x64"), "array", huge, {})
    shard_bytes = kwargs["shards"][0] * 50_000 * 4
    assert shard_bytes <= sharding.MAX_SHARD_BYTES
    column = type("Col", (), {"shape": (10_000_000,), "dtype": np.dtype("int32")})()
    kwargs = dataset_kwargs_for(parse_policy("rows-10x1"), "array", column, {})
    assert math.ceil(10_000_000 / kwargs["shards"][0]) <= sharding.MAX_SHARDS_PER_ARRAY
    assert kwargs["shards"][0] % kwargs["chunks"][0] == 0
    # never a shard larger than the array needs: 3 rows in chunks of 2 -> 2 chunks per shard at most
    assert dataset_kwargs_for(parse_policy("rows-2x8"), "array", wide, {}) == {"chunks": (2, 1), "shards": (4, 1)}
