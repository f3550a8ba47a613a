"""What a GPU configuration needs at run time: a usable CUDA device (probed through cupy, inside a try)
and, for the `gds` store, kvikio's GDSStore. Nothing imports cupy or kvikio unless a config asks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .errors import one_line


def cuda_probe() -> str | None:
    """None when a CUDA device is usable through cupy, else the reason it is not."""
    if importlib.util.find_spec("cupy") is None:
        return "cupy is not installed (pip install harness[gpu]); no CUDA device to run GPU points on"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - cupy raises its own CUDARuntimeError subclasses
        return f"CUDA is not usable: {one_line(exc)}"
    return None if count > 0 else "CUDA reports no device"


def gds_unsupported_reason() -> str | None:
    """Why the `gds` store cannot run here, or None."""
    if reason := cuda_probe():
        return reason
    if importlib.util.find_spec("kvikio") is None:
        return "kvikio is not installed (pip install harness[gpu]: kvikio-cu12)"
    return None


def open_gds_store(path: Path, read_only: bool = False) -> Any:
    from kvikio.zarr import GDSStore

    return GDSStore(str(path), read_only=read_only)
