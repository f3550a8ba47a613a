"""harness tune: find the best storage configuration for a dataset and an objective, verify it beside
anndata's defaults on the full data, and emit it as `recommended_config()`."""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..measure import cluster, datasets
from . import emit, finalists, race, search
from .estimate import VerifyPlan, verification_estimate
from .request import AUTO_FINALISTS, TuneRequest
from .search import Rung, SearchResult
from .space import check_objective

__all__ = ["TuneRequest", "run"]


def race_cost(request: TuneRequest, point_round_s: float, finalists: int) -> float:
    """Seconds the verification takes at most with `finalists` finalists, from the search's seconds for one (point,
    round) on the full data (`estimate.point_round_seconds`)."""
    rounds = race.point_rounds(request, finalists)
    return verification_estimate(point_round_s, rounds, request.repeats, len(request.verify_networks))


def finalist_count(request: TuneRequest, found: SearchResult, left_s: float) -> tuple[int, float]:
    """--finalists auto: the most finalists, within AUTO_FINALISTS, whose verification the `left_s` seconds of the
    budget cover, estimated from the search's samples (`estimate.point_round_seconds`); the fewest when none fits.
    When the search stopped to race every survivor (`estimate.race_them_all`), up to all of them. With the
    estimate."""
    low, high = AUTO_FINALISTS
    if found.race_all:
        high = max(high, sum(1 for p in found.ranked if not p.baseline))

    fits = (n for n in range(low, high + 1) if race_cost(request, found.point_round_s, n) <= left_s)
    count = max(fits, default=low)
    return count, race_cost(request, found.point_round_s, count)


def run(request: TuneRequest, log=print) -> Path:
    """Search, verify, emit; returns the output directory."""
    started = time.perf_counter()
    check_objective(request.objective)
    dataset_path = datasets.resolve(request.dataset)
    name = Path(request.dataset).stem if Path(request.dataset).exists() else request.dataset
    out = Path(request.out or Path("results") / "tune" / name)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-tune-") as tmp:
        workdir = Path(tmp)

        def on_rung(rung: Rung) -> None:
            best = min((v for v in rung.scores.values() if v is not None), default=None)
            log(
                f"rung on {rung.rows} rows: {len(rung.candidates)} candidates with the defaults, {len(rung.rejected)} "
                f"rejected, {len(rung.pruned)} pruned, {len(rung.kept)} kept (not significantly slower than the best "
                f"of their layout), best score {best:.4g} "
                f"({rung.seconds:.0f}s)"
                + "".join(f"\n  {pid}: slower on this sample: {why}" for pid, why in rung.slowdowns.items())
                if best is not None
                else f"rung on {rung.rows} rows: nothing measurable"
            )

        with contextlib.ExitStack() as servers_running:  # remote: servers (or the user's URL) for the search
            # one cluster for the whole tune: the search's rounds and the verification's sweeps
            client = servers_running.enter_context(cluster.connect(request.cluster)) if request.cluster else None
            env: dict[str, str] = {}
            if request.remote:
                from ..matrix import Point
                from ..measure.runner import start_servers

                network = request.search_network
                if network.label != "none":
                    log(f"search under the network condition {network.label} (the last --verify-network)")
                env, _ = start_servers(
                    [Point.of(store=request.store)], workdir, servers_running, network, request.store_url
                )
            found = search.search(
                dataset_path,
                request.objective,
                request.space,
                request.constraints,
                workdir=workdir,
                budget_s=request.budget_s,
                timeout=request.timeout,
                verify_rounds=request.repeats,
                on_rung=on_rung,
                env=env,
                client=client,
                loader=request.loader.sizes,
                verify_plan=VerifyPlan(
                    tuple(request.verify_workloads()),
                    # the race's (point, round) measurements, as points measured in every round
                    math.ceil(race.point_rounds(request, request.fewest_finalists) / request.repeats),
                    len(request.verify_networks),
                ),
                enough=request.fewest_finalists,
                # --finalists auto: the race may take every survivor when that costs less than another rung
                race_cost=(lambda seconds, n: race_cost(request, seconds, n)) if request.finalists is None else None,
            )
            if found.note:
                log(found.note)
            log(f"search: {len(found.rungs)} rungs in {found.seconds:.0f}s; {len(found.ranked)} survivors")
            if request.finalists is None:
                left = request.budget_s - (time.perf_counter() - started)
                count, estimate = finalist_count(request, found, left)
                log(
                    f"up to {count} finalists (--finalists auto, {AUTO_FINALISTS[0]} to "
                    f"{'every survivor' if found.race_all else AUTO_FINALISTS[1]}): their "
                    f"verification is estimated at up to {estimate:.0f}s, the budget has {left:.0f}s left"
                )
                request = replace(request, finalists=count)
            checked = finalists.verify(request, found, dataset_path, workdir, out, log)
    if checked.keep_default:
        log("nothing beat anndata's default on the full data: the recommendation is to keep it")
    emit.emit(out, request, found, checked, dataset_path, time.perf_counter() - started)
    return out
