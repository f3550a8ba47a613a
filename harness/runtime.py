"""Apply a storage configuration in production: `cfg.write(adata, path)`, `cfg.read_lazy(url)`.

Light on purpose: anndata and zarr, plus zarrs / obstore / uvloop only when the config asks for
them. A missing optional package gives a warning that names it and the fallback used, never a crash.
The harness's own write workload calls `IOConfig.write`, so what was measured is what gets applied.

Layering of `layered()` (what a generated `recommended_config()` calls), later wins:
built-in defaults <- tuned file <- HARNESS_* environment variables <- explicit arguments.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from .cache import parse_cache, parse_concurrency
from .codecs import parse_codec
from .filters import check_filter
from .knobs import dask_settings, knobs_name, parse_knobs, zarr_settings
from .errors import HarnessError, UnsupportedPoint
from .matrix import LOOPS, PIPELINES, STORES
from .pipelines import PIPELINE_PATHS
from .policies import make_callback, parse_policy
from .stores import client_invalid_reason

ENV_PREFIX = "HARNESS_"


@dataclass(frozen=True)
class IOConfig:
    """How to store AnnData on zarr v3. Defaults are anndata 0.13's own choices (no zarrs)."""

    store: str = "local"
    loop: str = "asyncio"
    pipeline: str = "fused"
    codec: str = "zstd-0"
    sharding: str = "auto"
    consolidated: bool = True
    concurrency: int = 10  # zarr's async.concurrency
    cache: str = "none"  # read cache over the store: none, memory-<size>, disk-<size>
    knobs: str = "default"  # pipeline knobs (harness.knobs), e.g. zarrs-workers=2+zarrs-chunk-min=4
    filters: str = "none"  # filter on sparse matrices before the compressor: none, delta, shuffle
    align_dask: bool = True  # rechunk dask-backed X/layers to whole shards before writing
    client: str = "default"  # client-library options (harness.stores.CLIENT_OPTIONS), e.g. s3fs-no-head

    def __post_init__(self) -> None:
        for name, choices in (("store", STORES), ("loop", LOOPS), ("pipeline", PIPELINES)):
            if getattr(self, name) not in choices:
                raise HarnessError(f"IOConfig.{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")
        parse_codec(self.codec)
        object.__setattr__(self, "sharding", parse_policy(self.sharding).name)
        object.__setattr__(self, "concurrency", parse_concurrency(self.concurrency))
        object.__setattr__(self, "cache", parse_cache(self.cache).name)
        object.__setattr__(self, "knobs", knobs_name(parse_knobs(self.knobs)))
        check_filter(self.filters)
        if reason := client_invalid_reason(self.client, self.store):
            raise HarnessError(f"IOConfig.client: {reason}")

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IOConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise HarnessError(f"unknown IOConfig keys {sorted(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> IOConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"tuned configuration is not valid JSON ({exc}); re-run harness tune") from None
        return cls.from_dict(data.get("config", data))

    # --- the pieces ------------------------------------------------------------------------
    def effective(self) -> IOConfig:
        """This config with unavailable optional packages replaced by their fallbacks (warned)."""
        cfg = self
        if cfg.pipeline == "zarrs" and importlib.util.find_spec("zarrs") is None:
            warnings.warn("zarrs is not installed (pip install zarrs): using zarr's FusedCodecPipeline instead", stacklevel=3)
            cfg = replace(cfg, pipeline="fused")
        if cfg.store.endswith("obstore") and importlib.util.find_spec("obstore") is None:
            fallback = "local" if cfg.store == "obstore" else cfg.store.replace("obstore", "fsspec")
            warnings.warn(f"obstore is not installed (pip install obstore): using the {fallback} store backend instead", stacklevel=3)
            cfg = replace(cfg, store=fallback)
        if cfg.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            warnings.warn("uvloop is not installed (pip install uvloop): using asyncio's event loop", stacklevel=3)
            cfg = replace(cfg, loop="asyncio")
        return cfg

    @property
    def write_callback(self):
        """A callback for `anndata.experimental.write_dispatched`, for users who call it themselves."""
        return make_callback(parse_policy(self.sharding), parse_codec(self.codec).build(), filters=self.filters)

    def open_store(self, target: Any, *, read_only: bool = False) -> Any:
        """A zarr store for a path or URL (s3://, http(s)://) through this config's client library.

        S3 credentials and endpoint come from the usual AWS_* environment variables."""
        from .cache import wrap
        from .stores import open_store

        store = open_store(self.effective().store, target, read_only=read_only, client=self.client)
        return wrap(store, self.cache) if read_only else store

    def zarr_settings(self) -> dict[str, Any]:
        """The zarr config entries this config means: pipeline, concurrency and pipeline knobs."""
        return {"codec_pipeline.path": PIPELINE_PATHS[self.pipeline], "async.concurrency": self.concurrency,
                **zarr_settings(self.knobs)}

    def settings(self) -> ExitStack:
        """A context setting this config's zarr entries (`zarr_settings`) and dask entries (the
        `dask-workers` knob: threads computing read_lazy arrays); no event loop, no anndata settings."""
        import zarr

        stack = ExitStack()
        stack.enter_context(zarr.config.set(self.zarr_settings()))
        if dask_entries := dask_settings(self.knobs):
            import dask

            stack.enter_context(dask.config.set(dask_entries))
        return stack

    @contextmanager
    def activate(self) -> Iterator[IOConfig]:
        """Set the event loop (if zarr has not started its loop yet), codec pipeline and anndata's
        write format, in that order; restore the previous settings on exit."""
        import anndata as ad
        import zarr

        cfg = self.effective()
        previous_policy = _install_loop(cfg.loop)
        with ExitStack() as stack:
            stack.enter_context(cfg.settings())
            if cfg.pipeline == "gpu":
                stack.enter_context(zarr.config.enable_gpu())
            # zarr_write_format must be set before auto_shard_zarr_v3 (anndata#2341): two overrides
            stack.enter_context(ad.settings.override(zarr_write_format=3))
            stack.enter_context(ad.settings.override(auto_shard_zarr_v3=True))
            try:
                yield cfg
            finally:
                if previous_policy is not None:
                    asyncio.set_event_loop_policy(previous_policy)

    def _check_zarrs_keys(self, keys: Iterator[str] | list[str]) -> None:
        cfg = self.effective()
        if cfg.pipeline == "zarrs" and cfg.store.rsplit("-", 1)[-1] == "obstore":
            if bad := zarrs_obstore_unsafe(keys):
                raise UnsupportedPoint(
                    f"zarrs over an obstore store silently reads fill values for keys with non-ASCII or any of "
                    f"{''.join(sorted(ZARRS_OBSTORE_UNSAFE))} (found by harness's fuzzed round trips); this data has "
                    f"{', '.join(map(repr, bad[:3]))}. Use pipeline='fused', or rename those elements")

    # --- what users call -------------------------------------------------------------------
    def write(self, adata: Any, target: Any) -> None:
        """write_dispatched with this config's sharding and codec, then consolidate if asked. A dask-backed
        AnnData (e.g. from read_lazy) is rechunked to whole shards first (`align_dask`)."""
        import anndata as ad
        import zarr

        self._check_zarrs_keys(element_keys(adata))
        if self.align_dask:
            from .daskinput import align

            adata, _ = align(adata, self.sharding)  # dask chunks on shard boundaries: no shard rewritten
        with self.activate() as cfg:
            group = zarr.open_group(cfg.open_store(target), mode="w", zarr_format=3)
            ad.experimental.write_dispatched(group, "/", adata, callback=cfg.write_callback)
            if cfg.consolidated:
                zarr.consolidate_metadata(group.store)

    def open_group(self, target: Any) -> Any:
        import zarr

        group = zarr.open_group(self.open_store(target, read_only=True), mode="r", use_consolidated=self.consolidated)
        if self.effective().pipeline == "zarrs":
            self._check_zarrs_keys(path for path, _ in group.members(max_depth=None))
        return group

    def read(self, target: Any) -> Any:
        """Read fully into memory (anndata's reader, with this config's pipeline)."""
        import anndata as ad

        with self.activate():
            return ad.io.read_elem(self.open_group(target))

    def read_lazy(self, target: Any) -> Any:
        """anndata.experimental.read_lazy with this config's store, cache and pipeline. Concurrency and
        knobs (e.g. dask-workers) apply where the lazy object is computed: use `to_memory`, or compute
        inside `with cfg.activate():`."""
        import anndata as ad

        with self.activate():
            return ad.experimental.read_lazy(self.open_group(target))

    def to_memory(self, lazy: Any) -> Any:
        """`lazy.to_memory()` (a read_lazy AnnData or a subset of it) under this config's concurrency and knobs."""
        with self.activate():
            return lazy.to_memory()


#: Found by the fuzzed round trips (tests/test_fuzz.py): zarrs over an obstore ObjectStore reads fill values,
#: silently, for keys containing these characters or any non-ASCII character (zarrs 0.2.x, obstore 0.12;
#: zarr's LocalStore is not affected). The runtime refuses such data instead of returning wrong values.
ZARRS_OBSTORE_UNSAFE = frozenset('{}[]%#?*~^`|"<>')


def zarrs_obstore_unsafe(keys: Iterator[str] | list[str]) -> list[str]:
    return [k for k in keys if any(c in ZARRS_OBSTORE_UNSAFE or ord(c) > 127 for c in k)]


def element_keys(adata: Any) -> list[str]:
    """The store keys an AnnData's elements will get (column names, mapping keys, nested uns keys)."""
    keys = [f"obs/{c}" for c in adata.obs.columns] + [f"var/{c}" for c in adata.var.columns]
    for attr in ("layers", "obsm", "varm", "obsp", "varp"):
        keys += [f"{attr}/{k}" for k in getattr(adata, attr).keys()]

    def walk(prefix: str, mapping: Mapping) -> None:
        for key, value in mapping.items():
            keys.append(f"{prefix}/{key}")
            if isinstance(value, Mapping):
                walk(f"{prefix}/{key}", value)

    walk("uns", adata.uns)
    return keys


def _install_loop(loop: str):
    """Install uvloop's policy if zarr's loop does not exist yet; returns the policy to restore."""
    from zarr.core import sync

    if sync.loop[0] is not None:
        running = type(sync.loop[0]).__module__
        if (loop == "uvloop") != running.startswith("uvloop"):
            warnings.warn(f"zarr's event loop already runs on {running}; {loop} applies only to a fresh process "
                          "(activate the config before the first zarr call)", stacklevel=4)
        return None
    if loop != "uvloop":
        return None
    import uvloop

    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    sync._get_loop()  # create zarr's loop now, under uvloop's policy
    return previous


def _from_env() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields(IOConfig):
        raw = os.environ.get(ENV_PREFIX + f.name.upper())
        if raw is not None:
            values[f.name] = raw.lower() in ("1", "true", "on", "yes") if f.type in (bool, "bool") else raw
    return values


def layered(tuned: Mapping[str, Any] | str | Path | None = None, **overrides: Any) -> IOConfig:
    """Defaults <- tuned config (dict or JSON file) <- HARNESS_* environment <- keyword arguments."""
    data: dict[str, Any] = {}
    if isinstance(tuned, (str, Path)):
        path = Path(tuned)
        if not path.exists():
            raise HarnessError(f"tuned configuration {path} does not exist; re-run harness tune or pass another file")
        data = IOConfig.from_json(path.read_text()).to_dict()
    elif tuned is not None:
        data = IOConfig.from_dict(tuned.get("config", tuned)).to_dict()
    return IOConfig.from_dict({**IOConfig().to_dict(), **data, **_from_env(), **overrides})
