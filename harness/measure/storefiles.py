"""What a written store costs and how to get rid of it: files and bytes (local directory, .h5ad file or
S3 prefix), page-cache eviction for cold reads, removal, and a reachability check for a user's URL."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..runtime import Location, Protocol, parse_location


def _s3_objects(location: Location) -> list[dict[str, Any]]:
    from obstore import list as list_objects
    from obstore.store import from_url

    return [m for batch in list_objects(from_url(f"s3://{location.bucket}"), prefix=location.prefix) for m in batch]


@dataclass(frozen=True)
class Footprint:
    """What a written store costs the file system."""

    files: int
    bytes: int


def footprint(target: Path | str) -> Footprint:
    """Files (objects) and bytes under a store directory, S3 prefix, or of a single file such as an .h5ad."""
    location = parse_location(target)
    if location.protocol is Protocol.S3:
        objects = _s3_objects(location)
        return Footprint(len(objects), sum(int(m["size"]) for m in objects))
    path = Path(location.path)
    if path.is_file():
        return Footprint(1, path.stat().st_size)
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.stat(os.path.join(root, name)).st_size
    return Footprint(files, size)


def _store_files(path: Path) -> list[str]:
    if path.is_file():
        return [str(path)]
    return [os.path.join(root, n) for root, _, names in os.walk(path) for n in names]


def drop_page_cache(target: Path | str) -> bool:
    """Evict a store's files from the page cache (fsync, then POSIX_FADV_DONTNEED).

    Returns True when every file was evicted, so results can say "cold" honestly.
    """
    location = parse_location(target)
    if not hasattr(os, "posix_fadvise") or location.protocol is not Protocol.FILE:
        return False
    ok = True
    for name in _store_files(Path(location.path)):
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


def remove(target: Path | str) -> None:
    """Remove a store directory, file or S3 prefix, if present."""
    location = parse_location(target)
    if location.protocol is Protocol.S3:
        from obstore import delete
        from obstore.store import from_url

        keys = [m["path"] for m in _s3_objects(location)]
        if keys:
            delete(from_url(f"s3://{location.bucket}"), keys)
        return
    path = Path(location.path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def check_reachable(location: Location) -> None:
    """Fail early, in one line, when a user's remote location cannot be used (before any point runs)."""
    if location.protocol is Protocol.S3:
        from obstore import list as list_objects
        from obstore.store import from_url

        try:
            store = from_url(
                f"s3://{location.bucket}", retry_config={"max_retries": 1, "retry_timeout": timedelta(seconds=10)}
            )
            next(iter(list_objects(store, prefix=location.prefix or None, chunk_size=1)), None)
        except Exception as exc:  # noqa: BLE001 - any client error becomes one line with what to check
            cause = " ".join(str(exc).split())[:240]  # every line, joined: the cause may be on any
            raise HarnessError(
                f"cannot use {location.url}: {type(exc).__name__}: {cause}. Check the bucket name, AWS_ENDPOINT_URL "
                "and the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile)"
            ) from None
    elif location.protocol is Protocol.HTTP:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(location.url, method="HEAD"), timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise HarnessError(
                    f"cannot use {location.url}: the server answered HTTP {exc.code}; check the server"
                ) from None
        except OSError as exc:
            raise HarnessError(
                f"cannot reach {location.url}: {exc}; check the URL and that the server is running"
            ) from None
