"""Codec pipelines and event loops: the typed values, whether this machine can run them (answered
without importing zarr), and the one place that installs an event loop as zarr's I/O loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import warnings
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .errors import HarnessError
from .gpu import cuda_probe


class Pipeline(StrEnum):
    """zarr's codec pipeline: python (BatchedCodecPipeline), fused (zarr >= 3.3), zarrs (Rust), gpu."""

    PYTHON = "python"
    FUSED = "fused"
    ZARRS = "zarrs"
    GPU = "gpu"

    @classmethod
    def parse(cls, text: Any) -> Pipeline:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown pipeline {text!r}; valid: {', '.join(cls)}") from None

    @property
    def path(self) -> str:
        """zarr's `codec_pipeline.path` for this pipeline (gpu: the Batched pipeline on GPU buffers)."""
        return {
            "fused": "zarr.core.codec_pipeline.FusedCodecPipeline",
            "zarrs": "zarrs.ZarrsCodecPipeline",
        }.get(self.value, "zarr.core.codec_pipeline.BatchedCodecPipeline")


class Loop(StrEnum):
    """The event loop of zarr's I/O thread."""

    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"

    @classmethod
    def parse(cls, text: Any) -> Loop:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown loop {text!r}; valid: {', '.join(cls)}") from None


def _zarr_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version("zarr").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return (0,)


def unavailable_reason(pipeline: Pipeline, loop: Loop = Loop.ASYNCIO) -> str | None:
    """Why this pipeline / loop cannot run on this machine, without importing zarr."""
    pipeline, loop = Pipeline.parse(pipeline), Loop.parse(loop)
    if pipeline is Pipeline.FUSED and _zarr_version() < (3, 3):
        return f"zarr {version('zarr')} has no FusedCodecPipeline (added in zarr 3.3)"
    if pipeline is Pipeline.ZARRS and importlib.util.find_spec("zarrs") is None:
        return "zarrs is not installed (pip install zarrs)"
    if pipeline is Pipeline.GPU and (reason := cuda_probe()):
        return reason
    if loop is Loop.UVLOOP and importlib.util.find_spec("uvloop") is None:
        return "uvloop is not installed (pip install uvloop; not available on Windows)"
    return None


def loop_name(loop: Any) -> str:
    return f"{type(loop).__module__}.{type(loop).__name__}"


def install_loop(loop: Loop) -> tuple[str, Any]:
    """Make `loop` zarr's I/O loop if zarr has not created one yet, and create it now.

    Returns (the loop class zarr actually runs, the event-loop policy to restore or None). A loop that
    already runs cannot change: then a mismatch is warned about and the running loop is reported.
    """
    from zarr.core import sync

    loop = Loop.parse(loop)
    if sync.loop[0] is not None:
        running = loop_name(sync.loop[0])
        if (loop is Loop.UVLOOP) != running.startswith("uvloop"):
            warnings.warn(
                f"zarr's event loop already runs on {running}; {loop} applies only to a fresh process "
                "(activate the config before the first zarr call)",
                stacklevel=3,
            )
        return running, None
    previous = None
    if loop is Loop.UVLOOP:
        import uvloop

        previous = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return loop_name(sync._get_loop()), previous  # zarr's loop is created now, under the policy set
