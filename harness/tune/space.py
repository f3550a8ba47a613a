"""What tune searches and how it scores: objectives, search spaces, constraints, candidates."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import matrix
from ..analysis.stats import median
from ..errors import HarnessError
from ..matrix import Point, static_status
from ..runtime import Client, Pipeline, Store
from .layout import Shapes, fingerprint

#: Objective -> workload weights of a weighted geometric mean of median seconds (lower is better).
#: balanced weighs a full write, a full read and the two lazy access patterns equally.
OBJECTIVES: dict[str, dict[str, float]] = {
    "write": {"write": 1.0},
    "read": {"read": 1.0},
    "lazy": {"lazy-open": 1.0, "lazy-rows": 1.0, "lazy-random": 1.0},
    "balanced": {"write": 1.0, "read": 1.0, "lazy-rows": 1.0, "lazy-random": 1.0},
    "size": {},  # bytes on disk of the written store
    "stream": {
        "stream-blocks": 1.0
    },  # an epoch of block-shuffled minibatches at the user's --batch/--run-rows/--preload
}
VERIFY_WORKLOADS = ["write", "read", "lazy-open", "lazy-rows", "lazy-random", "lazy-obs", "lazy-gene"]
#: A read the verification times in under this many seconds on the full data runs 3 to 5 times a round and the
#: round's value is its median run (`measure.timing.short_runs`): rule 4 judges every workload by itself. 1.5, not 1:
#: on 100k lazy-rows takes 0.6-1.2 s, and at 1 s its slower first runs ran once. In the tunes it cut the per-round
#: noise of a read's ratio to the default by 12-13 % on pbmc3k and 10k, at about 40 % more tune time, and not
#: measurably on 100k, whose noise is mostly between rounds (docs/tune-validation.md): whether it stays on is open.
SHORT_READ_S = 1.5
READERS = ("python", "fused", "zarrs", "read_zarr")


def x_rows(rule: str) -> str:
    """A row rule for the matrices (X, layers, obsm) with obs/var columns left to anndata's auto sharding:
    the same rule on the columns cuts them into thousands of small chunks, and read_lazy(...).obs was 3.7x
    slower for it on 100k (0.675 s against 0.180 s, Fused, rows-1024x16, 5 interleaved rounds), and write,
    read and lazy-rows were no faster for it (slower in that run: 6.8 s against 4.9, 3.6 against 2.7)."""
    return f"sparse:{rule}+dense:{rule}+columns:auto"


#: The default search space (crossed with the allowed pipelines): 3 codecs x 5 shardings.
DEFAULT_SPACE: dict[str, tuple[str, ...]] = {
    "store": ("local",),
    "loop": ("asyncio",),
    "codec": ("zstd-0", "blosc-lz4-bitshuffle", "blosc-zstd-bitshuffle"),  # zstd-3 writes zstd-0's bytes
    "sharding": ("auto", *map(x_rows, ("rows-256x16", "rows-1024x16", "rows-4096x16", "rows-1024x64"))),
    "consolidated": ("on",),
}
#: Codecs per array role (harness.runtime.codecs): zstd keeps log-normalised values small, Blosc zstd with a
#: byte shuffle wins on integer indices and counts. The first suits X log-normalised with counts in a layer,
#: the second a matrix of raw counts.
PER_ROLE_CODECS = (
    "data:zstd-1+layers.data:blosc-zstd-shuffle-1+index:blosc-zstd-shuffle-1",
    "data:blosc-zstd-shuffle-1+index:blosc-zstd-shuffle-1",
)
#: Deeper axes `--deep` puts in place of the default ones (invalid combinations, e.g. a zarrs knob with Fused,
#: are dropped with their reason): codecs per array role and zstd level 1, chunks and shards by bytes (more
#: shards keep both cores busy), the minimal index dtype, sparse filters and zarrs' chunk-versus-codec knob.
DEEP_AXES: dict[str, tuple[str, ...]] = {
    "codec": ("zstd-0", "zstd-1", "blosc-zstd-bitshuffle", *PER_ROLE_CODECS),
    "sharding": ("auto", x_rows("rows-1024x16"), "bytes-4m-64m", "bytes-1m-16m"),
    "indices": ("default", "minimal"),
    "filters": ("none", "delta"),
    "knobs": ("default", "zarrs-chunk-min=1"),
}

#: The remote search space: the levers that matter when each request costs a round trip (measured:
#: concurrency, caching and layout), on the store and client the user has. Crossed with the pipelines.
#: zarr's concurrency bounds requests within one array read; dask's workers bound how many read_lazy
#: chunk tasks (each a chain of requests) run at once: 2 by default here (one per core).
#: Layouts (per-role sharding): anndata's auto; 1,024-row inner chunks; 256-row inner chunks (fewer bytes
#: per random row, same shard size); 1,024-row chunks with one-dimensional arrays (obs/var columns,
#: categorical codes) unsharded, one object each. A rows-RxK sparse rule keeps indptr in one chunk.
REMOTE_LAYOUTS = ("auto", "rows-1024x16", "rows-256x64", "sparse:rows-1024x16+dense:rows-1024x16+columns:none")
REMOTE_SPACE: dict[str, tuple[str, ...]] = {
    "loop": ("asyncio",),
    "codec": ("zstd-0",),
    "sharding": REMOTE_LAYOUTS,
    "consolidated": ("on",),
    "concurrency": ("10", "64"),
    "cache": ("none", "memory-512mb"),
    "knobs": ("default", "dask-workers=32"),
}
#: The layouts a training loader's stream depends on: rows per inner chunk from 64 to 1,024 (a run of
#: --run-rows rows then touches few chunks), shards from 64k to 1k chunks, Blosc with byte shuffle (annbatch's
#: codec, level 3) or zstd, and the minimal index dtype (fewer bytes to read).
STREAM_SPACE: dict[str, tuple[str, ...]] = {
    "store": ("local",),
    "loop": ("asyncio",),
    "codec": ("zstd-0", "blosc-lz4-shuffle-3", "blosc-zstd-shuffle-1"),
    "sharding": ("auto", "rows-64x1024", "rows-256x256", "rows-1024x64"),
    "consolidated": ("on",),
    "indices": ("default", "minimal"),
}
STREAM_VERIFY_WORKLOADS = ["write", "read", "stream-blocks", "stream-blocks-sync", "stream-annbatch"]

#: What a remote verification measures: the reads a remote user does (writes over HTTP are not possible).
REMOTE_VERIFY_WORKLOADS = ["read", "lazy-open", "lazy-rows", "lazy-random", "stream-async"]


def remote_space(store: str) -> dict[str, tuple[str, ...]]:
    """REMOTE_SPACE on the user's store, with the client options that apply to its client library."""
    clients = tuple(str(c) for c in Client if Store.parse(store) in c.stores)
    return {"store": (str(store),), **REMOTE_SPACE, "client": clients}


#: A space small enough to measure fully, for --validate-search.
VALIDATION_SPACE: dict[str, tuple[str, ...]] = {
    "store": ("local",),
    "loop": ("asyncio",),
    "codec": ("zstd-0", "zstd-3", "blosc-lz4-bitshuffle"),
    "sharding": ("auto", x_rows("rows-256x16"), x_rows("rows-4096x16")),
    "consolidated": ("on",),
}


def parse_budget(text: str) -> float:
    """'90s', '10m', '1.5h' or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise HarnessError(f"cannot read budget {text!r}; use e.g. 90s, 10m or 1h")
    return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]


def check_objective(objective: str) -> dict[str, float]:
    if objective not in OBJECTIVES:
        raise HarnessError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[objective]


def round_scores(rows: Mapping[str, Mapping[str, Any]], objective: str) -> list[float] | None:
    """The objective of one point in each round (lower is better): the weighted geometric mean of that
    round's seconds over the objective's workloads (their values line up by round), or the store's bytes;
    None when a workload did not measure."""
    weights = check_objective(objective)
    if not weights:
        write = rows.get("write", {})
        ok = write.get("status") == "ok" and write.get("bytes")
        return [float(write["bytes"])] * max(1, len(write.get("values") or [])) if ok else None
    series = []
    for workload in weights:
        row = rows.get(workload, {})
        values = row.get("values") or [] if row.get("status") == "ok" else []
        if not values or min(values) <= 0:
            return None
        series.append(values)
    count = min(len(v) for v in series)
    total = sum(weights.values())
    return [math.exp(sum(w * math.log(v[i]) for w, v in zip(weights.values(), series)) / total) for i in range(count)]


def score(rows: Mapping[str, Mapping[str, Any]], objective: str) -> float | None:
    """Objective value of one point: the median over rounds of `round_scores` (lower is better)."""
    values = round_scores(rows, objective)
    return median(values) if values else None


@dataclass(frozen=True)
class Constraints:
    """What a recommendation must satisfy. Size is part of every objective: by default the store may not
    be larger than anndata-default's on the full data (`max_size_ratio` 1.0). Nor may any verified
    workload, inside the objective or not, be more than `max_slowdown` x slower than anndata-default's
    with significance (math.inf: any slowdown is allowed when the objective gains)."""

    readable_by: tuple[str, ...] = ("python",)
    max_size_ratio: float = 1.0
    max_slowdown: float = 1.1
    pipelines: tuple[str, ...] = ("python", "fused", "zarrs")

    def __post_init__(self) -> None:
        for reader in self.readable_by:
            if reader not in READERS:
                raise HarnessError(
                    f"unknown reader {reader!r} for --require-readable-by; valid: {', '.join(READERS)}, none"
                )
        for pipeline in self.pipelines:
            if pipeline not in set(Pipeline):
                raise HarnessError(f"unknown pipeline {pipeline!r} in --pipelines; valid: {', '.join(Pipeline)}")
        if self.max_size_ratio <= 0:
            raise HarnessError(
                "--max-size-ratio must be positive (e.g. 1.1 = at most 10% larger than anndata's default)"
            )
        if not self.max_slowdown >= 1:
            raise HarnessError(
                "--max-slowdown must be at least 1 (e.g. 1.1 = no workload more than 10% slower than anndata's "
                "default), or none"
            )


def defaults(store: Store, constraints: Constraints) -> list[Point]:
    """anndata's default as users get it, on the store tuned for: a candidate in every rung, never pruned.
    Locally without and with zarrs (when zarrs may be used here); remotely the default remote setup."""
    names = (
        ["anndata-default"] if store.remote or "zarrs" not in constraints.pipelines else list(matrix.ANNDATA_BASELINES)
    )
    points = [matrix.baseline_point(n).with_axes(store=store) for n in names]
    return [p for p in points if not static_status(p)]


def candidates(
    space: Mapping[str, tuple[str, ...]], constraints: Constraints, shapes: Shapes
) -> tuple[list[Point], dict[str, str]]:
    """The defaults, then every runnable candidate of the space that writes a store of its own at the full
    data size (`layout.fingerprint`); for every dropped one the reason."""
    axes = {**space, "pipeline": constraints.pipelines}
    store = Store.parse(space.get("store", ("local",))[0])
    kept = defaults(store, constraints)
    seen = {fingerprint(p, shapes): p for p in kept}
    dropped: dict[str, str] = {}
    for point in matrix.expand(axes, defaults=matrix.DEFAULT_SWEEP):
        if status := static_status(point):
            dropped[point.id] = f"{status[0]}: {status[1]}"
        elif (twin := seen.setdefault(fingerprint(point, shapes), point)) is not point:
            dropped[point.id] = f"duplicate: writes the same store and runs the same way as {twin.id}"
        else:
            kept.append(point)
    if not any(not p.baseline for p in kept):
        raise HarnessError("no candidate can run here: " + "; ".join(sorted(set(dropped.values())))[:300])
    return kept, dropped
