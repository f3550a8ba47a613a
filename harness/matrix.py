"""The matrix: every axis as data, one frozen `Point` per combination, and the validity rules.

A `Point` is an `IOConfig` (what production applies) plus the settings only a measurement has: the
named baseline recipe it follows, if any, and the kind of input the write is given. Axis values are
text at the boundary (CLI, point ids, result rows) and typed inside (`IOConfig`'s parsers). This is
the single definition imported by the CLI, the runner, asv suites and tune. Rules that depend on the
machine (is zarrs installed, is there CUDA) are answered without importing zarr.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from .errors import HarnessError
from .runtime import IOConfig, Pipeline, Protocol, Store
from .runtime.codecs import all_codec_names
from .runtime.config import text_of
from .runtime.pipelines import unavailable_reason


class Input(StrEnum):
    """What a write is given: numpy/scipy in memory, or dask arrays (written chunk by chunk by anndata, or whole
    shards per task by runtime.convert)."""

    MEMORY = "memory"
    DASK = "dask"
    DASK_ALIGNED = "dask-aligned"

    @classmethod
    def parse(cls, text: Any) -> Input:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown input {text!r}; valid: {', '.join(cls)}") from None


#: The baselines that are anndata's own calls (write_zarr / read_zarr / read_lazy), without and with zarrs.
ANNDATA_BASELINES = ("anndata-default", "anndata-default+zarrs")
#: annbatch's writer (`write_sharded`), read on zarr's Fused pipeline or on zarrs (annbatch's advice for local stores).
ANNBATCH_BASELINES = ("annbatch", "annbatch+zarrs")
BASELINES = (*ANNDATA_BASELINES, "guide-example", "h5ad", "annbatch", "anndata-default-v2", "annbatch+zarrs")
#: The baselines a sweep measures unless told otherwise (annbatch's writer is an optional extra).
DEFAULT_BASELINES = BASELINES[:4]
#: Settings of a baseline recipe that are not matrix axes (they follow from the baseline's name).
RECIPE_SETTINGS: dict[str, dict[str, Any]] = {
    "anndata-default": {"api": "anndata"},
    "anndata-default+zarrs": {"api": "anndata"},
    "anndata-default-v2": {"api": "anndata", "zarr_format": 2},
}
#: A training loader's epochs (harness.measure.loaders): their rows depend on batch, runs, preload and processes.
LOADER_WORKLOADS = (
    "stream-blocks",
    "stream-blocks-sync",
    "stream-random-rows",
    "stream-random-rows-sync",
    "stream-annbatch",
)
#: Workload names (harness.measure.workloads defines them; reports order their columns by this).
WORKLOADS = (
    "write",
    "read",
    "lazy-open",
    "lazy-rows",
    "lazy-random",
    "lazy-obs",
    "lazy-gene",
    "stream-sync",
    "stream-async",
    "stream-dask",
    "stream-sync-shuffled",
    "stream-async-shuffled",
    "stream-dask-shuffled",
    *LOADER_WORKLOADS,
)
DEFAULT_WORKLOADS = ("write", "read", "lazy-rows", "lazy-random")

#: What each axis means, for `harness matrix --help` and the README. The order is the order of point ids.
AXES: dict[str, str] = {
    "store": "store backend: local (zarr LocalStore), fsspec (FsspecStore on local files), obstore (ObjectStore over obstore LocalStore), "
    "s3-fsspec / s3-obstore (S3 on a loopback server), http-fsspec / http-obstore (nginx on loopback, read-only), "
    "gds (kvikio's GDSStore: GPUDirect Storage; needs CUDA and kvikio)",
    "loop": "event loop of zarr's I/O thread: asyncio or uvloop (installed before the first zarr call, verified)",
    "pipeline": "codec pipeline: python (zarr's BatchedCodecPipeline), fused (zarr's FusedCodecPipeline), zarrs (Rust), gpu",
    "codec": "compressor: none, zstd-<level>[-checksum], blosc-<lz4|zstd>-<shuffle|bitshuffle|noshuffle>",
    "sharding": "sharding policy: none, auto (anndata's), guide-example (zarr-v3 guide), rows-<R>x<K>, or per role sparse:..+dense:..+columns:..",
    "consolidated": "consolidated metadata after writing: on or off",
    "concurrency": "zarr's async.concurrency: requests (and chunk tasks) in flight per call (default 10)",
    "cache": "read cache over the store: none, memory-<size> or disk-<size> (zarr's CacheStore; remote stores only)",
    "knobs": "pipeline knobs: default, or name=value joined by + (zarrs-workers, zarrs-chunk-min, zarrs-chunk-max, "
    "zarrs-checksums, zarrs-direct-io: zarrs only; batch-size: python only; dask-workers: threads computing "
    "read_lazy arrays, any pipeline)",
    "filters": "filter on sparse matrices before the compressor: none, delta (indices and indptr), shuffle (byte shuffle)",
    "input": "what the write is given: memory (numpy/scipy) or dask (X and layers as dask arrays of 1000-row chunks); "
    "dask-aligned writes them whole shards per dask task (what IOConfig.write does by default, runtime.convert)",
    "indices": "dtype of CSR/CSC indices: default (as the matrix has them) or minimal (the smallest unsigned integer "
    "that holds the minor axis, e.g. uint16 for 20,000 genes)",
    "client": "client-library options that change requests: default, s3fs-no-head (s3-fsspec: one GET per whole object, "
    "no HEAD before it)",
}
CONFIG_AXES = tuple(a for a in AXES if a != "input")

#: Axis values that leave a point's id unchanged (ids predate these axes).
QUIET_DEFAULTS = {
    "concurrency": "10",
    "cache": "none",
    "knobs": "default",
    "filters": "none",
    "input": "memory",
    "indices": "default",
    "client": "default",
}
ID_PREFIXES = {
    "concurrency": "conc",
    "cache": "cache",
    "knobs": "knobs",
    "filters": "filters",
    "input": "input",
    "indices": "idx",
    "client": "client",
}

#: Values the default sweep uses when an axis is not given: small enough for minutes on 2 cores.
DEFAULT_SWEEP: dict[str, tuple[str, ...]] = {
    "store": ("local",),
    "loop": ("asyncio",),
    "pipeline": ("fused", "zarrs"),
    "codec": ("zstd-0", "blosc-lz4-bitshuffle"),
    "sharding": ("auto", "rows-1024x16"),
    "consolidated": ("on",),
    "concurrency": ("10",),
    "cache": ("none",),
    "knobs": ("default",),
    "filters": ("none",),
    "input": ("memory",),
    "indices": ("default",),
    "client": ("default",),
}


@dataclass(frozen=True)
class Point:
    """A configuration under measurement: an `IOConfig`, the baseline recipe it follows ("" for a
    matrix point, see BASELINES) and the input kind of its write."""

    config: IOConfig = field(default_factory=IOConfig)
    baseline: str = ""
    input: Input = Input.MEMORY

    def __post_init__(self) -> None:
        if self.baseline and self.baseline not in BASELINES:
            raise HarnessError(f"unknown baseline {self.baseline!r}; valid: {', '.join(BASELINES)}")
        kind = Input.parse(self.input)
        object.__setattr__(self, "input", kind)
        # the measured config keeps the runtime's guard (dask input aligned to shards) unless the point
        # measures misaligned dask input on purpose
        if self.config.align_dask != (kind is not Input.DASK):
            object.__setattr__(self, "config", replace(self.config, align_dask=kind is not Input.DASK, check=False))

    @classmethod
    def of(cls, *, baseline: str = "", input: Any = Input.MEMORY, **axes: Any) -> Point:
        """A point from axis values given as text (as in ids and result rows) or typed values. Which anndata
        calls it makes follows from the baseline: anndata's own for the anndata-default recipes."""
        if unknown := set(axes) - set(CONFIG_AXES):
            raise HarnessError(f"unknown axis {sorted(unknown)[0]!r}; valid: {', '.join(AXES)}")
        return cls(IOConfig(**axes, **RECIPE_SETTINGS.get(baseline, {}), check=False), baseline, input)

    def with_axes(self, **axes: Any) -> Point:
        """This point with some axis values changed (text or typed)."""
        return Point.from_dict({**self.to_dict(), **axes})

    def axis(self, name: str) -> str:
        """An axis value as text: what ids, rows and the CLI use."""
        if name == "input":
            return str(self.input)
        value = getattr(self.config, name)
        if name == "consolidated":
            return "on" if value else "off"
        return str(text_of(value))

    @property
    def id(self) -> str:
        """Stable, readable identity: the baseline name, or the axis values joined by '/'."""
        store, loop = self.config.store, self.config.loop
        if self.baseline:
            where = "" if (store, loop) == ("local", "asyncio") else f"@{store}/{loop}"
            return self.baseline + where
        base = "/".join(
            [
                *(self.axis(a) for a in ("store", "loop", "pipeline", "codec", "sharding")),
                f"cons-{self.axis('consolidated')}",
            ]
        )
        extra = [
            f"{prefix}-{self.axis(axis)}"
            for axis, prefix in ID_PREFIXES.items()
            if self.axis(axis) != QUIET_DEFAULTS[axis]
        ]
        return "/".join([base, *extra])

    @property
    def api(self) -> str:
        """Which anndata entry points the workloads call for this point."""
        if self.baseline in ANNBATCH_BASELINES:
            return "annbatch"
        return self.baseline if self.baseline == "h5ad" else str(self.config.api)

    def to_dict(self) -> dict[str, str]:
        return {**{a: self.axis(a) for a in AXES}, "baseline": self.baseline}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Point:
        """From a result row's `point` (axes added later take their defaults)."""
        values = {k: v for k, v in data.items() if k in AXES or k == "baseline"}
        return cls.of(**values)


def baseline_point(name: str) -> Point:
    """The named baselines, each defined once here.

    - anndata-default: write_zarr/read_zarr/read_lazy as a user *without* zarrs gets them
      (anndata 0.13 switches write_zarr/read_zarr to zarr's Fused pipeline; read_lazy keeps zarr's default).
    - anndata-default+zarrs: the same calls as a user *with* zarrs installed gets them.
    - guide-example: write_dispatched with the zarr-v3 guide's callback on the Python pipeline.
    - h5ad: write_h5ad / read_h5ad.
    - anndata-default-v2: anndata-default writing zarr format 2 (`settings.zarr_write_format = 2`): what the
      zarr-v3 guide compares v3 with.
    - annbatch: annbatch's `write_sharded` (64-row chunks, ~1 GB shards, Blosc lz4 level 3 with byte shuffle,
      minimal index dtype), the peer training loader's own writer; read like a dispatched store.
    - annbatch+zarrs: the same under zarrs, as annbatch's docs advise for local stores.
    """
    annbatch = IOConfig(
        codec="blosc-lz4-shuffle-3",
        sharding="sparse:rows-64x16384+dense:rows-64x16384+columns:auto",
        indices="minimal",
    )
    recipes = {
        "anndata-default": IOConfig(api="anndata"),
        "anndata-default+zarrs": IOConfig(api="anndata", pipeline="zarrs"),
        "anndata-default-v2": IOConfig(api="anndata", zarr_format=2),
        "guide-example": IOConfig(pipeline="python", sharding="guide-example"),
        "h5ad": IOConfig(pipeline="python", codec="none", sharding="none"),
        "annbatch": annbatch,
        "annbatch+zarrs": replace(annbatch, pipeline="zarrs"),
    }
    if name not in recipes:
        raise HarnessError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")
    return Point(recipes[name], baseline=name)


def canonical(axis: str, text: str) -> str:
    """An axis value in its canonical spelling (keeps ids stable); raises on an unknown value."""
    if axis not in AXES:
        raise HarnessError(f"unknown axis {axis!r}; valid: {', '.join(AXES)}")
    return Point.of(**{axis: text}).axis(axis)


def parse_axes(specs: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Parse CLI `--axis name=v1,v2` values; `codec=all` expands to every named codec."""
    axes: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise HarnessError(f"--axis {spec!r} must look like name=value1,value2 (axes: {', '.join(AXES)})")
        if name not in AXES:
            raise HarnessError(f"unknown axis {name!r}; valid: {', '.join(AXES)}")
        raw = [v.strip() for v in values.split(",") if v.strip()]
        if name == "codec" and raw == ["all"]:
            raw = all_codec_names()
        axes[name] = tuple(dict.fromkeys(canonical(name, v) for v in raw))
    return axes


def expand(
    axes: Mapping[str, Iterable[str]] | None = None, defaults: Mapping[str, tuple[str, ...]] = DEFAULT_SWEEP
) -> list[Point]:
    """The cartesian product of the given axes, other axes at their default-sweep values."""
    chosen = {**defaults, **(axes or {})}
    names = list(AXES)
    return [
        Point.of(**dict(zip(names, combo, strict=True))) for combo in itertools.product(*(chosen[n] for n in names))
    ]


def baselines_for(names: Iterable[str], points: Iterable[Point]) -> list[Point]:
    """The named baselines on every store and loop the sweep's points use, so each remote point has a
    reference measured on the same store (h5ad only locally: it is a single local file)."""
    where = sorted({(p.config.store, p.config.loop) for p in points}) or [(Store.LOCAL, "asyncio")]
    out: list[Point] = []
    for name in names:
        for store, loop in where:
            if name == "h5ad" and store != "local":
                continue
            out.append(baseline_point(name).with_axes(store=store, loop=loop))
    if "h5ad" in names and not any(p.baseline == "h5ad" for p in out):
        out.append(baseline_point("h5ad"))
    return list(dict.fromkeys(out))


def invalid_reason(point: Point) -> str | None:
    """Why a combination makes no sense at all (independent of the machine), or None."""
    cfg = point.config
    if point.baseline == "h5ad" and cfg.store != "local":
        return "h5ad is a single local file: it has no zarr store backend"
    if point.baseline:
        recipe = baseline_point(point.baseline).config
        if (cfg.api, cfg.pipeline, cfg.codec, cfg.sharding) != (
            recipe.api,
            recipe.pipeline,
            recipe.codec,
            recipe.sharding,
        ):
            return f"baseline {point.baseline!r} fixes the calls, pipeline, codec and sharding"
    if point.input is not Input.MEMORY and point.api != "dispatched":
        return "dask-backed input is measured with write_dispatched points"
    if reason := cfg.invalid_reason():
        return reason
    if point.api == "dispatched" and (reason := cfg.knobs.invalid_reason(cfg.pipeline)):
        return reason
    if cfg.cache.kind != "none" and not cfg.store.remote:
        return (
            "a read cache only saves round trips to remote stores (s3-*, http-*); local reads go through the page cache"
        )
    return None


def static_unsupported_reason(point: Point) -> str | None:
    """Combinations known not to do what they claim, whatever the machine (see FACTS: zarrs + fsspec),
    and the gds store where CUDA or kvikio is missing."""
    cfg = point.config
    if point.baseline in ANNBATCH_BASELINES:
        import importlib.util

        if importlib.util.find_spec("annbatch") is None:
            return "annbatch is not installed (pip install 'harness[annbatch]')"
    if cfg.store is Store.GDS:
        from .runtime.gpu import gds_unsupported_reason

        if reason := gds_unsupported_reason():
            return f"gds store: {reason}"
    zarrs_point = cfg.pipeline is Pipeline.ZARRS and point.api != "anndata"
    if zarrs_point and cfg.store.client == "fsspec" and cfg.store.protocol in (Protocol.FILE, Protocol.S3):
        where = "local files" if cfg.store.protocol is Protocol.FILE else "S3"
        return (
            f"zarrs cannot drive an fsspec store on {where}: zarr silently falls back to the Python "
            "pipeline, so the point would time the wrong pipeline"
        )
    if zarrs_point and cfg.cache.kind != "none":
        return (
            "zarrs cannot drive a wrapped store (zarr's CacheStore): every array falls back to the Python "
            "pipeline, so the point would time the wrong pipeline"
        )
    return None


def static_status(point: Point) -> tuple[str, str] | None:
    """(invalid | unsupported, reason) for a point that cannot be measured here, or None."""
    if reason := invalid_reason(point):
        return "invalid", reason
    if reason := static_unsupported_reason(point):
        return "unsupported", reason
    if point.api != "h5ad" and (reason := unavailable_reason(point.config.pipeline, point.config.loop)):
        return "unsupported", reason
    return None


def point_by_id(point_id: str) -> Point:
    """Inverse of `Point.id` (baseline names included)."""
    name, at, where = point_id.partition("@")
    if name in BASELINES:
        store, _, loop = where.partition("/")
        return (
            baseline_point(name).with_axes(store=store or "local", loop=loop or "asyncio")
            if at
            else baseline_point(name)
        )
    parts = point_id.split("/")
    if len(parts) < 6 or not parts[5].startswith("cons-"):
        raise HarnessError(
            f"not a point id: {point_id!r} (expected store/loop/pipeline/codec/sharding/cons-on|off[/conc-N][/cache-X] or a baseline)"
        )
    values = dict(zip(("store", "loop", "pipeline", "codec", "sharding"), parts[:5], strict=True))
    values["consolidated"] = parts[5].removeprefix("cons-")
    axis_of = {v: k for k, v in ID_PREFIXES.items()}
    for part in parts[6:]:
        prefix, _, value = part.partition("-")
        if prefix not in axis_of:
            raise HarnessError(f"not a point id: {point_id!r} (unknown part {part!r})")
        values[axis_of[prefix]] = value
    return Point.of(**values)
