"""The matrix: every axis as data, one frozen `Point` per combination, and the validity rules.

This is the single definition imported by the CLI, the runner, asv suites and tune. Rules that
depend on the machine (is zarrs installed, is there CUDA) are answered by `harness.pipelines`
capability probes, so listing the matrix never imports zarr.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace

from .codecs import all_codec_names, parse_codec
from .errors import HarnessError, InvalidPoint
from .policies import parse_policy

STORES = ("local", "fsspec", "obstore", "s3-fsspec", "s3-obstore", "http-fsspec", "http-obstore", "gds")
LOOPS = ("asyncio", "uvloop")
PIPELINES = ("python", "fused", "zarrs", "gpu")
CONSOLIDATED = ("on", "off")
BASELINES = ("anndata-default", "anndata-default+zarrs", "guide-example", "h5ad")

#: What each axis means, for `harness matrix --help` and the README.
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
             "dask-aligned rechunks them to the policy's shards first",
    "client": "client-library options that change requests: default, s3fs-no-head (s3-fsspec: one GET per whole object, "
              "no HEAD before it)",
}

#: Axis values that leave a point's id unchanged (ids predate these axes).
QUIET_DEFAULTS = {"concurrency": "10", "cache": "none", "knobs": "default", "filters": "none", "input": "memory",
                  "client": "default"}
ID_PREFIXES = {"concurrency": "conc", "cache": "cache", "knobs": "knobs", "filters": "filters", "input": "input",
               "client": "client"}
INPUTS = ("memory", "dask", "dask-aligned")

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
    "client": ("default",),
}


@dataclass(frozen=True, order=True)
class Point:
    """One combination of axis values. `baseline` marks a named reference recipe (see BASELINES)."""

    store: str = "local"
    loop: str = "asyncio"
    pipeline: str = "zarrs"
    codec: str = "zstd-0"
    sharding: str = "auto"
    consolidated: str = "on"
    baseline: str = ""
    concurrency: str = "10"
    cache: str = "none"
    knobs: str = "default"
    filters: str = "none"
    input: str = "memory"
    client: str = "default"

    @property
    def id(self) -> str:
        """Stable, readable identity: the baseline name, or the axis values joined by '/'."""
        if self.baseline:
            where = "" if (self.store, self.loop) == ("local", "asyncio") else f"@{self.store}/{self.loop}"
            return self.baseline + where
        base = "/".join((self.store, self.loop, self.pipeline, self.codec, self.sharding, f"cons-{self.consolidated}"))
        extra = [f"{prefix}-{getattr(self, axis)}" for axis, prefix in ID_PREFIXES.items()
                 if getattr(self, axis) != QUIET_DEFAULTS[axis]]
        return "/".join([base, *extra])

    @property
    def api(self) -> str:
        """Which anndata entry points the workloads call for this point."""
        if self.baseline == "h5ad":
            return "h5ad"
        if self.baseline in ("anndata-default", "anndata-default+zarrs"):
            return "anndata"
        return "dispatched"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Point:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def baseline_point(name: str) -> Point:
    """The named baselines, each defined once here.

    - anndata-default: write_zarr/read_zarr/read_lazy as a user *without* zarrs gets them
      (anndata 0.13 switches write_zarr/read_zarr to zarr's Fused pipeline; read_lazy keeps zarr's default).
    - anndata-default+zarrs: the same calls as a user *with* zarrs installed gets them.
    - guide-example: write_dispatched with the zarr-v3 guide's callback on the Python pipeline.
    - h5ad: write_h5ad / read_h5ad.
    """
    if name == "anndata-default":
        return Point(pipeline="fused", codec="zstd-0", sharding="auto", baseline=name)
    if name == "anndata-default+zarrs":
        return Point(pipeline="zarrs", codec="zstd-0", sharding="auto", baseline=name)
    if name == "guide-example":
        return Point(pipeline="python", codec="zstd-0", sharding="guide-example", baseline=name)
    if name == "h5ad":
        return Point(pipeline="python", codec="none", sharding="none", baseline=name)
    raise HarnessError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")


def _check_value(axis: str, value: str) -> str:
    choices = {"store": STORES, "loop": LOOPS, "pipeline": PIPELINES, "consolidated": CONSOLIDATED, "input": INPUTS}
    if axis in choices:
        if value not in choices[axis]:
            raise HarnessError(f"unknown {axis} {value!r}; valid: {', '.join(choices[axis])}")
    elif axis == "concurrency":
        from .cache import parse_concurrency

        value = str(parse_concurrency(value))
    elif axis == "cache":
        from .cache import parse_cache

        value = parse_cache(value).name
    elif axis == "filters":
        from .filters import check_filter

        value = check_filter(value)
    elif axis == "knobs":
        from .knobs import knobs_name, parse_knobs

        value = knobs_name(parse_knobs(value))
    elif axis == "client":
        from .stores import check_client

        value = check_client(value)
    elif axis == "codec":
        parse_codec(value)
    elif axis == "sharding":
        value = parse_policy(value).name  # canonical spelling keeps ids stable
    else:
        raise HarnessError(f"unknown axis {axis!r}; valid: {', '.join(AXES)}")
    return value


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
        axes[name] = tuple(dict.fromkeys(_check_value(name, v) for v in raw))
    return axes


def expand(axes: Mapping[str, Iterable[str]] | None = None, defaults: Mapping[str, tuple[str, ...]] = DEFAULT_SWEEP) -> list[Point]:
    """The cartesian product of the given axes, other axes at their default-sweep values."""
    chosen = {**defaults, **(axes or {})}
    names = list(AXES)
    return [Point(**dict(zip(names, combo, strict=True))) for combo in itertools.product(*(chosen[n] for n in names))]


def baselines_for(names: Iterable[str], points: Iterable[Point]) -> list[Point]:
    """The named baselines on every store and loop the sweep's points use, so each remote point has a
    reference measured on the same store (h5ad only locally: it is a single local file)."""
    where = sorted({(p.store, p.loop) for p in points}) or [("local", "asyncio")]
    out: list[Point] = []
    for name in names:
        for store, loop in where:
            if name == "h5ad" and store != "local":
                continue
            out.append(replace(baseline_point(name), store=store, loop=loop))
    if "h5ad" in names and not any(p.baseline == "h5ad" for p in out):
        out.append(baseline_point("h5ad"))
    return list(dict.fromkeys(out))


def invalid_reason(point: Point) -> str | None:
    """Why a combination makes no sense at all (independent of the machine), or None."""
    if point.baseline == "h5ad" and point.store != "local":
        return "h5ad is a single local file: it has no zarr store backend"
    if point.baseline and point != replace(baseline_point(point.baseline), store=point.store, loop=point.loop,
                                           concurrency=point.concurrency, cache=point.cache, knobs=point.knobs,
                                           filters=point.filters, input=point.input, client=point.client):
        return f"baseline {point.baseline!r} fixes pipeline, codec and sharding"
    if point.input != "memory" and point.api != "dispatched":
        return "dask-backed input is measured with write_dispatched points"
    if point.filters != "none" and parse_policy(point.sharding).sparse.kind in ("auto", "guide-example"):
        return ("a sparse filter writes CSR/CSC itself, outside anndata's sparse writer: it needs an explicit sparse "
                "policy (rows-RxK or none), not auto / guide-example")
    if point.knobs != "default" and point.api == "dispatched":
        from .knobs import unsupported_for

        if reason := unsupported_for(point.knobs, point.pipeline):
            return reason
    if point.client != "default":
        from .stores import client_invalid_reason

        if reason := client_invalid_reason(point.client, point.store):
            return reason
    if point.cache != "none" and "-" not in point.store:
        return "a read cache only saves round trips to remote stores (s3-*, http-*); local reads go through the page cache"
    return None


def static_unsupported_reason(point: Point) -> str | None:
    """Combinations known not to do what they claim, whatever the machine (see FACTS: zarrs + fsspec),
    and the gds store where CUDA or kvikio is missing."""
    if point.store == "gds":
        from .gpu import gds_unsupported_reason

        if reason := gds_unsupported_reason():
            return f"gds store: {reason}"
    if point.pipeline == "zarrs" and point.store in ("fsspec", "s3-fsspec") and point.api != "anndata":
        where = "local files" if point.store == "fsspec" else "S3"
        return (f"zarrs cannot drive an fsspec store on {where}: zarr silently falls back to the Python "
                "pipeline, so the point would time the wrong pipeline")
    if point.pipeline == "zarrs" and point.cache != "none" and point.api != "anndata":
        return ("zarrs cannot drive a wrapped store (zarr's CacheStore): every array falls back to the Python "
                "pipeline, so the point would time the wrong pipeline")
    return None


def point_by_id(point_id: str) -> Point:
    """Inverse of `Point.id` (baseline names included)."""
    if point_id in BASELINES:
        return baseline_point(point_id)
    name, at, where = point_id.partition("@")
    if at and name in BASELINES:
        store, _, loop = where.partition("/")
        return replace(baseline_point(name), store=_check_value("store", store), loop=_check_value("loop", loop or "asyncio"))
    parts = point_id.split("/")
    if len(parts) < 6 or not parts[5].startswith("cons-"):
        raise HarnessError(f"not a point id: {point_id!r} (expected store/loop/pipeline/codec/sharding/cons-on|off[/conc-N][/cache-X] or a baseline)")
    names = list(AXES)[:6]
    values = [*parts[:5], parts[5].removeprefix("cons-")]
    extra = {}
    for part in parts[6:]:
        prefix, _, value = part.partition("-")
        axis = {v: k for k, v in ID_PREFIXES.items()}.get(prefix)
        if axis is None:
            raise HarnessError(f"not a point id: {point_id!r} (unknown part {part!r})")
        extra[axis] = _check_value(axis, value)
    return Point(**{n: _check_value(n, v) for n, v in zip(names, values, strict=True)}, **extra)
