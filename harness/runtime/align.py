"""Dask-backed AnnData (X and layers as dask arrays, as from `read_lazy`): the chunk alignment that
keeps their writes from rewriting shards.

anndata writes a dask sparse matrix chunk by chunk, appending each to the one before: an append that
ends inside a shard rewrites that shard (read-modify-write; measured 3.2x slower with auto sharding,
anndata#2598). A dense dask array is stored chunk by chunk concurrently, and concurrent writers to
one shard can lose data (zarr-python PR #3683). Aligning the dask row chunks to the policy's shard
rows avoids both. A policy of `auto` or `none` has no shard rows to align to: the input is left as is.
"""

from __future__ import annotations

from typing import Any

from .sharding import Policy


def is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.")


def shard_rows(policy: Policy, sparse: bool) -> int | None:
    """Rows per shard the policy asks for (rows-RxK: R*K rows), or None when the policy has none."""
    rule = policy.sparse if sparse else policy.dense
    return rule.rows * rule.per_shard if rule.kind == "rows" else None


def align(adata: Any, policy: Policy) -> tuple[Any, dict[str, tuple[int, int]]]:
    """`adata` with every dask X/layer rechunked to whole shards; returns it and {element: (old, new)} rows."""
    changed: dict[str, tuple[int, int]] = {}
    elements = [("X", adata.X), *((f"layers/{k}", v) for k, v in adata.layers.items() if k is not None)]
    if not any(is_dask(value) for _, value in elements):
        return adata, changed
    adata = adata.copy()
    for name, value in elements:
        if not is_dask(value):
            continue
        sparse = hasattr(value._meta, "nnz")
        rows = shard_rows(policy, sparse)
        if not rows or value.chunks[0][0] % rows == 0 and all(c % rows == 0 for c in value.chunks[0][:-1]):
            continue
        target = max(rows, (value.chunks[0][0] // rows) * rows)  # whole shards, never smaller than one
        aligned = value.rechunk({0: target})
        changed[name] = (value.chunks[0][0], target)
        if name == "X":
            adata.X = aligned
        else:
            adata.layers[name.removeprefix("layers/")] = aligned
    return adata, changed
