"""What a user asks of `harness tune`: dataset, objective, constraints, budget, store and network."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..matrix import Point
from ..measure.cluster import ClusterSpec
from ..measure.network import Network
from ..runtime import Location, Store
from ..runtime.loader import LoaderSpec
from .space import (
    DEFAULT_SPACE,
    REMOTE_VERIFY_WORKLOADS,
    STREAM_VERIFY_WORKLOADS,
    VERIFY_WORKLOADS,
    Constraints,
    defaults,
)

#: --finalists auto: at least this many, and up to this many where the budget leaves room after the search (on
#: small data, where a sample ranks worst and the full data costs least: README, tune)
AUTO_FINALISTS = (4, 8)
#: --deciding-rounds: at most this many rounds of a finalist's undecided workloads after the last round (race)
DECIDING_ROUNDS = 5


@dataclass
class TuneRequest:
    """A tune request, its settings parsed (the CLI builds it)."""

    dataset: str
    objective: str = "balanced"
    constraints: Constraints = field(default_factory=Constraints)
    budget_s: float = 1200.0
    repeats: int = 5
    deciding_rounds: int = DECIDING_ROUNDS
    # how many of the search's best the verification races (finalists.choose; README, tune); None: as many as the
    # budget leaves room for after the search, within AUTO_FINALISTS (`tune.finalist_count`)
    finalists: int | None = None
    out: Path | None = None
    space: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_SPACE))
    timeout: float = 1800.0
    progress: bool = True
    store: Store = Store.LOCAL  # remote ones (s3-*, http-*) run against loopback servers or store_url
    store_url: Location | None = None  # the user's s3:// or https:// location instead of the loopback server
    loader: LoaderSpec = field(default_factory=LoaderSpec)  # --batch, --run-rows, --preload of a stream objective
    verify_networks: tuple[Network, ...] = (Network(),)  # conditions of the verification (remote: none and 20 ms)
    cluster: ClusterSpec | None = None  # rounds sent to a dask.distributed cluster (measure.cluster)

    @property
    def fewest_finalists(self) -> int:
        """--finalists, or under auto its fewest: what the search plans for (`tune.run` then resolves auto)."""
        return self.finalists or AUTO_FINALISTS[0]

    @property
    def remote(self) -> bool:
        return Store.parse(self.store).remote

    @property
    def search_network(self) -> Network:
        """The condition the search runs under: the last verification condition (e.g. 20 ms added) on
        the loopback servers, so levers against round trips (concurrency, cache, dask threads) can win
        the search; none for a user's URL (the real network) and for local stores."""
        return Network() if self.store_url or not self.remote else self.verify_networks[-1]

    def references(self) -> list[Point]:
        """anndata's defaults the finalists are verified beside, anndata-default first (the reference of
        every ratio): locally without and with zarrs, remotely the default remote setup on the user's store
        and client (concurrency 10, no cache, anndata's layout)."""
        return defaults(Store.parse(self.store), self.constraints)

    def verify_workloads(self) -> list[str]:
        if self.objective == "stream":
            return list(STREAM_VERIFY_WORKLOADS)
        return list(REMOTE_VERIFY_WORKLOADS if self.remote else VERIFY_WORKLOADS)
