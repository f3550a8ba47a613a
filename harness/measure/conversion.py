"""`harness convert`: an .h5ad or zarr store rewritten to a tuned layout larger than memory, verified.

The source's X and layers are read slice by slice from the file (h5py or zarr, never whole), written by
`runtime.convert` with every task owning whole shards, then every shard is compared with the source. The
rest (obs, var, uns, obsm, ...) is read into memory: it is small next to the matrices. Measured: wall
time, cells/s, the peak RSS of every process that ran tasks (this one locally; each worker's on a
cluster, whose workers start fresh), files and bytes of the result.
"""

from __future__ import annotations

import importlib.util
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..runtime import IOConfig
from ..runtime import convert as streaming

SMALL = ("obs", "var", "uns", "obsm", "varm", "obsp", "varp")


def load_config(path: str | None) -> IOConfig:
    """The configuration to convert to: io_config.py's recommended_config(), an IOConfig JSON, or the default."""
    if path is None:
        return IOConfig()
    file = Path(path)
    if not file.exists():
        raise HarnessError(f"--config {path} does not exist; pass the io_config.py or JSON that harness tune wrote")
    if file.suffix == ".py":
        spec = importlib.util.spec_from_file_location("harness_convert_config", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "recommended_config", None)):
            raise HarnessError(f"--config {path} has no recommended_config(); pass the io_config.py harness tune wrote")
        return module.recommended_config()
    return IOConfig.from_json(file.read_text())


def _root(path: Path) -> Any:
    if path.is_file():
        import h5py

        try:
            return h5py.File(path, "r")
        except OSError:
            raise HarnessError(f"{path} is not an .h5ad (HDF5) file; pass an .h5ad file or a zarr store") from None
    import zarr

    try:
        return zarr.open_group(path, mode="r")
    except Exception:  # noqa: BLE001 - zarr raises several types for "not a group"
        raise HarnessError(f"{path} is not a zarr store with an AnnData in it; pass an .h5ad or .zarr") from None


def file_sources(path: Path) -> tuple[Any, dict[str, Any]]:
    """The source's small elements as an in-memory AnnData, and its X and layers as file sources."""
    import anndata as ad

    if not path.exists():
        raise HarnessError(f"{path} does not exist; pass an .h5ad file or a zarr store")
    root = _root(path)
    small = {k: ad.io.read_elem(root[k]) for k in SMALL if k in root}
    sources = {"X": streaming.FileSource(str(path), "X")} if "X" in root else {}
    sources.update({f"layers/{k}": streaming.FileSource(str(path), f"layers/{k}") for k in root.get("layers", {})})
    if "obs" not in small or "var" not in small:
        raise HarnessError(f"{path} has no obs/var: it is not an AnnData store")
    return ad.AnnData(X=None, **small), sources


@dataclass
class Converted:
    cells: int
    seconds: float
    verify_seconds: float
    mismatches: list[str]
    peak_rss: dict[str, int]  # process -> bytes
    files: int
    bytes: int
    tasks: int
    shards: dict[str, int] = field(default_factory=dict)

    @property
    def cells_per_s(self) -> float:
        return self.cells / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "cells_per_s": round(self.cells_per_s, 1)}


def _peak_rss(client: Any | None) -> dict[str, int]:
    def own() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    if client is None:
        return {"local": own()}
    return {addr: int(v) for addr, v in client.run(own).items()}


def convert(src: Path, dst: Path, cfg: IOConfig, *, client: Any | None = None, verify: bool = True) -> Converted:
    """Rewrite `src` to `dst` under `cfg` through dask (the active distributed client's workers, if any)."""
    from .storefiles import footprint

    if dst.exists():
        raise HarnessError(f"{dst} exists; pass a new destination (nothing was written)")
    shell, sources = file_sources(src)
    start = time.perf_counter()
    streamed = streaming.write_streamed(cfg, shell, sources, dst)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    mismatches = streaming.verify(cfg, dst, streamed) if verify else []
    written = footprint(dst)
    return Converted(
        cells=shell.n_obs,
        seconds=seconds,
        verify_seconds=time.perf_counter() - start,
        mismatches=mismatches,
        peak_rss=_peak_rss(client),
        files=written.files,
        bytes=written.bytes,
        tasks=len(streamed.plan.fills),
        shards={f"{e}/{p}".rstrip("/"): s for (e, p), (_, s) in streamed.plan.arrays.items()},
    )
