"""Open a zarr store for a point's backend, and measure what a store left on disk.

Only local backends live here for now (local, fsspec on local files, obstore LocalStore); every
one writes the same directory layout, so file counts and bytes are comparable.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HarnessError


def open_store(backend: str, path: Path, *, read_only: bool = False) -> Any:
    """A zarr v3 store object for `path` through the named backend."""
    path = Path(path).absolute()
    if backend == "local":
        from zarr.storage import LocalStore

        return LocalStore(path, read_only=read_only)
    if backend == "fsspec":
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
        from fsspec.implementations.local import LocalFileSystem
        from zarr.storage import FsspecStore

        fs = AsyncFileSystemWrapper(LocalFileSystem(auto_mkdir=True), asynchronous=True)
        return FsspecStore(fs, path=str(path), read_only=read_only)
    if backend == "obstore":
        from obstore.store import LocalStore as ObstoreLocal
        from zarr.storage import ObjectStore

        path.mkdir(parents=True, exist_ok=True)
        return ObjectStore(ObstoreLocal(str(path), mkdir=True), read_only=read_only)
    raise HarnessError(f"unknown store backend {backend!r}; valid: local, fsspec, obstore")


@dataclass(frozen=True)
class Footprint:
    """What a written store costs the file system."""

    files: int
    bytes: int


def footprint(path: Path) -> Footprint:
    """Files and bytes under a store directory (or of a single file such as an .h5ad)."""
    path = Path(path)
    if path.is_file():
        return Footprint(1, path.stat().st_size)
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.stat(os.path.join(root, name)).st_size
    return Footprint(files, size)


def _store_files(path: Path) -> list[str]:
    path = Path(path)
    if path.is_file():
        return [str(path)]
    return [os.path.join(root, n) for root, _, names in os.walk(path) for n in names]


def drop_page_cache(path: Path) -> bool:
    """Evict a store's files from the page cache (fsync, then POSIX_FADV_DONTNEED).

    Returns True when every file was evicted, so results can say "cold" honestly.
    """
    if not hasattr(os, "posix_fadvise"):
        return False
    ok = True
    for name in _store_files(path):
        try:
            fd = os.open(name, os.O_RDONLY)
        except OSError:
            ok = False
            continue
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            ok = False
        finally:
            os.close(fd)
    return ok


def remove(path: Path) -> None:
    """Remove a store directory or file, if present."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
