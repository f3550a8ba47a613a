"""Where a store lives and how it is opened: the store value (client library on a protocol), the
location a user writes (a path, s3://bucket/prefix, http(s)://host/path), and the client options.

Each is parsed once, here, into a typed value that knows what it can do (as zarr's stores declare
`supports_writes` / `supports_listing`); nothing else in the harness splits these strings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from .errors import HarnessError, UnsupportedPoint


class Protocol(StrEnum):
    FILE = "file"
    S3 = "s3"
    HTTP = "http"

    @property
    def supports_writes(self) -> bool:
        return self is not Protocol.HTTP  # a web server serves files; PUT is not part of the deal

    @property
    def supports_listing(self) -> bool:
        return self is not Protocol.HTTP  # nginx answers a directory with 403


class Store(StrEnum):
    """A store backend: a client library (zarr's LocalStore, fsspec, obstore, kvikio's GDS) on a protocol."""

    LOCAL = "local"
    FSSPEC = "fsspec"
    OBSTORE = "obstore"
    S3_FSSPEC = "s3-fsspec"
    S3_OBSTORE = "s3-obstore"
    HTTP_FSSPEC = "http-fsspec"
    HTTP_OBSTORE = "http-obstore"
    GDS = "gds"

    @classmethod
    def parse(cls, text: Any) -> Store:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown store {text!r}; valid: {', '.join(cls)}") from None

    @classmethod
    def of(cls, protocol: Protocol, client: str) -> Store:
        """The store value for a client library on a protocol (`s3` + `obstore` -> s3-obstore)."""
        name = client if protocol is Protocol.FILE else f"{protocol}-{client}"
        try:
            return cls(name)
        except ValueError:
            raise HarnessError(f"client {client!r} cannot open {protocol} locations; use obstore or fsspec") from None

    @property
    def protocol(self) -> Protocol:
        return Protocol(self.value.split("-")[0]) if "-" in self.value else Protocol.FILE

    @property
    def client(self) -> str:
        """The client library: local (zarr's LocalStore), fsspec, obstore or gds."""
        return self.value.split("-")[-1]

    @property
    def remote(self) -> bool:
        return self.protocol is not Protocol.FILE

    @property
    def supports_writes(self) -> bool:
        return self.protocol.supports_writes

    @property
    def supports_listing(self) -> bool:
        return self.protocol.supports_listing


@dataclass(frozen=True)
class Location:
    """A place a store lives, parsed from what a user types: a path, s3://bucket/prefix or http(s)://host/path."""

    url: str  # as given (a path stays a path)
    protocol: Protocol
    bucket: str = ""  # s3 only
    prefix: str = ""  # s3: the key prefix inside the bucket
    path: Path | None = field(default=None, compare=False)  # file only

    @property
    def supports_writes(self) -> bool:
        return self.protocol.supports_writes

    def child(self, name: str) -> Location:
        return parse_location(f"{self.url.rstrip('/')}/{name}" if self.path is None else self.path / name)


SCHEMES = {"file": Protocol.FILE, "s3": Protocol.S3, "http": Protocol.HTTP, "https": Protocol.HTTP}


def parse_location(target: str | os.PathLike[str]) -> Location:
    """The one URL parser: a local path (or file://), s3://bucket/prefix, or http(s)://host/path."""
    text = os.fspath(target)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return Location(text, Protocol.FILE, path=Path(text))
    protocol = SCHEMES.get(scheme.lower())
    if protocol is None:
        raise HarnessError(
            f"unsupported store URL scheme {scheme!r} in {text!r}; use a path, s3://bucket/prefix or https://host/path"
        )
    if protocol is Protocol.FILE:
        return Location(text, protocol, path=Path(rest))
    if protocol is Protocol.S3:
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise HarnessError(f"{text!r} names no bucket; use s3://bucket/prefix")
        return Location(text, protocol, bucket=bucket, prefix=prefix.strip("/"))
    return Location(text, protocol)


class Client(StrEnum):
    """Client-library options that change which requests are sent (matrix axis `client`)."""

    DEFAULT = "default"
    # s3fs' _cat_file sends a HEAD for the size before every whole-object GET when max_concurrency > 1
    # (default 10), to split objects bigger than its block size into concurrent range GETs
    S3FS_NO_HEAD = "s3fs-no-head"

    @classmethod
    def parse(cls, text: Any) -> Client:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown client options {text!r}; valid: {', '.join(cls)}") from None

    @property
    def stores(self) -> tuple[Store, ...]:
        return tuple(Store) if self is Client.DEFAULT else (Store.S3_FSSPEC,)

    @property
    def fsspec_options(self) -> dict[str, Any]:
        return {"max_concurrency": 1} if self is Client.S3FS_NO_HEAD else {}

    @property
    def why(self) -> str:
        if self is Client.DEFAULT:
            return "the client library's own defaults"
        return "s3fs fetches a whole object with one GET, without the HEAD it sends first by default"

    def invalid_reason(self, store: Store) -> str | None:
        if store not in self.stores:
            return f"client options {self.value!r} apply to {', '.join(self.stores)} only ({self.why})"
        return None


#: obstore's retries: bounded, so a dead endpoint fails a point in seconds instead of its 3-minute default.
RETRY: dict[str, Any] = {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}


def open_store(store: Store, target: Any, *, read_only: bool = False, client: Client = Client.DEFAULT) -> Any:
    """A zarr v3 store for a path or URL through the store value's client library, with `client` options.

    S3 endpoints and credentials come from the standard AWS_* environment variables, so a user's own
    bucket and the harness's loopback server are opened the same way. A store object passes through.
    """
    if not isinstance(target, (str, os.PathLike)):
        return target  # already a store
    location = parse_location(target)
    if store is Store.GDS:
        from .gpu import gds_unsupported_reason, open_gds_store

        if reason := gds_unsupported_reason():
            raise UnsupportedPoint(f"gds store: {reason}")
        return open_gds_store(Path(location.path or location.url), read_only=read_only)
    read_only = read_only or not location.supports_writes
    if location.protocol is Protocol.FILE:
        return _open_local(store.client, location.path, read_only)
    if store.client == "obstore":
        from obstore.store import from_url
        from zarr.storage import ObjectStore

        options: dict[str, Any] = {"retry_config": RETRY}
        if location.protocol is Protocol.HTTP:  # (client_options replace the AWS_ALLOW_HTTP the environment gives S3)
            options["client_options"] = {"allow_http": True}
        return ObjectStore(from_url(location.url, **options), read_only=read_only)
    if store.client == "local":
        raise HarnessError(f"zarr's LocalStore cannot open {location.url!r}; use the fsspec or obstore backend")
    from zarr.storage import FsspecStore

    # a fresh filesystem per open: fsspec's instance cache would hand an s3fs/aiohttp session bound to
    # another (maybe closed) event loop to code that runs zarr's async API on its own loop
    fs_options: dict[str, Any] = {"skip_instance_cache": True, **client.fsspec_options}
    if location.protocol is Protocol.S3 and os.environ.get("AWS_ENDPOINT_URL"):
        fs_options["endpoint_url"] = os.environ["AWS_ENDPOINT_URL"]
    return FsspecStore.from_url(location.url, read_only=read_only, storage_options=fs_options)


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
