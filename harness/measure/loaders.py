"""Training-loader workloads: an epoch of minibatches through `IOConfig.stream` (harness.runtime.loader), in
one process or in `procs` processes at once on one store, each its own interpreter, sharing the epoch.

- `stream-blocks`: block-shuffled (runs of R contiguous rows, K runs preloaded and shuffled in memory,
  batches of B), the next group fetched while one is consumed; `stream-blocks-sync` fetches only on demand.
- `stream-random-rows`: true random single rows, batches of B (`-sync` likewise).
- `stream-annbatch`: annbatch's `Loader` with the same R, K and B (several processes through its
  `DistributedSampler`).
Metrics per run: cells/s (all processes together, and per process), time to the first batch (opening the store
included, in both loaders), p50/p90/p99 batch latency (the wait for each later batch), decoded MB read.
`verify` checks that every row arrived exactly once in the epoch and that every batch equals the source's rows.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace
from typing import Any, ClassVar

import numpy as np

from ..errors import VerificationError
from ..matrix import Point
from ..runtime import Pipeline
from ..runtime.loader import LoaderSpec, Shuffle
from .base import Workload
from .streams import batch_checksum


def consume(batches: Any) -> dict[str, Any]:
    """Time an epoch of batches: per-batch waits, first batch, rows and checksums (for `verify`)."""
    t0 = last = time.perf_counter()
    waits, rows, checks, decoded = [], [], [], 0
    for batch in batches:
        now = time.perf_counter()
        waits.append(now - last)
        rows.append(batch.rows.tolist())
        checks.append(batch_checksum(batch.X))
        decoded += batch.X.data.nbytes + batch.X.indices.nbytes
        last = time.perf_counter()
    return {"wall": time.perf_counter() - t0, "waits": waits, "rows": rows, "checks": checks, "decoded": decoded}


class LoaderWorkload(Workload):
    shuffle: ClassVar[Shuffle] = Shuffle.BLOCKS
    prefetch: ClassVar[int] = 1
    loader: ClassVar[str] = "harness"  # which EPOCHS entry reads an epoch (in every loader process)

    @classmethod
    def unsupported_reason(cls, point: Point) -> str | None:
        return "the loader reads a zarr store: h5ad has no async API" if point.api == "h5ad" else None

    def spec(self) -> LoaderSpec:
        return replace(self.ctx.loader, shuffle=self.shuffle, prefetch=self.prefetch, seed=self.ctx.seed)

    def run(self) -> None:
        procs, spec, cfg = self.ctx.procs, self.spec(), self.ctx.point.config
        children = [_start_child(self.loader, cfg, self.ctx.output, spec, (i, procs)) for i in range(1, procs)]
        for child in children:
            _expect(child, "ready")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        t0 = time.perf_counter()
        parts = [EPOCHS[self.loader](cfg, self.ctx.output, spec, (0, procs))]
        parts += [json.loads(_expect(child, "{")) for child in children]
        wall = time.perf_counter() - t0
        n = sum(len(r) for part in parts for r in part["rows"])
        per_proc = [sum(len(r) for r in part["rows"]) / part["wall"] for part in parts if part["wall"]]
        self.metrics.update(
            cells_per_s=n / wall if wall else 0.0,
            **batch_latencies([part["waits"] for part in parts]),
            proc_cells_per_s_min=min(per_proc),
            proc_cells_per_s_median=float(np.median(per_proc)),
            decoded_mb=sum(p["decoded"] for p in parts) / 1e6,
            procs=float(procs),
        )
        self.result = [(rows, check) for part in parts for rows, check in zip(part["rows"], part["checks"])]

    def verify(self) -> None:
        source = self.ctx.source.X
        seen = np.sort(np.concatenate([np.asarray(rows) for rows, _ in self.result]))
        if not np.array_equal(seen, np.arange(source.shape[0])):
            raise VerificationError(
                f"{self.name}: {len(seen)} rows read, {len(np.unique(seen))} distinct, "
                f"{source.shape[0]} expected (rows lost or read twice)"
            )
        for rows, check in self.result:
            check = tuple(check)  # a loader process's checksums come back as JSON lists
            want = batch_checksum(source[np.asarray(rows)])
            if check[:2] != want[:2] or check[3] != want[3] or not np.isclose(check[2], want[2], rtol=1e-9):
                raise VerificationError(f"{self.name}: a batch differs from the source's rows {rows[:3]}...")


def batch_latencies(waits: list[list[float]]) -> dict[str, float]:
    """Time to the first batch (the earliest process's; the store is opened in it) and the p50/p90/p99 of every
    later wait, over all processes. The first wait is left out of the percentiles: an epoch of 100k rows is ~25
    batches of 4,096, so with it p99 would be the opening of the store, not the steady stream."""
    later = np.array([w for part in waits for w in part[1:]] or [w for part in waits for w in part])
    return {
        "first_batch_s": min(part[0] for part in waits if part),
        **{f"p{q}_batch_s": float(np.percentile(later, q)) for q in (50, 90, 99)},
    }


def _kwargs(spec: LoaderSpec) -> dict[str, Any]:
    return {k: v for k, v in asdict(spec).items()}


def harness_epoch(cfg: Any, target: Any, spec: LoaderSpec, part: tuple[int, int]) -> dict[str, Any]:
    """One process's part of an epoch through the harness's loader (`IOConfig.stream`)."""
    return consume(cfg.stream(target, **_kwargs(spec), part=part))


def annbatch_epoch(cfg: Any, target: Any, spec: LoaderSpec, part: tuple[int, int]) -> dict[str, Any]:
    """One process's part of an epoch through annbatch's `Loader` with the same runs, preload and batch, under the
    config's pipeline and store; several processes share the epoch through annbatch's own `DistributedSampler`
    (rank and world size given, as a training script gets them from torch.distributed)."""
    import anndata as ad
    import zarr
    from annbatch import Loader
    from annbatch.samplers import DistributedSampler, RandomSampler

    rank, world = part
    sampler = RandomSampler(spec.run_rows, spec.preload, spec.batch_size, rng=np.random.default_rng(spec.seed))
    if world > 1:
        sampler = DistributedSampler(sampler, dist_info=lambda: (rank, world), enforce_equal_batches=False)

    def batches() -> Any:  # opened inside the first batch's wait, as `IOConfig.stream` opens its store
        with cfg.activate():
            group = zarr.open_group(cfg.open_store(target, read_only=True), mode="r")
            loader = Loader(batch_sampler=sampler, return_index=True, preload_to_gpu=False, to=None)
            loader.add_dataset(ad.io.sparse_dataset(group["X"]))
            yield from (_AnnbatchBatch(out["index"], out["X"]) for out in loader)

    return consume(batches())


EPOCHS = {"harness": harness_epoch, "annbatch": annbatch_epoch}
#: What a loader process imports before it says it is ready: the timed epoch starts warm, as in the measuring
#: worker (annbatch with anndata costs ~1.5 s to import here, zarr with scipy ~0.7 s).
WARM_IMPORTS = {
    "harness": ("zarr.api.asynchronous", "scipy.sparse", "anndata"),
    "annbatch": ("zarr.api.asynchronous", "scipy.sparse", "anndata", "annbatch"),
}


def _start_child(loader: str, cfg: Any, target: Any, spec: LoaderSpec, part: tuple[int, int]) -> subprocess.Popen:
    payload = {"loader": loader, "config": cfg.to_dict(), "target": str(target), "spec": _kwargs(spec), "part": part}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.measure.loaders", json.dumps(payload)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _expect(child: subprocess.Popen, start: str) -> str:
    line = child.stdout.readline()
    if not line.startswith(start):
        child.kill()
        raise RuntimeError(f"a loader process ended without its {'result' if start == '{' else start}: {line[:300]!r}")
    return line


def main(payload: str) -> None:
    """A loader process: open, say ready, read its part of the epoch on `go`, print what it read."""
    from ..runtime import IOConfig

    job = json.loads(payload)
    cfg = IOConfig.from_dict(job["config"])
    for module in (*WARM_IMPORTS[job["loader"]], *(("zarrs",) if cfg.pipeline is Pipeline.ZARRS else ())):
        importlib.import_module(module)
    print("ready", flush=True)
    sys.stdin.readline()
    found = EPOCHS[job["loader"]](cfg, job["target"], LoaderSpec(**job["spec"]), tuple(job["part"]))
    print(json.dumps(found, default=float), flush=True)


class AnnbatchLoader(LoaderWorkload):
    """annbatch's `Loader` (scverse) over the point's store with the same runs, preload and batch: the peer's
    loader side by side, on the same machine and data, in as many processes as ours."""

    name = "stream-annbatch"
    loader = "annbatch"

    @classmethod
    def unsupported_reason(cls, point: Point) -> str | None:
        import importlib.util

        if importlib.util.find_spec("annbatch") is None:
            return "annbatch is not installed (pip install 'harness[annbatch]')"
        return super().unsupported_reason(point)


class _AnnbatchBatch:
    def __init__(self, rows: Any, matrix: Any) -> None:
        self.rows, self.X = np.asarray(rows), matrix


def _loader_class(shuffle: Shuffle, prefetch: int) -> type[LoaderWorkload]:
    base = "stream-random-rows" if shuffle is Shuffle.ROWS else "stream-blocks"
    name = base + ("" if prefetch else "-sync")
    title = "".join(part.title() for part in name.split("-"))
    return type(title, (LoaderWorkload,), {"name": name, "shuffle": shuffle, "prefetch": prefetch})


LOADERS = [*(_loader_class(s, p) for s in (Shuffle.BLOCKS, Shuffle.ROWS) for p in (1, 0)), AnnbatchLoader]

if __name__ == "__main__":
    main(sys.argv[1])
