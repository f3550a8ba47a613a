"""Cross-pipeline reads: a point's store read back under every reader pipeline and anndata's own read_zarr,
each compared with the source (the numcodecs#424 class of bug: written by one codec implementation,
unreadable or different under another)."""

from __future__ import annotations

from typing import Any

from ..analysis.results import Row, Status
from ..errors import one_line
from ..runtime import Pipeline
from ..runtime.pipelines import unavailable_reason


def cross_read(ctx: Any, readers: list[str], own: str | None = None) -> Row:
    """Read the point's store back under each reader pipeline (the numcodecs#424 class of bug). The reader `own`
    (the point's pipeline, when the read workload reads and checks the same store) is not read again."""
    from dataclasses import replace

    import anndata as ad

    from ..runtime.stores import open_store
    from . import verify
    from .context import read_store, zarr_config

    cfg = ctx.point.config
    outcome: dict[str, str] = {}
    for reader in readers:
        if reader == own:  # the read workload reads it the same way and compares it with the source
            outcome[reader] = "ok"
            continue
        if reader != "read_zarr" and (reason := unavailable_reason(Pipeline(reader))):
            outcome[reader] = f"unsupported: {reason}"
            continue
        try:
            if reader == "read_zarr":  # anndata's own reader with zarr's default config, as users call it
                with zarr_config(ctx.point.with_axes(pipeline="python"), "read"):
                    got = ad.io.read_zarr(open_store(cfg.store, ctx.output, read_only=True, client=cfg.client))
            else:
                reader_ctx = replace(ctx, point=ctx.point.with_axes(pipeline=reader))
                with zarr_config(reader_ctx.point, "read"):
                    got = read_store(reader_ctx)
            verify.assert_anndata_equal(got, ctx.source, f"read by {reader}")
            outcome[reader] = "ok"
        except Exception as exc:  # noqa: BLE001 - each reader's failure is reported by name
            outcome[reader] = one_line(exc)
    failed = {r: v for r, v in outcome.items() if v != "ok" and not v.startswith("unsupported")}
    error = "; ".join(f"{r}: {v}" for r, v in failed.items())
    return Row(ctx.point.id, "interop", Status.FAILED if failed else Status.OK, error, {"readers": outcome})
