"""Pipeline knobs: zarrs' threading and chunk-concurrency settings, its checksum and direct-I/O
switches, zarr's own batch size, and the threads dask computes lazy arrays with (each `read_lazy`
chunk is a chain of requests, so on a remote store the thread count is the number of round trips in
flight). Each knob is honoured by some pipelines only, and zarrs reads its knobs once, when a
pipeline is created: a setting needs its own process.

Spelling: `default`, or `name=value` pairs joined by `+`, e.g. `zarrs-workers=2+zarrs-chunk-min=4`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import HarnessError


@dataclass(frozen=True)
class Knob:
    key: str  # zarr config key, or "dask:<key>" / "numcodecs:<setting>"
    kind: type
    pipelines: tuple[str, ...]  # pipelines that honour it
    why: str
    minimum: int = 1


KNOBS: dict[str, Knob] = {
    "zarrs-workers": Knob("threading.max_workers", int, ("zarrs",), "zarrs' Rust thread pool size"),
    "zarrs-chunk-min": Knob(
        "codec_pipeline.chunk_concurrent_minimum",
        int,
        ("zarrs",),
        "chunks decoded concurrently at least (the rest of the threads go to codecs)",
    ),
    "zarrs-chunk-max": Knob(
        "codec_pipeline.chunk_concurrent_maximum", int, ("zarrs",), "chunks decoded concurrently at most"
    ),
    "zarrs-checksums": Knob("codec_pipeline.validate_checksums", bool, ("zarrs",), "validate crc32c checksums on read"),
    "zarrs-direct-io": Knob("codec_pipeline.direct_io", bool, ("zarrs",), "O_DIRECT for local files"),
    "batch-size": Knob(
        "codec_pipeline.batch_size", int, ("python",), "chunks per batch in zarr's BatchedCodecPipeline"
    ),
    "dask-workers": Knob(
        "dask:num_workers",
        int,
        ("python", "fused", "zarrs", "gpu"),
        "threads of dask's scheduler for read_lazy arrays (default: one per core)",
    ),
    "fused-workers": Knob(
        "codec_pipeline.max_workers", int, ("fused",), "threads of zarr's FusedCodecPipeline (default: one per core)"
    ),
    "blosc-threads": Knob(
        "numcodecs:blosc_threads",
        int,
        ("python", "fused"),
        "Blosc's own threads inside one call (numcodecs; by default one thread off the main thread)",
    ),
    "coalesce-gap": Knob(
        "array.sharding_coalesce_max_gap_bytes",
        int,
        ("python", "fused"),
        "partial reads of a shard closer than this many bytes are fetched in one request (zarr: 1 MiB)",
        minimum=0,
    ),
    "coalesce-max": Knob(
        "array.sharding_coalesce_max_bytes",
        int,
        ("python", "fused"),
        "largest merged partial read of a shard (zarr: 16 MiB)",
    ),
}
DASK_PREFIX = "dask:"
NUMCODECS_PREFIX = "numcodecs:"


@dataclass(frozen=True)
class Knobs:
    """A parsed knob setting: (name, value) pairs in name order; `name` is its canonical text."""

    values: tuple[tuple[str, int | bool], ...] = ()

    @property
    def name(self) -> str:
        if not self.values:
            return "default"
        return "+".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.values)

    def invalid_reason(self, pipeline: str) -> str | None:
        """Why this setting makes no sense with a pipeline, or None."""
        wrong = [n for n, _ in self.values if pipeline not in KNOBS[n].pipelines]
        return (
            "; ".join(f"knob {n} is honoured only by the {'/'.join(KNOBS[n].pipelines)} pipeline" for n in wrong)
            or None
        )

    @property
    def zarr(self) -> dict[str, int | bool]:
        """The zarr config entries this setting means."""
        return {KNOBS[n].key: v for n, v in self.values if ":" not in KNOBS[n].key}

    @property
    def numcodecs(self) -> dict[str, int | bool]:
        """numcodecs settings this setting means (Blosc's threads)."""
        return {
            KNOBS[n].key.removeprefix(NUMCODECS_PREFIX): v
            for n, v in self.values
            if KNOBS[n].key.startswith(NUMCODECS_PREFIX)
        }

    @property
    def dask(self) -> dict[str, int | bool]:
        """The dask config entries this setting means (e.g. `num_workers` of the threaded scheduler)."""
        return {
            KNOBS[n].key.removeprefix(DASK_PREFIX): v for n, v in self.values if KNOBS[n].key.startswith(DASK_PREFIX)
        }


def parse_knobs(text: Any) -> Knobs:
    """`default` -> Knobs(); `zarrs-workers=2+batch-size=8` -> both, in name order."""
    if isinstance(text, Knobs):
        return text
    text = str(text or "default").strip()
    if text == "default":
        return Knobs()
    out: dict[str, int | bool] = {}
    for part in text.split("+"):
        name, sep, raw = part.partition("=")
        if name not in KNOBS or not sep:
            raise HarnessError(
                f"knob {part!r} not understood; use name=value with name one of {', '.join(KNOBS)}, joined by +"
            )
        if KNOBS[name].kind is bool:
            if raw not in ("true", "false"):
                raise HarnessError(f"knob {name} takes true or false, not {raw!r}")
            out[name] = raw == "true"
        else:
            if not raw.isdigit() or int(raw) < KNOBS[name].minimum:
                raise HarnessError(f"knob {name} takes a whole number of at least {KNOBS[name].minimum}, not {raw!r}")
            out[name] = int(raw)
    return Knobs(tuple(sorted(out.items())))
