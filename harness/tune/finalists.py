"""The verification: the search's finalists beside anndata's defaults on the full dataset, in interleaved
rounds (each round a new random order), raced, then the decision.

Finalists (--finalists, auto: 4 to 8): the best survivor within --max-size-ratio, the best overall, then, best first,
the survivors within the size limit that bring a pipeline and a layout not yet among the finalists, then those that
bring either (`covering`: a sample mis-ranks close layouts, the search's docstring, and pipelines too, whose
parallelism gains with the data: on 100k a 3,703-row sample put Python first in three layouts, and the grid's best
two, zarrs and Fused `rows-256x16`, were left out. Replayed over the 21 stored 10k and 100k tunes against four grids,
42 pairs: a point within 5 % of the grid's best among the first four finalists in 25, against 23 for the best of every
layout, mean distance 5.5 % against 6.7 %; on the complete 100k grid 5 of 7 against 3: docs/tune-validation.md),
leaving out what is slower than anndata-default on the last sample's median (a gap a sample gets right: on 10k Python
`rows-4096x16`, significantly slower there, took the fourth slot and pushed the grid's best out, and on the full data
it was 0.85-0.94x the default, its lazy-gene about 0.5x; and the default is zarr's Python pipeline, so a Python point's
gap to it does not shrink with the data: on a later 100k sample Python `rows-256x16`, 1.06x the default's median, took
a covering slot ahead of Fused and zarrs `rows-256x16`, the grid's best two) or slower than it on a workload by more
than --max-slowdown (`search.slowed`: such points go after all the others), then the best within 1.0x, 1.25x, 1.5x and
2x of anndata-default's bytes on the last sample, so the summary can show what each extra byte buys, then the next best
survivors within the size limit, then the survivors over it on the sample (the search keeps them by its slack: the
full-data store decides, and one over the limit there stops after round 1: without them pbmc68k raced three of eight
slots), then the best of what the search pruned (a sample mis-ranks even within a layout: measured on 100k).

The verification (`verify`): the finalists beside the defaults on the full data, raced round by round and ended early
when the answer is settled (`race`), then judged by the rule (`rule`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..analysis import results
from ..analysis.results import Row
from ..matrix import Point
from ..measure.network import Network
from ..measure.rounds import merge
from ..measure.runner import Sweep, run_sweep
from .race import RACE_ROUNDS, race, racing, reading_round, settled, undecided
from .request import TuneRequest
from .rule import Verdict, judge
from .search import SearchResult, layout_of
from .space import READERS, SHORT_READ_S

SIZE_BUDGETS = (1.0, 1.25, 1.5, 2.0)


def choose(found: SearchResult, max_size_ratio: float, count: int) -> list[Point]:
    """At most `count` finalists from the last rung's survivors (see the module's docstring), best first."""
    last = found.rungs[-1]
    # what the last sample shows slower than --max-slowdown allows goes last (`search.slowed`), best first
    contenders = sorted((p for p in found.ranked if not p.baseline), key=lambda p: p.id in last.slowdowns)
    reference = next((p.id for p in found.ranked if p.baseline == "anndata-default"), None)
    ref_bytes = last.bytes.get(reference) if reference else None

    def within(ratio: float) -> list[Point]:
        return [p for p in contenders if ref_bytes and last.bytes.get(p.id, math.inf) <= ratio * ref_bytes]

    def holds(point: Point) -> bool:  # on the last sample: no slowdown, a median objective no worse than the default's
        if point.id in last.slowdowns:
            return False
        default_score = last.scores.get(reference) if reference else None
        return default_score is None or (last.scores.get(point.id) or math.inf) <= default_score

    allowed = within(max_size_ratio)
    picks = [*allowed[:1], *contenders[:1]]
    picks += covering(list(filter(holds, allowed)), picks)
    for ratio in SIZE_BUDGETS:
        picks += within(ratio)[:1]
    picks += allowed  # free slots: the next best that may be recommended (a sample's ranking is not the last word)
    picks += contenders  # then the survivors over the size limit on the sample: the full-data store decides
    picks += found.pruned  # then what the sample pruned, best first: the race on the full data has the last word
    return list(dict.fromkeys(picks))[:count]


def covering(points: list[Point], picks: list[Point]) -> list[Point]:
    """From `points` (best first), the best that brings both a pipeline and a layout not among `picks` and those
    taken so far, again and again, then the best that brings either, until every pipeline and layout is in."""
    chosen: list[Point] = []
    while True:
        taken = [*picks, *chosen]
        pipelines, layouts = {p.axis("pipeline") for p in taken}, {layout_of(p) for p in taken}
        new = [p for p in points if p not in taken]
        both = [p for p in new if p.axis("pipeline") not in pipelines and layout_of(p) not in layouts]
        either = [p for p in new if p.axis("pipeline") not in pipelines or layout_of(p) not in layouts]
        if not either:  # `both` is part of `either`
            return chosen
        chosen.append((both or either)[0])


@dataclass
class Verification:
    pick: Point  # the recommendation: a finalist, or anndata-default (keep the default)
    verdicts: list[Verdict]
    rows: list[dict[str, Any]]
    readers: dict[str, dict[str, str]]  # cross-pipeline reads per finalist
    results_dir: Path
    rounds: int | None = None  # the rounds run: fewer than --repeats when the verification ended early
    ended: str = ""  # why it ended before --repeats rounds: no finalist left, or the answer settled
    # the deciding rounds after the last (race.undecided), in order: {"points": [ids], "workloads": [names]}
    deciding: list[dict[str, list[str]]] = field(default_factory=list)
    decided: str = ""  # how the deciding rounds ended, when there were any

    @property
    def keep_default(self) -> bool:
        return self.pick.baseline == "anndata-default"


def merged(rows: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of the rounds so far and of more rounds as one row per (point, workload, network): the rounds
    appended (`measure.rounds.merge`), so per-round values still line up between points measured in both."""
    key = lambda r: (r["point_id"], r["workload"], results.network_of(r))  # noqa: E731
    out = {key(r): Row.from_json(r) for r in rows}
    for r in more:
        out[key(r)] = merge(out.get(key(r)), Row.from_json(r))
    return [row.to_json() for row in out.values()]


def verify(
    request: TuneRequest, found: SearchResult, dataset_path: Path, workdir: Path, out: Path, log=print
) -> Verification:
    """Race the finalists beside the defaults on the full data round by round (every network), then judge them."""
    finalists = choose(found, request.constraints.max_size_ratio, request.fewest_finalists)
    references = request.references()
    res_dir = out / "verification" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    alive, rows, raced_out, number, ended = list(finalists), [], {}, 0, ""
    for number in range(1, request.repeats + 1):
        reading = number == reading_round(request)
        round_dir = res_dir / f"round-{number}"
        _measure(
            request, dataset_path, [*alive, *references], number, round_dir, workdir, READERS if reading else (), log
        )
        rows = merged(rows, list(results.iter_rows(round_dir)))
        if racing(request) and number <= RACE_ROUNDS:
            before = alive
            alive, out_now, stopped = race(request, alive, rows, number)
            raced_out.update(out_now)
            if len(alive) < len(before):
                log(
                    f"race after round {number}: {len(alive)} of {len(before)} finalists go on"
                    + "".join(f"\n  {pid}: stopped: {why}" for pid, why in stopped.items())
                    + "".join(f"\n  {pid}: {why}" for pid, why in out_now.items())
                )
        if not alive:  # more rounds of the defaults alone cannot change the answer
            ended = f"no finalist was left after round {number}"
        elif reading and number < request.repeats and (why := settled(request, alive, rows)):
            ended = f"the answer was settled after round {number}: {why}"
        if ended:
            log(f"{ended}: no more rounds")
            break
    rows, deciding, decided = _decide(
        request, dataset_path, [*alive, *references[1:]], rows, number, res_dir, workdir, log
    )
    verdicts = judge(request, [*finalists, *references], rows)
    for verdict in verdicts:
        if verdict.point.id in raced_out:
            verdict.problems.append(raced_out[verdict.point.id])
    qualified = sorted((v for v in verdicts if v.qualifies), key=lambda v: v.objective)
    pick = qualified[0].point if qualified else references[0]
    readers = {r["point_id"]: r.get("readers", {}) for r in rows if r["workload"] == "interop"}
    return Verification(pick, verdicts, rows, readers, res_dir, number, ended, deciding, decided)


def _decide(
    request: TuneRequest,
    dataset_path: Path,
    candidates: list[Point],
    rows: list[dict[str, Any]],
    number: int,
    res_dir: Path,
    workdir: Path,
    log=print,
) -> tuple[list[dict[str, Any]], list[dict[str, list[str]]], str]:
    """The deciding rounds after round `number` (`race.undecided`) among `candidates` (the finalists still racing
    and the defaults but anndata-default): the rows with theirs appended, what each measured, and how they ended."""
    reference = request.references()[0]
    deciding: list[dict[str, list[str]]] = []
    while True:
        need, workloads = undecided(request, candidates, rows)
        if not need or len(deciding) >= request.deciding_rounds:
            if not deciding:
                return rows, deciding, ""
            why = (
                f"after {len(deciding)}, the limit (--deciding-rounds), {', '.join(p.id for p in need)} still "
                f"beyond --max-slowdown round by round on {', '.join(workloads)}, so ruled out"
                if need
                else "no finalist that meets the rule is undecided any more"
            )
            log(f"deciding rounds: {why}")
            return rows, deciding, why
        deciding.append({"points": [p.id for p in need], "workloads": workloads})
        log(
            f"deciding round {len(deciding)} of at most {request.deciding_rounds}: {', '.join(workloads)} of "
            f"{', '.join(p.id for p in need)} beside {reference.id} (slower round by round by more than "
            f"--max-slowdown {request.constraints.max_slowdown:g}, not significantly beyond it)"
        )
        round_dir = res_dir / f"deciding-{len(deciding)}"
        network = request.verify_networks[-1]  # the condition the rule judges
        points = [*need, reference]
        _measure(request, dataset_path, points, number + len(deciding), round_dir, workdir, (), log, workloads, network)
        rows = merged(rows, list(results.iter_rows(round_dir)))


def _measure(
    request: TuneRequest,
    dataset_path: Path,
    points: list[Point],
    number: int,
    res_dir: Path,
    workdir: Path,
    readers: Iterable[str],
    log=print,
    workloads: list[str] | None = None,
    only: Network | None = None,
) -> None:
    """Round `number` of the points on the full data, under every network condition asked for (or `only`), of
    every verified workload (or `workloads`: a deciding round, logged by the caller)."""
    finalists = [p for p in points if not p.baseline]
    for network in [only] if only else request.verify_networks:
        where = "" if network.label == "none" else f", network {network.label}"
        if workloads is None:
            log(
                f"verifying {len(finalists)} finalists beside {', '.join(r.id for r in request.references())} on "
                f"the full dataset (round {number} of {request.repeats}{where})"
            )
        run_sweep(
            Sweep(
                dataset=str(dataset_path),
                points=points,
                workloads=workloads or request.verify_workloads(),
                rounds=1,
                seed=number - 1,  # a new order of the points, and new random rows, every round
                timeout=request.timeout,
                results_dir=res_dir,
                workdir=workdir / "verify",
                progress=request.progress,
                network=network,
                store_url=request.store_url,
                readers=[] if request.remote else list(readers),
                loader=request.loader,
                cluster=request.cluster,
                check=number == 1,  # every finalist and default runs round 1: the later rounds' stores are the same
                least=SHORT_READ_S,
            )
        )
