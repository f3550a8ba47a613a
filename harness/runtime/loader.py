"""A training loader's reader: minibatches of CSR rows of X (and the obs columns asked for), read with zarr's
async API under a config's store, cache, pipeline and concurrency, locally or from S3/HTTP.

Shuffling the way training loops need it without random single-row reads (annbatch's design): the rows are
cut into runs of `run_rows` contiguous rows; the runs are shuffled; `preload` runs at a time are fetched
together (each run is two contiguous byte ranges, its values and its column indices, found through indptr,
which is held in memory), their rows shuffled in memory and handed out in batches of `batch_size`. With
`prefetch` the next group is being fetched while the current one is consumed. `shuffle="rows"` reads true
random single rows (runs of one row, a group per batch): the slow baseline; `shuffle="none"` reads in order.
Several processes share an epoch with `part=(index, parts)`: each takes every parts-th run of the same
shuffled order, so together they read every row exactly once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import HarnessError, UnsupportedPoint
from .pipelines import Loop

if TYPE_CHECKING:
    from .config import IOConfig


class Shuffle(StrEnum):
    NONE = "none"
    BLOCKS = "blocks"
    ROWS = "rows"

    @classmethod
    def parse(cls, text: Any) -> Shuffle:
        try:
            return cls(str(text))
        except ValueError:
            raise HarnessError(f"unknown shuffle {text!r}; valid: {', '.join(cls)}") from None


@dataclass(frozen=True)
class Batch:
    rows: Any  # numpy array: the rows of X it holds, in its order
    X: Any  # scipy.sparse.csr_matrix
    obs: Any = None  # pandas.DataFrame of the obs columns asked for, or None


@dataclass(frozen=True)
class LoaderSpec:
    """How a loader reads: annbatch's defaults (runs of 512 rows, 32 runs preloaded) at its benchmark's batch."""

    batch_size: int = 4096
    shuffle: Shuffle = Shuffle.BLOCKS
    run_rows: int = 512
    preload: int = 32
    prefetch: int = 1  # groups fetched ahead of the consumer (0: fetch only when asked)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "shuffle", Shuffle.parse(self.shuffle))
        for name in ("batch_size", "run_rows", "preload"):
            if int(getattr(self, name)) < 1:
                raise HarnessError(f"loader {name} must be at least 1, not {getattr(self, name)!r}")

    def runs(self, n_rows: int, part: tuple[int, int] = (0, 1)) -> list[tuple[int, int]]:
        """The (start, stop) runs this part reads, in reading order."""
        import numpy as np

        size = 1 if self.shuffle is Shuffle.ROWS else self.run_rows
        runs = [(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]
        if self.shuffle is not Shuffle.NONE:
            order = np.random.default_rng(self.seed).permutation(len(runs))
            runs = [runs[i] for i in order]
        index, parts = part
        return runs[index::parts]

    @property
    def sizes(self) -> dict[str, int]:
        """What a measurement is given of the spec: batch, run and preload sizes (the shuffle is the workload's)."""
        return {"batch_size": self.batch_size, "run_rows": self.run_rows, "preload": self.preload}

    @property
    def group_runs(self) -> int:
        return self.batch_size if self.shuffle is Shuffle.ROWS else self.preload


def stream(
    cfg: IOConfig,
    target: Any,
    spec: LoaderSpec = LoaderSpec(),
    *,
    obs: Sequence[str] = (),
    part: tuple[int, int] = (0, 1),
) -> Iterator[Batch]:
    """Minibatches of X's rows (CSR) with the obs columns asked for; see the module's docstring."""
    import numpy as np
    import scipy.sparse as sp

    frames = _obs_columns(cfg, target, obs) if obs else None
    rng = np.random.default_rng(spec.seed + 1 + part[0])
    carry: list[tuple[Any, Any]] = []
    for rows, matrix in _groups(cfg, target, spec, part):
        if spec.shuffle is not Shuffle.NONE:
            order = rng.permutation(len(rows))
            rows, matrix = rows[order], matrix[order]
        carry.append((rows, matrix))
        pending = sum(len(r) for r, _ in carry)
        if pending < spec.batch_size:
            continue
        rows = np.concatenate([r for r, _ in carry])
        matrix = sp.vstack([m for _, m in carry], format="csr") if len(carry) > 1 else carry[0][1]
        whole = len(rows) - len(rows) % spec.batch_size
        for start in range(0, whole, spec.batch_size):
            stop = start + spec.batch_size
            yield Batch(rows[start:stop], matrix[start:stop], None if frames is None else frames.iloc[rows[start:stop]])
        carry = [(rows[whole:], matrix[whole:])] if whole < len(rows) else []
    if carry and (rows := np.concatenate([r for r, _ in carry])).size:
        matrix = sp.vstack([m for _, m in carry], format="csr")
        yield Batch(rows, matrix, None if frames is None else frames.iloc[rows])


def _obs_columns(cfg: IOConfig, target: Any, columns: Sequence[str]) -> Any:
    import anndata as ad

    with cfg.activate():
        frame = ad.io.read_elem(cfg.open_group(target)["obs"])
    if missing := [c for c in columns if c not in frame.columns]:
        raise HarnessError(f"obs has no column {missing[0]!r}; it has {', '.join(map(str, frame.columns))}")
    return frame[list(columns)]


def _groups(cfg: IOConfig, target: Any, spec: LoaderSpec, part: tuple[int, int]) -> Iterator[tuple[Any, Any]]:
    """(rows, CSR of those rows) per group of runs, fetched on a loop of the config's kind in a thread of its
    own, `spec.prefetch` groups ahead."""
    out: queue.Queue = queue.Queue(maxsize=max(1, spec.prefetch))
    done, stop = object(), threading.Event()
    asked = threading.Semaphore(0)

    def produce() -> None:
        try:
            main = _produce(cfg, target, spec, part, out, stop, asked)
            if cfg.loop is Loop.UVLOOP:
                import uvloop

                uvloop.run(main)
            else:
                asyncio.run(main)
            out.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            out.put(exc)

    thread = threading.Thread(target=produce, name="harness-loader", daemon=True)
    thread.start()
    try:
        while True:
            if spec.prefetch == 0:
                asked.release()  # fetch the next group only now
            item = out.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the consumer stopped (or finished): let a producer blocked on a full queue see `stop`
        stop.set()
        asked.release()
        while not out.empty():
            out.get_nowait()


async def _produce(
    cfg: IOConfig,
    target: Any,
    spec: LoaderSpec,
    part: tuple[int, int],
    out: queue.Queue,
    stop: threading.Event,
    asked: threading.Semaphore,
) -> None:
    import numpy as np
    import scipy.sparse as sp
    import zarr.api.asynchronous as za

    with cfg.settings():
        group = await za.open_group(store=cfg.open_store(target, read_only=True), mode="r")
        node = await group.getitem("X")
        if node.attrs.get("encoding-type") != "csr_matrix":
            raise UnsupportedPoint(f"the loader reads rows of a CSR X; X is {node.attrs.get('encoding-type', 'dense')}")
        data, indices, indptr_array = [await node.getitem(k) for k in ("data", "indices", "indptr")]
        indptr = np.asarray(await indptr_array.getitem(slice(None)), dtype=np.int64)
        n_rows, n_vars = (int(s) for s in node.attrs["shape"])
        limit = asyncio.Semaphore(cfg.concurrency)
        loop = asyncio.get_running_loop()

        async def fetch(start: int, stop_row: int) -> tuple[Any, Any]:
            lo, hi = int(indptr[start]), int(indptr[stop_row])
            async with limit:
                return await asyncio.gather(data.getitem(slice(lo, hi)), indices.getitem(slice(lo, hi)))

        runs = spec.runs(n_rows, part)
        for first in range(0, len(runs), spec.group_runs):
            if stop.is_set():
                return
            if spec.prefetch == 0:
                await loop.run_in_executor(None, asked.acquire)
            chunk = runs[first : first + spec.group_runs]
            fetched = await asyncio.gather(*(fetch(a, b) for a, b in chunk))
            rows = np.concatenate([np.arange(a, b) for a, b in chunk])
            lengths = np.concatenate([np.diff(indptr[a : b + 1]) for a, b in chunk])
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            values = np.concatenate([v for v, _ in fetched]) if fetched else np.empty(0)
            columns = np.concatenate([c for _, c in fetched]) if fetched else np.empty(0, dtype=np.int32)
            matrix = sp.csr_matrix((values, columns, offsets), shape=(len(rows), n_vars))
            await loop.run_in_executor(None, out.put, (rows, matrix))  # back-pressure without blocking the loop
