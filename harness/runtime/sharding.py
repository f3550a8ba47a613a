"""Sharding policies: from (element, encoding type) to zarr `chunks` / `shards`.

A policy is stated in data-relative units and converted to element counts from the actual array at
write time: `rows-RxK` (R rows per inner chunk, K chunks per shard; for CSR/CSC a row is the mean number
of non-zeros per row, so a policy tuned on a sample transfers to the full dataset) or `bytes-C-S`
(inner chunks of C bytes, shards of S bytes, uncompressed, e.g. bytes-4m-64m). Elements fall into three
roles, each with its own rule:

- ``sparse``: `csr_matrix` / `csc_matrix` (applied to their data, indices and indptr arrays),
- ``dense``: arrays with two or more dimensions (dense X, layers, obsm, varm),
- ``columns``: one-dimensional arrays (dataframe columns, categorical codes, string arrays).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .codecs import Codecs
from .errors import HarnessError
from .filters import Filter
from .sparse import IndexDtype, write_sparse

ROLES = ("sparse", "dense", "columns")
MAX_SHARD_BYTES = 1 << 30  # anndata's auto sharding targets 1 GB shards for the same reason
MAX_SHARDS_PER_ARRAY = 1000
NAMED_POLICIES = ("none", "auto", "guide-example")
_ROWS = re.compile(r"^rows-(?P<rows>\d+)x(?P<per_shard>\d+)$")
_BYTES = re.compile(r"^bytes-(?P<chunk>\d+[kmg])-(?P<shard>\d+[kmg])$")
UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

#: Encoding types whose leaves take `chunks` / `shards` (others are containers).
LEAF_ENCODINGS = {"array", "string-array", "csr_matrix", "csc_matrix"}
SPARSE_ENCODINGS = {"csr_matrix", "csc_matrix"}


@dataclass(frozen=True)
class Rule:
    """How one role is sharded: `none`, `auto`, `guide-example`, `rows` (rows per chunk, chunks per shard)
    or `bytes` (bytes per chunk, bytes per shard)."""

    kind: str
    rows: int = 0  # rows per chunk, or bytes per chunk
    per_shard: int = 0  # chunks per shard, or bytes per shard

    @property
    def name(self) -> str:
        if self.kind == "rows":
            return f"rows-{self.rows}x{self.per_shard}"
        if self.kind == "bytes":
            return f"bytes-{_size(self.rows)}-{_size(self.per_shard)}"
        return self.kind


def _size(nbytes: int) -> str:
    unit = next(u for u in ("g", "m", "k") if nbytes % UNITS[u] == 0)
    return f"{nbytes // UNITS[unit]}{unit}"


@dataclass(frozen=True)
class Policy:
    """A sharding policy: one rule per role. Its `name` round-trips through `parse_policy`."""

    sparse: Rule
    dense: Rule
    columns: Rule

    @property
    def name(self) -> str:
        rules = {role: getattr(self, role).name for role in ROLES}
        if len(set(rules.values())) == 1:
            return rules["sparse"]
        return "+".join(f"{role}:{rule}" for role, rule in rules.items())

    @property
    def uses_auto(self) -> bool:
        """True when any role leaves sharding to anndata's auto sharding."""
        return any(getattr(self, r).kind in {"auto", "guide-example"} for r in ROLES)


def _parse_rule(text: str) -> Rule:
    if text in NAMED_POLICIES:
        return Rule(text)
    if m := _ROWS.match(text):
        rows, per_shard = int(m["rows"]), int(m["per_shard"])
        if rows < 1 or per_shard < 1:
            raise HarnessError(f"sharding rule {text!r}: rows and chunks per shard must be >= 1")
        return Rule("rows", rows, per_shard)
    if m := _BYTES.match(text):
        chunk, shard = (int(m[k][:-1]) * UNITS[m[k][-1]] for k in ("chunk", "shard"))
        if chunk < 1 or shard < chunk:
            raise HarnessError(f"sharding rule {text!r}: chunks need at least 1 byte, and a shard at least one chunk")
        return Rule("bytes", chunk, shard)
    raise HarnessError(
        f"unknown sharding policy {text!r}; valid: {', '.join(NAMED_POLICIES)}, "
        "rows-<rows per chunk>x<chunks per shard> (e.g. rows-4096x16), bytes-<chunk>-<shard> (e.g. bytes-4m-64m), "
        "or per role: sparse:<rule>+dense:<rule>+columns:<rule>"
    )


def parse_policy(text: Any) -> Policy:
    """Parse `auto`, `rows-4096x16` or `sparse:rows-4096x16+columns:auto` (missing roles: auto)."""
    if isinstance(text, Policy):
        return text
    text = str(text)
    if ":" not in text:
        rule = _parse_rule(text)
        return Policy(rule, rule, rule)
    rules = {role: Rule("auto") for role in ROLES}
    for part in text.split("+"):
        role, _, rule = part.partition(":")
        if role not in ROLES:
            raise HarnessError(f"unknown role {role!r} in sharding policy {text!r}; valid: {', '.join(ROLES)}")
        rules[role] = _parse_rule(rule)
    return Policy(**rules)


def _role(encoding_type: str, elem: Any) -> str:
    if encoding_type in SPARSE_ENCODINGS:
        return "sparse"
    return "dense" if len(getattr(elem, "shape", ())) >= 2 else "columns"


def _guide_example(encoding_type: str, elem: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The callback from anndata's zarr-v3 guide, shapes verbatim."""
    if encoding_type == "array":
        kwargs = {"shards": tuple(int(2 ** (16 / len(elem.shape))) for _ in elem.shape), **kwargs}
        kwargs["chunks"] = tuple(i // 2 for i in kwargs["shards"])
    elif encoding_type in SPARSE_ENCODINGS:
        kwargs = {"shards": (2**16,), "chunks": (2**8,), **kwargs}
    return kwargs


def _rows_shapes(
    rule: Rule, role: str, encoding_type: str, elem: Any
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Convert a `rows` or `bytes` rule into (chunks, shards) element counts; None for empty arrays."""
    rest = tuple(int(s) for s in elem.shape[1:]) if role == "dense" else ()
    row_bytes = max(1, math.prod(rest) * _itemsize(elem))  # a sparse "row" here is one element
    if role == "sparse":
        major = elem.shape[0] if encoding_type == "csr_matrix" else elem.shape[1]
        nnz = _nnz(elem)
        if nnz == 0 or major == 0:
            return None
        rows = round(rule.rows * nnz / major) if rule.kind == "rows" else rule.rows // row_bytes
        chunk, total = max(1, min(nnz, rows)), nnz
    else:
        shape = tuple(int(s) for s in elem.shape)
        if not shape or min(shape) == 0:
            return None
        rows = rule.rows if rule.kind == "rows" else max(1, rule.rows // row_bytes)
        chunk, total = min(rows, shape[0]), shape[0]
    per_shard = rule.per_shard if rule.kind == "rows" else max(1, rule.per_shard // max(1, chunk * row_bytes))
    chunk, per_shard = _guard(chunk, per_shard, total, row_bytes)
    return (chunk, *rest), (chunk * per_shard, *rest)


def _nnz(elem: Any) -> int:
    """Non-zeros of a sparse matrix; for a dask array of sparse chunks, estimated from its first block
    (the policy only needs the mean per row, and computing every block would read the input twice)."""
    if hasattr(elem, "nnz"):
        return int(elem.nnz)
    first = elem.blocks[(0,) * elem.ndim].compute()
    return round(first.nnz * elem.shape[0] / max(1, first.shape[0]))


def _itemsize(elem: Any) -> int:
    dtype = getattr(elem, "dtype", None)
    size = getattr(dtype, "itemsize", 0) or 8  # object / string columns: count 8 bytes per entry
    sparse = hasattr(elem, "nnz") or hasattr(getattr(elem, "_meta", None), "nnz")
    return max(size, 4) if sparse else size  # sparse: indices are at least 4 bytes


def _guard(chunk: int, per_shard: int, total: int, row_bytes: int) -> tuple[int, int]:
    """Guard rails: a shard fits in MAX_SHARD_BYTES uncompressed (it is built in memory), an array
    has at most MAX_SHARDS_PER_ARRAY shards (file count), and a shard never outgrows the array."""
    row_bytes = max(1, row_bytes)
    chunk = max(1, min(chunk, total, MAX_SHARD_BYTES // row_bytes))
    chunks_total = math.ceil(total / chunk)
    per_shard = max(per_shard, math.ceil(chunks_total / MAX_SHARDS_PER_ARRAY))
    per_shard = min(per_shard, chunks_total, max(1, MAX_SHARD_BYTES // (chunk * row_bytes)))
    return chunk, per_shard


def dataset_kwargs_for(policy: Policy, encoding_type: str, elem: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The `dataset_kwargs` the policy gives one element (containers pass through unchanged)."""
    kwargs = dict(kwargs)
    if encoding_type not in LEAF_ENCODINGS:
        return kwargs
    rule = getattr(policy, _role(encoding_type, elem))
    if rule.kind == "auto":
        return kwargs
    if rule.kind == "none":
        return {**kwargs, "shards": None}
    if rule.kind == "guide-example":
        return _guide_example(encoding_type, elem, kwargs)
    shapes = _rows_shapes(rule, _role(encoding_type, elem), encoding_type, elem)
    if shapes is None:
        return {**kwargs, "shards": None}
    chunks, shards = shapes
    return {**kwargs, "chunks": chunks, "shards": shards}


def make_callback(
    policy: Policy, codecs: Codecs, *, filters: Filter = Filter.NONE, index_dtype: IndexDtype = IndexDtype.DEFAULT
) -> Callable[..., None]:
    """A `write_dispatched` callback applying the policy and the codec of each array's role to every leaf
    array. A sparse matrix whose values and indices take different codecs, with a filter or with the
    minimal index dtype is written by the harness (harness.runtime.sparse), in anndata's format."""

    def callback(func, group, key, elem, dataset_kwargs, iospec):  # signature fixed by anndata
        encoding = iospec.encoding_type
        kwargs = dataset_kwargs_for(policy, encoding, elem, dataset_kwargs)
        if encoding in SPARSE_ENCODINGS:
            data = codecs.for_data(_matrix_of(group, key))
            if filters is not Filter.NONE or data != codecs.index or index_dtype is IndexDtype.MINIMAL:
                write_sparse(
                    group,
                    key,
                    elem,
                    encoding,
                    kwargs,
                    data=data,
                    index=codecs.index,
                    filters=filters,
                    index_dtype=index_dtype,
                )
                return
            kwargs["compressors"] = data.build()
        elif encoding in LEAF_ENCODINGS:
            kwargs["compressors"] = (codecs.dense if _role(encoding, elem) == "dense" else codecs.columns).build()
        func(group, key, elem, dataset_kwargs=kwargs)

    return callback


def _matrix_of(group: Any, key: str) -> str:
    """`X`, `layers` or another name: which matrix a sparse element being written is."""
    path = f"{getattr(group, 'path', '') or ''}/{key}".strip("/")
    return "X" if path == "X" else "layers" if path.startswith("layers/") else path.split("/", 1)[0]
