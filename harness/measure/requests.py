"""Request counting at the loopback servers: what a measurement asked of the network, read from the
access logs of the servers it talked to (the worker counts per timed run)."""

from __future__ import annotations

import os
import time
from pathlib import Path

#: Environment naming the access logs a worker reads to count its requests (os.pathsep-separated).
ACCESS_LOGS_ENV = "HARNESS_ACCESS_LOGS"


class RequestCounter:
    """Counts the requests a measurement sent, from the access logs of the servers it talked to.

    Server-side counting sees every client (fsspec, obstore, zarrs' Rust I/O) without wrapping the store,
    which would change what is measured. `repeated` counts requests for a (method, URI, range) already
    fetched in the same measurement: the round trips a cache or a better layout would save.
    """

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.offsets = [0] * len(self.paths)

    @classmethod
    def from_env(cls) -> RequestCounter | None:
        raw = os.environ.get(ACCESS_LOGS_ENV, "")
        paths = [Path(p) for p in raw.split(os.pathsep) if p]
        return cls(paths) if paths else None

    def start(self) -> None:
        self.offsets = [p.stat().st_size if p.exists() else 0 for p in self.paths]

    def stop(self) -> dict[str, int]:
        time.sleep(0.02)  # nginx logs a request just after its last byte is sent
        lines: list[str] = []
        for path, offset in zip(self.paths, self.offsets, strict=True):
            if path.exists():
                with open(path, errors="replace") as fh:
                    fh.seek(offset)
                    lines += fh.read().splitlines()
        return count_requests(lines)


def count_requests(lines: list[str]) -> dict[str, int]:
    """requests, bytes sent, repeated fetches, and requests per method, from `harness` log lines."""
    seen: set[tuple[str, str, str]] = set()
    out = {"requests": 0, "bytes": 0, "repeated": 0, "errors": 0}
    for line in lines:
        fields = line.split("\t")
        if len(fields) < 5:
            continue
        method, uri, rng, status, sent = fields[:5]
        out["requests"] += 1
        out["bytes"] += int(sent) if sent.isdigit() else 0
        out[method] = out.get(method, 0) + 1
        out["errors"] += status.startswith("5")
        key = (method, uri, rng)
        out["repeated"] += key in seen and method in ("GET", "HEAD")
        seen.add(key)
    return out
