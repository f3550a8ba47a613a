"""A training loader's reader: minibatches of CSR rows of X (and the obs columns asked for), read with zarr's
async API under a config's store, cache, pipeline and concurrency, locally or from S3/HTTP.

Shuffling the way training loops need it without random single-row reads (annbatch's design): the rows are
cut into runs of `run_rows` contiguous rows; the runs are shuffled; `preload` runs at a time are fetched
together, their rows shuffled in memory and handed out in batches of `batch_size`. With `prefetch` the next
group is being fetched while the current one is consumed.

A group is fetched as two reads, one of `data` and one of `indices`: each run is a contiguous range of
non-zeros (found through indptr, which is held in memory), the runs are sorted and merged where they touch,
and all ranges go to zarr's codec pipeline as one selection that decodes straight into a preallocated
buffer (`_Ranges`). The pipeline then schedules every chunk of the group at once, under the config's
concurrency, and nothing is concatenated afterwards; each batch is one row gather of the group's CSR.

`shuffle="rows"` reads true random single rows (runs of one row, a group per batch): the slow baseline;
`shuffle="none"` reads in order.
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

    def batch(rows: Any, matrix: Any) -> Batch:
        return Batch(rows, matrix, None if frames is None else frames.iloc[rows])

    carry: tuple[Any, Any] | None = None  # rows left over from the last group, fewer than a batch
    for rows, matrix in _groups(cfg, target, spec, part):
        order = rng.permutation(len(rows)) if spec.shuffle is not Shuffle.NONE else np.arange(len(rows))
        first = 0
        if carry is not None:  # top the left-over rows up to a batch from this group
            first = min(len(rows), spec.batch_size - len(carry[0]))
            take = order[:first]
            carry = (np.concatenate([carry[0], rows[take]]), sp.vstack([carry[1], matrix[take]], format="csr"))
            if len(carry[0]) < spec.batch_size:
                continue
            yield batch(*carry)
            carry = None
        whole = first + (len(rows) - first) // spec.batch_size * spec.batch_size
        for start in range(first, whole, spec.batch_size):
            take = order[start : start + spec.batch_size]
            yield batch(rows[take], matrix[take])
        if whole < len(rows):
            carry = (rows[order[whole:]], matrix[order[whole:]])
    if carry is not None and len(carry[0]):
        yield batch(*carry)


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
        loop = asyncio.get_running_loop()
        runs = spec.runs(n_rows, part)
        for first in range(0, len(runs), spec.group_runs):
            if stop.is_set():
                return
            if spec.prefetch == 0:
                await loop.run_in_executor(None, asked.acquire)
            spans = _merged(runs[first : first + spec.group_runs])
            rows = np.concatenate([np.arange(a, b) for a, b in spans])
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(indptr[rows + 1] - indptr[rows], out=offsets[1:])
            ranges = [(int(indptr[a]), int(indptr[b])) for a, b in spans]
            values, columns = await asyncio.gather(_read_ranges(data, ranges), _read_ranges(indices, ranges))
            matrix = sp.csr_matrix((values, columns, offsets), shape=(len(rows), n_vars))
            await loop.run_in_executor(None, out.put, (rows, matrix))  # back-pressure without blocking the loop


def _merged(runs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The runs sorted, with runs that touch merged into one: fewer, longer ranges to read."""
    spans: list[tuple[int, int]] = []
    for a, b in sorted(runs):
        if spans and spans[-1][1] == a:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    return spans


class _Ranges:
    """A zarr indexer (zarr.core.indexing.Indexer: shape, drop_axes, chunk projections) over several ranges of
    a 1-D array, laid end to end in the output: one codec-pipeline call for all of them, as annbatch does."""

    drop_axes: tuple[int, ...] = ()

    def __init__(self, array: Any, ranges: Sequence[tuple[int, int]]) -> None:
        from zarr.core.indexing import BasicIndexer

        grid = getattr(array, "_chunk_grid", None) or array.metadata.chunk_grid  # newer zarr | zarr <= 3.1.6
        self.parts = [BasicIndexer((slice(a, b),), shape=array.shape, chunk_grid=grid) for a, b in ranges]
        self.shape = (sum(b - a for a, b in ranges),)

    def __iter__(self) -> Iterator[Any]:
        from zarr.core.indexing import ChunkProjection

        offset = 0
        for part in self.parts:
            for coords, selection, (placed,), complete in part:
                yield ChunkProjection(
                    coords, selection, (slice(offset + placed.start, offset + placed.stop),), complete
                )
            offset += part.shape[0]


async def _read_ranges(array: Any, ranges: Sequence[tuple[int, int]]) -> Any:
    """The values of `ranges` of a 1-D zarr array, end to end, decoded into one new numpy array."""
    import numpy as np
    from zarr.core.buffer import default_buffer_prototype

    indexer = _Ranges(array, ranges)
    out = np.empty(indexer.shape, dtype=array.dtype)
    if out.size:
        prototype = default_buffer_prototype()
        await array._get_selection(indexer, prototype=prototype, out=prototype.nd_buffer(out))
    return out
