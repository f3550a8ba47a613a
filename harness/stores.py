"""Open a zarr store for a point's backend, and measure what a store left behind.

Backends: `local` (zarr LocalStore), `fsspec`, `obstore` on local files, and the remote values
`s3-fsspec`, `s3-obstore`, `http-fsspec`, `http-obstore`. Every backend writes the same layout, so
file counts and bytes compare across them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import HarnessError


REMOTE_STORES = ("s3-fsspec", "s3-obstore", "http-fsspec", "http-obstore")

#: obstore's retries: bounded, so a dead endpoint fails a point in seconds instead of its 3-minute default.
RETRY: dict[str, Any] = {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}
READ_ONLY_PROTOCOLS = ("http", "https")


@dataclass(frozen=True)
class ClientOptions:
    """Options given to a client library that change which requests it sends (matrix axis `client`)."""

    stores: tuple[str, ...]  # store values it applies to
    fsspec: dict[str, Any]  # storage_options for fsspec filesystems
    why: str


#: One definition of each client-options value (imported by the matrix, the runtime and tune).
CLIENT_OPTIONS: dict[str, ClientOptions] = {
    "default": ClientOptions(("local", "fsspec", "obstore", *REMOTE_STORES, "gds"), {}, "the client library's own defaults"),
    # s3fs' _cat_file sends a HEAD for the size before every whole-object GET when max_concurrency > 1
    # (default 10), to split objects bigger than its block size into concurrent range GETs
    "s3fs-no-head": ClientOptions(("s3-fsspec",), {"max_concurrency": 1},
                                  "s3fs fetches a whole object with one GET, without the HEAD it sends first by default"),
}


def check_client(value: str) -> str:
    if value not in CLIENT_OPTIONS:
        raise HarnessError(f"unknown client options {value!r}; valid: {', '.join(CLIENT_OPTIONS)}")
    return value


def client_invalid_reason(value: str, store: str) -> str | None:
    """Why client options make no sense with a store value, or None."""
    options = CLIENT_OPTIONS[check_client(value)]
    if store not in options.stores:
        return f"client options {value!r} apply to {', '.join(options.stores)} only ({options.why})"
    return None


def client_of(backend: str) -> str:
    """The client library a store value uses: local, fsspec or obstore."""
    return backend.rsplit("-", 1)[-1] if "-" in backend else backend


def protocol_of(backend: str) -> str:
    """file, s3 or http: what the store value talks to."""
    return backend.split("-", 1)[0] if "-" in backend else "file"


def open_store(backend: str, target: Any, *, read_only: bool = False, client: str = "default") -> Any:
    """A zarr v3 store for a path or URL (file, s3://, http(s)://) through the named client library,
    with `client` options (CLIENT_OPTIONS) given to it.

    S3 endpoints and credentials come from the standard AWS_* environment variables, so a user's own
    bucket and the harness's loopback server are opened the same way.
    """
    text = os.fspath(target) if isinstance(target, (str, os.PathLike)) else None
    if text is None:
        return target  # already a store
    if backend == "gds":
        from .gpu import gds_unsupported_reason, open_gds_store

        if reason := gds_unsupported_reason():
            from .errors import UnsupportedPoint

            raise UnsupportedPoint(f"gds store: {reason}")
        return open_gds_store(Path(text), read_only=read_only)
    library = client_of(backend)
    if library not in ("local", "fsspec", "obstore"):
        raise HarnessError(f"unknown store backend {backend!r}; valid: local, fsspec, obstore, {', '.join(REMOTE_STORES)}")
    scheme = text.split("://", 1)[0] if "://" in text else "file"
    if scheme not in ("file", "s3", "http", "https"):
        raise HarnessError(f"unsupported store URL scheme {scheme!r} in {text!r}; use a path, s3://bucket/prefix or https://host/path")
    read_only = read_only or scheme in READ_ONLY_PROTOCOLS
    if scheme == "file":
        return _open_local(library, Path(text.removeprefix("file://")), read_only)
    if library == "obstore":
        from obstore.store import from_url
        from zarr.storage import ObjectStore

        options: dict[str, Any] = {"retry_config": RETRY}
        if scheme == "http":  # (client_options replace the AWS_ALLOW_HTTP the environment gives S3)
            options["client_options"] = {"allow_http": True}
        return ObjectStore(from_url(text, **options), read_only=read_only)
    if library == "local":
        raise HarnessError(f"zarr's LocalStore cannot open {text!r}; use the fsspec or obstore backend")
    from zarr.storage import FsspecStore

    # a fresh filesystem per open: fsspec's instance cache would hand an s3fs/aiohttp session bound to
    # another (maybe closed) event loop to code that runs zarr's async API on its own loop
    options: dict[str, Any] = {"skip_instance_cache": True, **CLIENT_OPTIONS[check_client(client)].fsspec}
    if scheme == "s3" and os.environ.get("AWS_ENDPOINT_URL"):
        options["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return FsspecStore.from_url(text, read_only=read_only, storage_options=options)


def _open_local(client: str, path: Path, read_only: bool) -> Any:
    path = path.absolute()
    if client == "local":
        from zarr.storage import LocalStore

        return LocalStore(path, read_only=read_only)
    if client == "fsspec":
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
        from fsspec.implementations.local import LocalFileSystem
        from zarr.storage import FsspecStore

        fs = AsyncFileSystemWrapper(LocalFileSystem(auto_mkdir=True), asynchronous=True)
        return FsspecStore(fs, path=str(path), read_only=read_only)
    from obstore.store import LocalStore as ObstoreLocal
    from zarr.storage import ObjectStore

    path.mkdir(parents=True, exist_ok=True)
    return ObjectStore(ObstoreLocal(str(path), mkdir=True), read_only=read_only)


def _s3_objects(url: str) -> list[dict[str, Any]]:
    from obstore import list as list_objects
    from obstore.store import from_url

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return [m for batch in list_objects(from_url(f"s3://{bucket}"), prefix=prefix) for m in batch]


@dataclass(frozen=True)
class Footprint:
    """What a written store costs the file system."""

    files: int
    bytes: int


def footprint(path: Path | str) -> Footprint:
    """Files (objects) and bytes under a store directory, S3 prefix, or of a single file such as an .h5ad."""
    if str(path).startswith("s3://"):
        objects = _s3_objects(str(path))
        return Footprint(len(objects), sum(int(m["size"]) for m in objects))
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


def drop_page_cache(path: Path | str) -> bool:
    """Evict a store's files from the page cache (fsync, then POSIX_FADV_DONTNEED).

    Returns True when every file was evicted, so results can say "cold" honestly.
    """
    if not hasattr(os, "posix_fadvise") or "://" in str(path):
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


def remove(path: Path | str) -> None:
    """Remove a store directory, file or S3 prefix, if present."""
    if str(path).startswith("s3://"):
        from obstore import delete
        from obstore.store import from_url

        bucket = str(path).removeprefix("s3://").partition("/")[0]
        keys = [m["path"] for m in _s3_objects(str(path))]
        if keys:
            delete(from_url(f"s3://{bucket}"), keys)
        return
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def check_reachable(url: str) -> None:
    """Fail early, in one line, when a user's remote location cannot be used (before any point runs)."""
    if url.startswith("s3://"):
        from obstore import list as list_objects
        from obstore.store import from_url

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        try:
            store = from_url(f"s3://{bucket}", retry_config={"max_retries": 1, "retry_timeout": timedelta(seconds=10)})
            next(iter(list_objects(store, prefix=prefix or None, chunk_size=1)), None)
        except Exception as exc:
            cause = " ".join(str(exc).split())[:240]
            raise HarnessError(f"cannot use {url}: {type(exc).__name__}: {cause}. Check the bucket name, AWS_ENDPOINT_URL "
                               "and the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile)") from None
    elif url.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise HarnessError(f"cannot use {url}: the server answered HTTP {exc.code}; check the server") from None
        except OSError as exc:
            raise HarnessError(f"cannot reach {url}: {exc}; check the URL and that the server is running") from None
