"""A tracer that records which codec pipeline *actually* ran for each array.

It exists because the stack falls back silently: anndata swaps the pipeline inside
write_zarr/read_zarr, and zarrs hands arrays to zarr's Python pipeline for unsupported stores and
dtypes without a warning. A point that claims "zarrs" must show zarrs in `pipeline_effective`.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.util
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_current_array: contextvars.ContextVar[str] = contextvars.ContextVar("harness_array", default="?")


def _array_path(batch: list[Any]) -> str | None:
    """Array path of a batch whose getters are StorePaths ('X/data/c/0' -> 'X/data'); None for shard-internal calls."""
    if not batch:
        return None
    getter = batch[0][0]
    path = getattr(getter, "path", None)
    if not isinstance(path, str) or type(getter).__name__ != "StorePath":
        return None
    if "/c/" in path:
        return path.rpartition("/c/")[0]
    return path.removesuffix("/c")


class PipelineTracer:
    """Records {array path: {pipeline that ran}} while active (patches the pipeline classes)."""

    def __init__(self) -> None:
        self.used: dict[str, set[str]] = defaultdict(set)

    def record(self, path: str | None, pipeline: str) -> None:
        if path is not None:
            self.used[path].add(pipeline)

    def summary(self) -> dict[str, list[str]]:
        return {path: sorted(p) for path, p in sorted(self.used.items())}

    def effective(self) -> list[str]:
        return sorted(set().union(*self.used.values())) if self.used else []


def _wrap_python_like(cls: type, label: str, tracer: PipelineTracer) -> list[tuple[type, str, Any]]:
    saved = []
    for method in ("read", "write"):
        original = getattr(cls, method)

        @functools.wraps(original)
        async def wrapper(self, batch_info, *args, _original=original, **kwargs):
            batch = list(batch_info)
            name = "python (zarrs fallback)" if getattr(self, "_harness_zarrs_fallback", False) else label
            tracer.record(_array_path(batch), name)
            return await _original(self, batch, *args, **kwargs)

        saved.append((cls, method, original))
        setattr(cls, method, wrapper)
    return saved


class _TracedZarrsImpl:
    """Proxy around zarrs' Rust CodecPipelineImpl: a call reaching it means zarrs really ran."""

    def __init__(self, impl: Any, tracer: PipelineTracer) -> None:
        self._impl, self._tracer = impl, tracer

    def retrieve_chunks_and_apply_index(self, *args: Any) -> Any:
        self._tracer.record(_current_array.get(), "zarrs")
        return self._impl.retrieve_chunks_and_apply_index(*args)

    def store_chunks_with_indices(self, *args: Any) -> Any:
        self._tracer.record(_current_array.get(), "zarrs")
        return self._impl.store_chunks_with_indices(*args)


def _wrap_zarrs(tracer: PipelineTracer) -> list[tuple[type, str, Any]]:
    from zarrs import ZarrsCodecPipeline

    saved: list[tuple[type, str, Any]] = []
    for method in ("read", "write"):
        original = getattr(ZarrsCodecPipeline, method)

        @functools.wraps(original)
        async def wrapper(self, batch_info, *args, _original=original, **kwargs):
            batch = list(batch_info)
            if self.impl is not None and not isinstance(self.impl, _TracedZarrsImpl):
                self.impl = _TracedZarrsImpl(self.impl, tracer)
            if self.python_impl is not None:
                object.__setattr__(self.python_impl, "_harness_zarrs_fallback", True)
            token = _current_array.set(_array_path(batch) or "?")
            try:
                return await _original(self, batch, *args, **kwargs)
            finally:
                _current_array.reset(token)

        saved.append((ZarrsCodecPipeline, method, original))
        setattr(ZarrsCodecPipeline, method, wrapper)
    return saved


@contextmanager
def trace_pipelines() -> Iterator[PipelineTracer]:
    """Patch every installed pipeline class for the duration; yields the tracer."""
    from zarr.core import codec_pipeline as cp

    tracer = PipelineTracer()
    saved = _wrap_python_like(cp.BatchedCodecPipeline, "python", tracer)
    if hasattr(cp, "FusedCodecPipeline"):
        saved += _wrap_python_like(cp.FusedCodecPipeline, "fused", tracer)
    if importlib.util.find_spec("zarrs") is not None:
        saved += _wrap_zarrs(tracer)
    try:
        yield tracer
    finally:
        for cls, method, original in reversed(saved):
            setattr(cls, method, original)
