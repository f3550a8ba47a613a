"""`IOConfig`: how to store AnnData on zarr v3, as frozen typed data with thin verbs.

`cfg.write(adata, path)`, `cfg.read(path)`, `cfg.read_lazy(url)`, `cfg.to_memory(lazy)`,
`cfg.open_store(url)`, `with cfg.activate(): ...`. Light on purpose: anndata and zarr, plus zarrs /
obstore / uvloop / dask only when the config asks for them. A missing optional package gives a warning
that names it and the fallback used, never a crash. The harness's own write workload calls
`IOConfig.write`, so what was measured is what gets applied.

Every field is given as its typed value or as text, and parsed once here (`PARSERS`); `to_dict` gives
the canonical text back. Layering of `layered()` (what a generated `recommended_config()` calls),
later wins: built-in defaults <- tuned file <- HARNESS_* environment variables <- explicit arguments.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import InitVar, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from .cache import CacheSpec, parse_cache, parse_concurrency, wrap
from .codecs import Codecs, parse_codecs
from .convert import shell_of, streamed_sources, write_streamed
from .errors import HarnessError, UnsupportedPoint
from .filters import Filter
from .knobs import Knobs, parse_knobs
from .pipelines import Loop, Pipeline, install_loop
from .sharding import Policy, make_callback, parse_policy
from .sparse import IndexDtype
from .stores import Client, Protocol, Store, open_store

ENV_PREFIX = "HARNESS_"


class Api(StrEnum):
    """Which anndata calls a config makes.

    - `dispatched`: `write_dispatched` with this config's codec, sharding and filters; `read_elem` and
      `read_lazy` on a group opened through this config's store, cache and pipeline.
    - `anndata`: anndata's defaults exactly as a user calls them: `write_zarr`, `read_zarr`, `read_lazy`,
      with zarr's codec pipeline left alone (anndata then picks Fused, or zarrs when it is installed). What
      `harness tune` emits when nothing beat anndata's default.
    """

    DISPATCHED = "dispatched"
    ANNDATA = "anndata"

    @classmethod
    def parse(cls, text: Any) -> Api:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown api {text!r}; valid: {', '.join(cls)}") from None


TRUE_WORDS, FALSE_WORDS = ("1", "true", "on", "yes"), ("0", "false", "off", "no")


def _format(value: Any) -> int:
    if str(value) not in ("2", "3"):
        raise HarnessError(f"zarr format {value!r} is not 2 or 3")
    return int(value)


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in TRUE_WORDS + FALSE_WORDS:
        raise HarnessError(f"{value!r} is not a yes/no value; use one of {', '.join(TRUE_WORDS + FALSE_WORDS)}")
    return text in TRUE_WORDS


#: One parser per field: text (or the typed value itself) -> the typed value.
PARSERS: dict[str, Callable[[Any], Any]] = {
    "store": Store.parse,
    "loop": Loop.parse,
    "pipeline": Pipeline.parse,
    "codec": parse_codecs,
    "sharding": parse_policy,
    "consolidated": parse_bool,
    "concurrency": parse_concurrency,
    "cache": parse_cache,
    "knobs": parse_knobs,
    "filters": Filter.parse,
    "align_dask": parse_bool,
    "client": Client.parse,
    "api": Api.parse,
    "indices": IndexDtype.parse,
    "zarr_format": lambda v: _format(v),
}


def text_of(value: Any) -> Any:
    """The canonical text of a typed value (JSON scalars stay as they are)."""
    if isinstance(value, (bool, int)):
        return value
    return getattr(value, "name", None) if isinstance(value, (Codecs, Policy, CacheSpec, Knobs)) else str(value)


@dataclass(frozen=True)
class IOConfig:
    """How to store AnnData on zarr v3. Defaults are anndata 0.13's own choices as a user without zarrs
    gets them (Fused pipeline, zstd, anndata's auto sharding, consolidated metadata)."""

    store: Store = Store.LOCAL
    loop: Loop = Loop.ASYNCIO
    pipeline: Pipeline = Pipeline.FUSED
    codec: Codecs = parse_codecs("zstd-0")  # one codec, or one per array role (harness.runtime.codecs)
    sharding: Policy = parse_policy("auto")
    consolidated: bool = True
    concurrency: int = 10  # zarr's async.concurrency: requests and chunk tasks in flight per call
    cache: CacheSpec = CacheSpec()  # read cache over a remote store: none, memory-<size>, disk-<size>
    knobs: Knobs = Knobs()  # pipeline knobs, e.g. zarrs-workers=2+zarrs-chunk-min=4
    filters: Filter = Filter.NONE  # filter on sparse matrices before the compressor
    align_dask: bool = True  # write dask-backed X/layers whole shards per task (runtime.convert; a safety guard)
    client: Client = Client.DEFAULT  # client-library options, e.g. s3fs-no-head
    api: Api = Api.DISPATCHED  # anndata: anndata's own calls, untouched (see Api)
    indices: IndexDtype = IndexDtype.DEFAULT  # dtype of CSR/CSC indices: as given, or the minimal one
    zarr_format: int = 3  # 2 only with api=anndata: anndata's write_zarr writing zarr v2
    check: InitVar[bool] = True  # False only for the matrix, which records invalid combinations as such

    def __post_init__(self, check: bool) -> None:
        for name, parse in PARSERS.items():
            object.__setattr__(self, name, parse(getattr(self, name)))
        if check and (reason := self.invalid_reason()):
            raise HarnessError(f"IOConfig: {reason}")

    def invalid_reason(self) -> str | None:
        """Why this combination of settings makes no sense, whatever the machine, or None."""
        if reason := self.client.invalid_reason(self.store):
            return reason
        if self.zarr_format == 2 and self.api is not Api.ANNDATA:
            return "zarr format 2 is measured with anndata's own calls (api=anndata): v2 has no sharding"
        layout = (self.codec.name, self.sharding.name, self.filters, self.indices)
        if self.api is Api.ANNDATA and layout != ("zstd-0", "auto", "none", "default"):
            return (
                "api=anndata writes with anndata's own codec, sharding and index dtype: leave codec, sharding, "
                "filters and indices at their defaults"
            )
        if self.filters is not Filter.NONE and self.sharding.sparse.kind in ("auto", "guide-example"):
            return (
                "a sparse filter writes CSR/CSC itself, outside anndata's sparse writer: it needs an explicit sparse "
                "policy (rows-RxK or none), not auto / guide-example"
            )
        return None

    # --- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: text_of(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IOConfig:
        known = {f.name for f in fields(cls)}
        if unknown := set(data) - known:
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
        if cfg.pipeline is Pipeline.ZARRS and importlib.util.find_spec("zarrs") is None:
            warnings.warn(
                "zarrs is not installed (pip install zarrs): using zarr's FusedCodecPipeline instead", stacklevel=3
            )
            cfg = replace(cfg, pipeline=Pipeline.FUSED)
        if cfg.store.client == "obstore" and importlib.util.find_spec("obstore") is None:
            fallback = Store.LOCAL if cfg.store.protocol is Protocol.FILE else Store.of(cfg.store.protocol, "fsspec")
            warnings.warn(
                f"obstore is not installed (pip install obstore): using the {fallback} store backend instead",
                stacklevel=3,
            )
            cfg = replace(cfg, store=fallback)
        if cfg.loop is Loop.UVLOOP and importlib.util.find_spec("uvloop") is None:
            warnings.warn("uvloop is not installed (pip install uvloop): using asyncio's event loop", stacklevel=3)
            cfg = replace(cfg, loop=Loop.ASYNCIO)
        return cfg

    @property
    def write_callback(self) -> Callable[..., None]:
        """A callback for `anndata.experimental.write_dispatched`, for users who call it themselves."""
        return make_callback(self.sharding, self.codec, filters=self.filters, index_dtype=self.indices)

    def open_store(self, target: Any, *, read_only: bool = False) -> Any:
        """A zarr store for a path or URL (s3://, http(s)://) through this config's client library,
        behind its read cache when reading. S3 credentials and endpoint come from the AWS_* variables."""
        store = open_store(self.effective().store, target, read_only=read_only, client=self.client)
        return wrap(store, self.cache) if read_only else store

    def zarr_settings(self) -> dict[str, Any]:
        """The zarr config entries this config means: pipeline (not with api=anndata, whose calls pick their
        own), concurrency and pipeline knobs."""
        pipeline = {} if self.api is Api.ANNDATA else {"codec_pipeline.path": self.pipeline.path}
        return {**pipeline, "async.concurrency": self.concurrency, **self.knobs.zarr}

    def settings(self) -> ExitStack:
        """A context setting this config's zarr entries (`zarr_settings`) and dask entries (the
        `dask-workers` knob: threads computing read_lazy arrays); no event loop, no anndata settings."""
        import zarr

        stack = ExitStack()
        stack.enter_context(zarr.config.set(self.zarr_settings()))
        if self.knobs.dask:
            import dask

            stack.enter_context(dask.config.set(self.knobs.dask))
        if threads := self.knobs.numcodecs.get("blosc_threads"):
            stack.enter_context(_blosc_threads(threads))
        return stack

    @contextmanager
    def activate(self) -> Iterator[IOConfig]:
        """Set the event loop (if zarr has not started its loop yet), codec pipeline and anndata's
        write format, in that order; restore the previous settings on exit."""
        import anndata as ad
        import zarr

        cfg = self.effective()
        _, previous_policy = install_loop(cfg.loop)
        with ExitStack() as stack:
            stack.enter_context(cfg.settings())
            if cfg.pipeline is Pipeline.GPU:
                stack.enter_context(zarr.config.enable_gpu())
            # zarr_write_format must be set before auto_shard_zarr_v3 (anndata#2341): two overrides
            stack.enter_context(ad.settings.override(zarr_write_format=cfg.zarr_format))
            stack.enter_context(ad.settings.override(auto_shard_zarr_v3=True))
            try:
                yield cfg
            finally:
                if previous_policy is not None:
                    asyncio.set_event_loop_policy(previous_policy)

    def _check_zarrs_keys(self, keys: Iterable[str]) -> None:
        cfg = self.effective()
        if cfg.pipeline is not Pipeline.ZARRS or cfg.store.client != "obstore":
            return
        if bad := zarrs_obstore_unsafe(keys):
            raise UnsupportedPoint(
                f"zarrs over an obstore store silently reads fill values for keys with non-ASCII or any of "
                f"{''.join(sorted(ZARRS_OBSTORE_UNSAFE))} (found by harness's fuzzed round trips); this data has "
                f"{', '.join(map(repr, bad[:3]))}. Use pipeline='fused', or rename those elements"
            )

    # --- what users call -------------------------------------------------------------------
    def write(self, adata: Any, target: Any) -> None:
        """write_dispatched with this config's sharding and codec, then consolidate if asked. The dask-backed
        X and layers of an AnnData (e.g. from read_lazy) are written through dask with every task owning
        whole shards (`align_dask`; harness.runtime.convert), in bounded memory."""
        import anndata as ad
        import zarr

        self._check_zarrs_keys(element_keys(adata))
        if self.api is Api.ANNDATA:
            with self.activate() as cfg:
                ad.io.write_zarr(cfg.open_store(target), adata)  # consolidates; anndata's codec and auto sharding
            return
        if self.align_dask and (sources := streamed_sources(adata)):
            write_streamed(self, shell_of(adata, sources), sources, target)
            return
        with self.activate() as cfg:
            group = zarr.open_group(cfg.open_store(target), mode="w", zarr_format=3)
            ad.experimental.write_dispatched(group, "/", adata, callback=cfg.write_callback)
            if cfg.consolidated:
                zarr.consolidate_metadata(group.store)

    def open_group(self, target: Any) -> Any:
        import zarr

        store = self.open_store(target, read_only=True)
        if self.api is Api.ANNDATA:  # as a user opens it: consolidated metadata when there is some
            return zarr.open_group(store, mode="r")
        group = zarr.open_group(store, mode="r", use_consolidated=self.consolidated)
        if self.effective().pipeline is Pipeline.ZARRS:
            self._check_zarrs_keys(path for path, _ in group.members(max_depth=None))
        return group

    def read(self, target: Any) -> Any:
        """Read fully into memory: anndata's `read_elem` under this config's pipeline (`read_zarr` with api=anndata)."""
        import anndata as ad

        with self.activate():
            if self.api is Api.ANNDATA:
                return ad.io.read_zarr(self.open_store(target, read_only=True))
            return ad.io.read_elem(self.open_group(target))

    def read_lazy(self, target: Any) -> Any:
        """anndata.experimental.read_lazy with this config's store, cache and pipeline. Concurrency and
        knobs (e.g. dask-workers) apply where the lazy object is computed: use `to_memory`, or compute
        inside `with cfg.activate():`."""
        import anndata as ad

        with self.activate():
            return ad.experimental.read_lazy(self.open_group(target))

    def stream(
        self,
        target: Any,
        *,
        batch_size: int = 4096,
        shuffle: str = "blocks",
        run_rows: int = 512,
        preload: int = 32,
        prefetch: int = 1,
        seed: int = 0,
        obs: Sequence[str] = (),
        part: tuple[int, int] = (0, 1),
    ) -> Iterator[Any]:
        """Minibatches (`Batch`: rows, CSR X, obs columns) for a training loop, block-shuffled by default:
        runs of `run_rows` contiguous rows in random order, `preload` runs fetched together and shuffled in
        memory, the next group fetched while this one is used (harness.runtime.loader)."""
        from .loader import LoaderSpec, stream

        spec = LoaderSpec(batch_size, shuffle, run_rows, preload, prefetch, seed)
        return stream(self.effective(), target, spec, obs=obs, part=part)

    def to_memory(self, lazy: Any) -> Any:
        """`lazy.to_memory()` (a read_lazy AnnData or a subset of it) under this config's concurrency and knobs."""
        with self.activate():
            return lazy.to_memory()


#: Found by the fuzzed round trips (tests/test_fuzz.py): zarrs over an obstore ObjectStore reads fill values,
#: silently, for keys containing these characters or any non-ASCII character (zarrs 0.2.x, obstore 0.12;
#: zarr's LocalStore is not affected). The runtime refuses such data instead of returning wrong values.
ZARRS_OBSTORE_UNSAFE = frozenset('{}[]%#?*~^`|"<>')


def zarrs_obstore_unsafe(keys: Iterable[str]) -> list[str]:
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


@contextmanager
def _blosc_threads(threads: int) -> Iterator[None]:
    """Blosc's own threads inside each call (numcodecs uses one off the main thread unless told)."""
    from numcodecs import blosc

    previous_use, previous = blosc.use_threads, blosc.set_nthreads(threads)
    blosc.use_threads = True
    try:
        yield
    finally:
        blosc.use_threads = previous_use
        blosc.set_nthreads(previous)


def _from_env() -> dict[str, str]:
    return {f.name: raw for f in fields(IOConfig) if (raw := os.environ.get(ENV_PREFIX + f.name.upper())) is not None}


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
