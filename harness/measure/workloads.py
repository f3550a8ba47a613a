"""Workloads: real anndata calls on a real store, each verifying what it read against the source.

A workload is constructed once per point with its `Context`, then `run` is timed, `reset` runs untimed
before every repeat (fresh output path for writes, evicted page cache for cold reads) and `verify` runs
untimed after the last repeat (`settle` instead when an earlier round checked an identical store). asv suites,
pytest-benchmark and the runner all use these classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..matrix import WORKLOADS
from . import storefiles, verify
from .base import Workload
from .context import open_lazy, read_store, write_input, write_store, zarr_config
from .loaders import LOADERS
from .streams import STREAMS


class Write(Workload):
    name = "write"
    writes = True
    checked_once = True
    opens_group = False  # creates it (HTTP points write to the served directory)

    def reset(self) -> None:
        storefiles.remove(self.ctx.measured_at)
        self.input = write_input(self.ctx)

    def run(self) -> None:
        write_store(self.ctx, self.input)

    def verify(self) -> None:
        verify.assert_anndata_equal(self.settle(), self.ctx.source, "written store")

    def settle(self) -> Any:
        # Not a duplicate of Read.verify: the read back also warms the process for the timed read (the first full
        # read in a process was ~1.7x slower than the next on 100k, README "cold"), as earlier points did for later
        # ones. Unchecked, it still reads, so the timed read is measured the same way in every round.
        with zarr_config(self.ctx.point, "read"):
            return read_store(self.ctx)


class Read(Workload):
    name = "read"
    checked_once = True

    def run(self) -> None:
        self.result = read_store(self.ctx)

    def verify(self) -> None:
        verify.assert_anndata_equal(self.result, self.ctx.source, "read")


class LazyOpen(Workload):
    name = "lazy-open"

    def run(self) -> None:
        self.result = open_lazy(self.ctx)

    def verify(self) -> None:
        if self.result.shape != self.ctx.source.shape:
            raise verify.VerificationError(f"read_lazy shape {self.result.shape} != {self.ctx.source.shape}")
        if list(self.result.obs_names) != list(self.ctx.source.obs_names):
            raise verify.VerificationError("read_lazy obs_names differ from the source")


class LazySubset(Workload):
    """Open lazily, select rows, materialise the subset (X, layers, obsm, obs) with `to_memory()`."""

    def rows(self) -> Any:
        raise NotImplementedError

    def run(self) -> None:
        self.result = open_lazy(self.ctx)[self.rows()].to_memory()

    def verify(self) -> None:
        verify.assert_anndata_equal(self.result, self.ctx.source[self.rows()], self.name)


#: Lazy subsets are a fraction of the rows, so a row sample measures what the full data will do (5,000 contiguous
#: and 500 random rows of 100k cells; a fixed count would be 13% of a 3.7k-row sample and 0.5% of the full data).
LAZY_ROWS_FRACTION = 0.05
LAZY_RANDOM_FRACTION = 0.005


class LazyRows(LazySubset):
    name = "lazy-rows"

    def rows(self) -> slice:
        n = self.ctx.source.n_obs
        count = max(1, round(n * LAZY_ROWS_FRACTION))
        start = n // 3
        return slice(start, min(n, start + count))


class LazyRandom(LazySubset):
    name = "lazy-random"

    def rows(self) -> np.ndarray:
        n = self.ctx.source.n_obs
        rng = np.random.default_rng(self.ctx.seed)
        return np.sort(rng.choice(n, size=max(1, round(n * LAZY_RANDOM_FRACTION)), replace=False))


class LazyObs(Workload):
    name = "lazy-obs"

    def run(self) -> None:
        self.result = open_lazy(self.ctx).obs.to_memory()

    def verify(self) -> None:
        verify.assert_frame_equal(self.result, self.ctx.source.obs, "lazy obs")


class LazyGene(Workload):
    name = "lazy-gene"

    def gene(self) -> str:
        return str(self.ctx.source.var_names[self.ctx.source.n_vars // 2])

    def run(self) -> None:
        self.result = verify.to_numpy(open_lazy(self.ctx)[:, self.gene()].X)

    def verify(self) -> None:
        verify.assert_matrix_equal(self.result, self.ctx.source[:, self.gene()].X, "one gene")


REGISTRY: dict[str, type[Workload]] = {
    cls.name: cls for cls in (Write, Read, LazyOpen, LazyRows, LazyRandom, LazyObs, LazyGene, *STREAMS, *LOADERS)
}
assert tuple(REGISTRY) == WORKLOADS
