"""What a candidate writes, resolved at a given data size: the codec chain and the chunk and shard shape
of every array, from the dataset's shapes alone (nothing is loaded).

Two candidates with the same fingerprint write identical stores and run identically, so only one of
them is measured: zstd level 0 means numcodecs' default level 3 (the same bytes), and two sharding
policies can resolve to the same shapes. A row sample has its own, smaller shapes: candidates that
differ only at full size (e.g. 16 vs 64 chunks per shard, one partial shard either way on a sample)
share one measurement on that sample and are told apart on a larger one or in the verification.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..matrix import Point
from ..runtime.sharding import ROLES, Policy, Rule, dataset_kwargs_for

#: numcodecs' Zstd treats level 0 as "the library default", which is level 3: both write identical bytes.
ZSTD_DEFAULT_LEVEL = 3
MATRIX_GROUPS = ("layers", "obsm", "varm", "obsp", "varp")


class ArraySpec:
    """An array as the sharding policy sees it: shape, dtype and, for a sparse matrix, its non-zeros."""

    def __init__(self, name: str, encoding_type: str, shape: tuple[int, ...], dtype: Any, nnz: int | None = None):
        self.name, self.encoding_type, self.shape, self.dtype = name, encoding_type, tuple(shape), np.dtype(dtype)
        if nnz is not None:
            self.nnz = int(nnz)

    def scaled(self, rows: int, n_obs: int) -> ArraySpec:
        """This array in a random sample of `rows` of `n_obs` rows (obs-indexed arrays shrink; var-indexed do not)."""
        if self.name.startswith(("var", "varm", "varp")) or n_obs == 0:
            return self
        shape = (rows, *self.shape[1:]) if self.shape and self.shape[0] == n_obs else self.shape
        nnz = round(self.nnz * rows / n_obs) if hasattr(self, "nnz") else None
        return ArraySpec(self.name, self.encoding_type, shape, self.dtype, nnz)


@dataclass(frozen=True)
class Shapes:
    """The arrays of a dataset and its number of rows."""

    n_obs: int
    arrays: tuple[ArraySpec, ...]

    def sample(self, rows: int) -> Shapes:
        return Shapes(rows, tuple(a.scaled(rows, self.n_obs) for a in self.arrays))


def dataset_shapes(path: Path) -> Shapes:
    """Shapes of X, layers, obsm/varm/obsp/varp and obs/var columns of an .h5ad or .zarr, from metadata."""
    if Path(path).is_dir():
        import zarr

        root: Any = zarr.open_group(path, mode="r")
        return _shapes(root)
    import h5py

    with h5py.File(path, "r") as root:
        return _shapes(root)


def _shapes(root: Any) -> Shapes:
    arrays = []
    for name in ("X", *(f"{g}/{k}" for g in MATRIX_GROUPS if g in root for k in root[g])):
        if name in root and (spec := _matrix(name, root[name])) is not None:
            arrays.append(spec)
    columns = [spec for frame in ("obs", "var") if frame in root for spec in _leaves(frame, root[frame])]
    index = root["obs"].attrs.get("_index", "_index") if "obs" in root else None
    n_obs = next((s.shape[0] for s in columns if s.name.startswith(f"obs/{index}")), 0)
    return Shapes(int(n_obs), (*arrays, *columns))


def _leaves(prefix: str, node: Any) -> list[ArraySpec]:
    """Every array under a dataframe: columns, and the codes / values / mask arrays of encoded ones."""
    if hasattr(node, "shape"):
        return [ArraySpec(prefix, "array", node.shape, node.dtype)]
    return [spec for key in node for spec in _leaves(f"{prefix}/{key}", node[key])]


def _matrix(name: str, node: Any) -> ArraySpec | None:
    encoding = node.attrs.get("encoding-type", "array")
    if encoding in ("csr_matrix", "csc_matrix"):
        indptr = node["indptr"]
        nnz = int(indptr[-1]) if indptr.shape[0] else 0
        return ArraySpec(name, encoding, tuple(int(s) for s in node.attrs["shape"]), node["data"].dtype, nnz)
    if hasattr(node, "shape"):
        return ArraySpec(name, "array", node.shape, node.dtype)
    return None


def at_sample(point: Point, fraction: float) -> Point:
    """The point as a row sample should measure it: the same chunk sizes and, per array, the same number of
    shards as on the full data, so the sample's shards shrink with it. Parallel pipelines work across
    shards: a layout with 25 shards at full size keeps both cores busy, and a sample written with full-size
    shards (one partial shard) would hide exactly that. anndata's auto sharding is left to itself."""
    if fraction >= 1 or point.api != "dispatched":
        return point
    rules = {role: _scaled(getattr(point.config.sharding, role), fraction) for role in ROLES}
    return (
        point
        if all(rules[r] == getattr(point.config.sharding, r) for r in ROLES)
        else Point(replace(point.config, sharding=Policy(**rules), check=False), point.baseline, point.input)
    )


def _scaled(rule: Rule, fraction: float) -> Rule:
    if rule.kind == "rows":
        return Rule("rows", rule.rows, max(1, round(rule.per_shard * fraction)))
    if rule.kind == "bytes":
        return Rule("bytes", rule.rows, max(rule.rows, round(rule.per_shard * fraction / rule.rows) * rule.rows))
    return rule


def codec_chain(point: Point) -> dict[str, Any]:
    """The compressor of every array role, the filters and the index dtype as written, with numcodecs'
    equivalences applied (zstd 0 == zstd 3)."""
    chain: dict[str, Any] = {"filters": str(point.config.filters), "indices": str(point.config.indices)}
    for role, codec in point.config.codec.roles.items():
        level = ZSTD_DEFAULT_LEVEL if codec.kind == "zstd" and codec.level == 0 else codec.level
        chain[role] = (codec.kind, level, codec.checksum, codec.cname, codec.shuffle)
    return chain


def layout(point: Point, shapes: Shapes) -> list[tuple[str, Any]]:
    """(array, chunks/shards) the point's sharding policy gives every array at these shapes."""
    if point.api != "dispatched":
        return [("*", f"{point.api}:{point.baseline}")]  # anndata's own writer (or h5ad): its own layout
    out = []
    for spec in shapes.arrays:
        kwargs = dataset_kwargs_for(point.config.sharding, spec.encoding_type, spec, {})
        out.append((spec.name, {k: v for k, v in sorted(kwargs.items())} or "auto"))
    return out


#: IOConfig fields that change how fast a store is written and read, not what is written: on 100k zarr's Python and
#: Fused pipelines wrote byte-identical stores and zarrs stores within 0.27 % of theirs, for every codec and layout of
#: the tune's space (the `--validate-search full` grid), so one write gives the bytes of them all.
RUNTIME_ONLY = ("loop", "pipeline", "concurrency", "cache", "knobs", "client")
#: The pipelines that measurement covers. The GPU pipeline (zarr on GPU buffers) was not measured: its stores count
#: as its own.
SAME_BYTES_PIPELINES = frozenset({"python", "fused", "zarrs"})


def _digest(ident: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


def store_fingerprint(point: Point, shapes: Shapes) -> str:
    """Equal for two points that write the same store at these shapes, however they run (`RUNTIME_ONLY`)."""
    kept = {
        k: str(v) for k, v in point.config.to_dict().items() if k not in ("codec", "sharding", "filters", *RUNTIME_ONLY)
    }
    pipeline = str(point.config.pipeline)
    writer = "cpu" if pipeline in SAME_BYTES_PIPELINES else pipeline
    return _digest(
        {
            "config": kept,
            "writer": writer,
            "input": str(point.input),
            "codec": codec_chain(point),
            "layout": layout(point, shapes),
        }
    )


def fingerprint(point: Point, shapes: Shapes) -> str:
    """Equal for two points that write identical stores at these shapes and run identically."""
    runs = {k: str(v) for k, v in point.config.to_dict().items() if k in RUNTIME_ONLY}
    return _digest({"store": store_fingerprint(point, shapes), "runs": runs})
