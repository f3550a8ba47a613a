"""The workload interface: constructed once per point with its `Context`; `reset` untimed before each
repeat, `run` timed, `verify` (or `settle`, when the content is not checked) untimed after the last repeat."""

from __future__ import annotations

from typing import Any, ClassVar

from ..matrix import Point
from . import storefiles
from .context import Context, zarr_config

HTTP_NEEDS_CONSOLIDATED = (
    "HTTP cannot list directories (the server answers 403), so opening a group needs consolidated "
    "metadata: measured only with cons-on"
)


class Workload:
    """Base class: subclasses define `run` and `verify`."""

    name: ClassVar[str]
    writes: ClassVar[bool] = False
    opens_group: ClassVar[bool] = True  # opens the root group: without consolidated metadata that lists the store
    # its check compares the whole store with the source, the same in every round of interleaved measurements (no
    # random rows or order): made in the first round only (`WorkerSpec.check`)
    checked_once: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.result: Any = None
        self.metrics: dict[str, float] = {}

    @classmethod
    def unsupported_reason(cls, point: Point) -> str | None:
        """Why this workload cannot run for `point` at all (the worker records it as unsupported, asv skips
        it in setup), or None."""
        if (
            cls.opens_group
            and point.api != "h5ad"
            and not point.config.consolidated
            and not point.config.store.supports_listing
        ):
            return HTTP_NEEDS_CONSOLIDATED
        return None

    def config(self):
        return zarr_config(self.ctx.point, self.name)

    def reset(self) -> None:
        """Untimed, before each repeat: evict the store from the page cache for cold reads."""
        if self.ctx.cold:
            self.ctx.last_cold = storefiles.drop_page_cache(self.ctx.measured_at)

    def run(self) -> None:
        raise NotImplementedError

    def verify(self) -> None:
        raise NotImplementedError

    def settle(self) -> None:
        """Untimed, after the last repeat in place of `verify` when the content is not checked (an identical
        store was checked in an earlier round): what `verify` does besides checking. Nothing by default."""
