"""Consolidated metadata checks: does the copy in the root `zarr.json` still match the store?

Consolidated metadata turns `read_lazy`'s many small metadata GETs into one, which is what makes
remote opening fast, but zarr never updates it when a node is changed or deleted afterwards. A stale
copy makes readers see arrays that are gone or attributes that changed. `check` compares every
consolidated entry with the node's own `zarr.json` and, where the store can list, finds nodes the
consolidated copy does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HarnessError, one_line
from .stores import Protocol, Store, open_store, parse_location


@dataclass
class Check:
    """What `check` found; `stale` is True when readers would see something that is not there."""

    url: str
    consolidated: bool
    nodes: int = 0
    missing: list[str] = field(default_factory=list)  # in the consolidated copy, gone from the store
    changed: list[str] = field(default_factory=list)  # zarr.json differs from the consolidated copy
    unlisted: list[str] = field(default_factory=list)  # in the store, absent from the consolidated copy
    listing: bool = True

    @property
    def stale(self) -> bool:
        return bool(self.missing or self.changed or self.unlisted)

    def message(self) -> str:
        if not self.consolidated:
            return (
                f"{self.url}: no consolidated metadata; remote read_lazy will fetch every zarr.json. "
                "Add it with zarr.consolidate_metadata(store) (or harness check-store URL --fix)"
            )
        if not self.stale:
            scope = "" if self.listing else " (store cannot list: nodes added later are not checked)"
            return f"{self.url}: consolidated metadata matches all {self.nodes} nodes{scope}"
        parts = [
            f"{len(v)} {k} ({', '.join(v[:5])}{', ...' if len(v) > 5 else ''})"
            for k, v in (("removed", self.missing), ("changed", self.changed), ("not in it", self.unlisted))
            if v
        ]
        return (
            f"{self.url}: consolidated metadata is STALE: {'; '.join(parts)}. Readers that use it see the old "
            "hierarchy. Fix: zarr.consolidate_metadata(store) on a writable store (harness check-store URL --fix)"
        )


def _normalised(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc, default=str))
    doc.pop("consolidated_metadata", None)  # groups carry an (empty) copy inside the consolidated entry only
    return doc


def check(url: str | Path, client: str | None = None, *, fix: bool = False) -> Check:
    """Compare a store's consolidated metadata with its nodes; with `fix`, re-consolidate when stale.
    `client`: local, fsspec or obstore (default: zarr's LocalStore for paths, obstore for URLs)."""
    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    location = parse_location(url)
    url = location.url
    default = "local" if location.protocol is Protocol.FILE else "obstore"
    store = open_store(Store.of(location.protocol, client or default), url, read_only=not fix)
    try:
        group = zarr.open_group(store, mode="r")  # reads the consolidated copy when there is one
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, the user gets one line
        raise HarnessError(
            f"cannot open {url} as a zarr group ({one_line(exc)}); check the URL and credentials"
        ) from None
    consolidated = group.metadata.consolidated_metadata
    result = Check(url, consolidated is not None)
    if consolidated is None:
        return result
    entries = consolidated.flattened_metadata
    result.nodes = len(entries)
    prototype = default_buffer_prototype()
    for key, meta in sorted(entries.items()):
        raw = sync(store.get(f"{key}/zarr.json", prototype))
        if raw is None:
            result.missing.append(key)
        elif _normalised(json.loads(raw.to_bytes())) != _normalised(meta.to_dict()):
            result.changed.append(key)
    result.listing = bool(getattr(store, "supports_listing", False)) and location.protocol.supports_listing
    if result.listing:

        async def metadata_keys() -> list[str]:
            return [k async for k in store.list() if k.endswith("zarr.json")]

        known = {f"{k}/zarr.json" for k in entries} | {"zarr.json"}
        result.unlisted = sorted(k.removesuffix("/zarr.json") for k in sync(metadata_keys()) if k not in known)
    if fix and result.stale:
        zarr.consolidate_metadata(store)
    return result
