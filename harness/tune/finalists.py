"""The verification: the search's finalists beside anndata's defaults on the full dataset, in interleaved
rounds (each round a new random order), raced, then the decision.

Finalists (--finalists, auto: 4 to 8): the best survivor within --max-size-ratio, the best overall, the best
within the size limit of every other layout (layouts close on the full data are mis-ranked by a sample: the search's
docstring) unless that best is significantly slower than anndata-default on the last sample (a wide gap, which a
sample gets right: on 10k Python `rows-4096x16` took the fourth slot and pushed the grid's best out; on the full
data it was 0.85-0.94x the default, its lazy-gene about 0.5x) or slower than it on a workload by more than
--max-slowdown (`search.slowed`: such points go after all the others), then the best within 1.0x, 1.25x, 1.5x and 2x
of anndata-default's bytes on the last sample, so the summary can show what each extra byte buys, then the next best
survivors and the best of what the search pruned (a sample mis-ranks even within a layout: measured on 100k).

The race: the finalists and the defaults are measured round by round on the full data, every round in a new random
order, until no finalist is left or all --repeats rounds are in. After each of the first RACE_ROUNDS rounds a
finalist stops when it has a problem of its own (a workload failed, or its store is too large: known after its first
write) or, from the second round on, when its per-round objective is significantly slower than anndata-default's
(p < 0.05) or than the best finalist's (p < 0.05 / the other finalists: the best is the luckiest of them; without the
correction the race stopped the 10k grid's best at p = 0.035 among eight and kept the default), or one of its
verified workloads is significantly slower than anndata-default's by more than --max-slowdown (`_slowed`: an early
look needs stronger evidence than rule 4; with rule 4 itself, a paired test with one degree of freedom after two
rounds, the race stopped all four 100k finalists, Fused `rows-256x16` on a 0.90x). The rounds are blocks: a round's
drift is shared by every point in it, so the test compares mean log objectives against the noise left once the
rounds' and the points' effects are taken out, pooled over all the points in those rounds (`stats.block_slower_p`):
with eight points two rounds show a clear loss, and ties stay. Nothing stops on one round's difference: there is
no noise to judge it by. After round RACE_ROUNDS at most MAX_SURVIVORS, the best on the median, go on with the
defaults to the last round, in which their stores are also read back under every reader. All rounds are judged
together.

The rule, stated once here and in the README: a change is recommended only when, on the full data, (1) every
workload read back equal, (2) its store reads back under every required reader, (3) its store is at most
--max-size-ratio x anndata-default's, (4) no verified workload, in the objective or outside it (lazy-obs, lazy-gene,
...), is slower than anndata-default's by more than --max-slowdown (default 1.1x) with significance
(`stats.paired_slowdown`: the ratio of medians beyond that factor and a one-sided p < 0.05 that it is slower, on
its rounds paired with the default's), and (5) it beats anndata-default on the objective: two-sided Mann-Whitney
p < 0.05 on the per-round objective values and the 95% bootstrap interval of the objective ratio (default /
candidate) entirely above 1. Of those, the best objective wins; when none qualifies the answer is "keep anndata's
default".
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
from ..analysis.stats import (
    ALPHA,
    block_noise,
    block_slower_p,
    mann_whitney,
    median,
    paired_slowdown,
    ratio_interval,
    slower_p,
)
from ..matrix import Point
from ..measure.rounds import merge
from ..measure.runner import Sweep, run_sweep
from .request import TuneRequest
from .search import SearchResult, layout_of
from .space import OBJECTIVES, READERS, round_scores

RACE_ROUNDS = 3  # the race looks after each of these rounds; after the last of them at most MAX_SURVIVORS go on
MAX_SURVIVORS = 3
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

    def holds(point: Point) -> bool:  # on the last sample: no slowdown, the objective not slower than the default
        if point.id in last.slowdowns:
            return False
        return reference not in last.rounds or slower_p(last.rounds[point.id], last.rounds[reference]) >= ALPHA

    allowed = within(max_size_ratio)
    picks = [*allowed[:1], *contenders[:1]]
    per_layout: dict[str, Point] = {}
    for point in filter(holds, allowed):  # best first: the best allowed of every layout
        per_layout.setdefault(layout_of(point), point)
    picks += per_layout.values()
    for ratio in SIZE_BUDGETS:
        picks += within(ratio)[:1]
    picks += allowed  # free slots: the next best that may be recommended (a sample's ranking is not the last word)
    picks += found.pruned  # then what the sample pruned, best first: the race on the full data has the last word
    return list(dict.fromkeys(picks))[:count]


@dataclass
class Verdict:
    """One verified point against anndata-default on the full data."""

    point: Point
    objective: float | None = None  # median per-round objective (lower is better)
    ratio: float | None = None  # anndata-default's objective / this one's (> 1: better)
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    bytes: int | None = None
    bytes_ratio: float | None = None
    problems: list[str] = field(default_factory=list)  # why it cannot be recommended (correctness, size, slowdown)

    @property
    def correct(self) -> bool:
        return not any(p.startswith(("workload", "reader")) for p in self.problems)

    @property
    def beats(self) -> bool:
        """Better than anndata-default on the objective, significantly (the rule in the docstring)."""
        return (
            self.ratio is not None
            and self.ratio > 1
            and self.p_value is not None
            and self.p_value < ALPHA
            and self.interval is not None
            and self.interval[0] > 1
        )

    @property
    def qualifies(self) -> bool:
        return not self.problems and self.beats


@dataclass
class Verification:
    pick: Point  # the recommendation: a finalist, or anndata-default (keep the default)
    verdicts: list[Verdict]
    rows: list[dict[str, Any]]
    readers: dict[str, dict[str, str]]  # cross-pipeline reads per finalist
    results_dir: Path
    rounds: int | None = None  # the rounds run: fewer than --repeats when the race left no finalist

    @property
    def keep_default(self) -> bool:
        return self.pick.baseline == "anndata-default"


def by_point(rows: list[dict[str, Any]], network: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{point id: {workload: row}} of the rows measured under `network`."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if results.network_of(row) == network:
            out.setdefault(row["point_id"], {})[row["workload"]] = row
    return out


def _store_bytes(rows_of: dict[str, dict[str, Any]]) -> int | None:
    return next((int(r["bytes"]) for w, r in sorted(rows_of.items()) if r.get("bytes") and w != "interop"), None)


def slowdown(ref: dict[str, Any], row: dict[str, Any], max_slowdown: float) -> str | None:
    """Why one workload counts as a slowdown against anndata-default (rule 4 of the module's docstring), or
    None: `stats.paired_slowdown` of its per-round values against anndata-default's in the same rounds."""
    a, b = ref.get("values") or [], row.get("values") or []
    if ref.get("status") != "ok" or row.get("status") != "ok" or not (found := paired_slowdown(b, a, max_slowdown)):
        return None
    return f"{found[0]:.2f}x anndata-default, p = {found[1]:.3f}"


def judge(request: TuneRequest, points: list[Point], rows: list[dict[str, Any]], slowdowns=True) -> list[Verdict]:
    """A verdict for every verified point (under the last network condition: what the search optimised for);
    `slowdowns=False` leaves rule 4 out (the race looks at slowdowns with a stricter test of its own, `_slowed`)."""
    by = by_point(rows, request.verify_networks[-1].label)
    reference = request.references()[0]
    ref_rows = by.get(reference.id, {})
    ref_scores, ref_bytes = round_scores(ref_rows, request.objective) or [], _store_bytes(ref_rows)
    verdicts, max_slowdown = [], request.constraints.max_slowdown
    for point in points:
        rows_of = by.get(point.id, {})
        verdict = Verdict(point, bytes=_store_bytes(rows_of))
        for workload, row in sorted(rows_of.items()):
            # a workload this machine cannot run (a read-only store's write, a peer that is not installed) only
            # matters when the objective needs it; a failure always does
            informational = workload not in OBJECTIVES[request.objective] and workload != "interop"
            if row.get("status") != "ok" and not (row.get("status") == "unsupported" and informational):
                kind = "reader" if workload == "interop" else "workload"
                verdict.problems.append(f"{kind} {workload}: {row.get('status')} {row.get('error', '')}"[:300])
            elif (
                slowdowns
                and workload != "interop"
                and point.baseline != "anndata-default"
                and (why := slowdown(ref_rows.get(workload, {}), row, max_slowdown))
            ):
                verdict.problems.append(f"slowdown {workload}: {why} exceeds --max-slowdown {max_slowdown:g}")
        if verdict.bytes and ref_bytes:
            verdict.bytes_ratio = verdict.bytes / ref_bytes
            if verdict.bytes_ratio > request.constraints.max_size_ratio and point.baseline != "anndata-default":
                verdict.problems.append(
                    f"size {verdict.bytes_ratio:.3f}x anndata-default's bytes exceeds "
                    f"--max-size-ratio {request.constraints.max_size_ratio:g}"
                )
        scores = round_scores(rows_of, request.objective)
        if scores and ref_scores:
            verdict.objective = median(scores)
            verdict.ratio = median(ref_scores) / verdict.objective
            verdict.p_value = mann_whitney(ref_scores, scores)
            verdict.interval = ratio_interval(ref_scores, scores)
        verdicts.append(verdict)
    return verdicts


def _objectives(request: TuneRequest, rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Every verified point's per-round objective (under the last network condition), for those it measured."""
    by = by_point(rows, request.verify_networks[-1].label)
    return {pid: v for pid, rows_of in by.items() if (v := round_scores(rows_of, request.objective))}


def full_data_noise(request: TuneRequest, rows: list[dict[str, Any]]) -> tuple[float, int] | None:
    """The noise of the verification's rounds (`stats.block_noise` of every point's per-round objective, over
    the points measured in every round): what the race's test is against from its second round on."""
    return block_noise(_objectives(request, rows))


def racing(request: TuneRequest) -> bool:
    """Whether the verification races (looks after each of the first RACE_ROUNDS rounds, then the survivors go
    on): only when there are rounds left after the race."""
    return request.repeats > RACE_ROUNDS


def point_rounds(request: TuneRequest, finalists: int) -> int:
    """How many (point, round) measurements the verification makes per network condition, at most."""
    references = len(request.references())
    if not racing(request):
        return (finalists + references) * request.repeats
    survivors = min(finalists, MAX_SURVIVORS) + references
    return (finalists + references) * RACE_ROUNDS + survivors * (request.repeats - RACE_ROUNDS)


def _workload_rounds(
    request: TuneRequest, rows: list[dict[str, Any]], ids: set[str], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """{workload: {point id: per-round seconds}} of the points `ids` measured in all `rounds` rounds."""
    out: dict[str, dict[str, list[float]]] = {}
    for pid, rows_of in by_point(rows, request.verify_networks[-1].label).items():
        for workload, row in rows_of.items():
            values = row.get("values") or []
            usable = row.get("status") == "ok" and len(values) == rounds and min(values, default=0) > 0
            if pid in ids and workload != "interop" and usable:
                out.setdefault(workload, {})[pid] = values
    return out


def _slowed(per_workload: dict[str, dict[str, list[float]]], pid: str, reference: str, max_slowdown: float) -> str:
    """Why a finalist is significantly slower than anndata-default on a verified workload by more than
    --max-slowdown (`stats.block_slower_p` with the margin), or '': rule 4 would reject it at the end."""
    for workload, seconds in sorted(per_workload.items()):
        if pid not in seconds or reference not in seconds:
            continue
        if (p := block_slower_p(seconds, pid, reference, max_slowdown)) < ALPHA:
            ratio = median(seconds[reference]) / median(seconds[pid])
            return f"{workload} {ratio:.2f}x anndata-default, beyond --max-slowdown {max_slowdown:g} (p = {p:.3f})"
    return ""


def race(
    request: TuneRequest, points: list[Point], rows: list[dict[str, Any]], rounds: int
) -> tuple[list[Point], dict[str, str], dict[str, str]]:
    """After `rounds` rounds of the finalists `points` beside the defaults: the finalists that go on (best first),
    why each other one was raced out (the race in the module's docstring), and the first problem of each that
    stopped by a problem of its own (its verdict keeps the problem, so it is not a race reason)."""
    reference = request.references()[0]
    scores = _objectives(request, rows)
    racing_ids = {p.id for p in [*points, *request.references()]}
    complete = {pid: v for pid, v in scores.items() if pid in racing_ids and len(v) == rounds}
    per_workload = _workload_rounds(request, rows, racing_ids, rounds)

    def slower(pid: str, than: str) -> float:
        return block_slower_p(complete, pid, than) if pid in complete and than in complete else 1.0

    after = f"raced out after {rounds} round{'s' * (rounds > 1)}"
    out: dict[str, str] = {}
    stopped: dict[str, str] = {}
    alive: list[Verdict] = []
    for verdict in judge(request, [p for p in points if not p.baseline], rows, slowdowns=False):
        pid = verdict.point.id
        if verdict.problems:
            stopped[pid] = verdict.problems[0]
        if verdict.problems or pid not in scores:
            continue
        if (p := slower(pid, reference.id)) < ALPHA:
            out[pid] = (
                f"{after}: {verdict.ratio:.2f}x anndata-default on the objective, significantly slower (p = {p:.3f})"
            )
        elif why := _slowed(per_workload, pid, reference.id, request.constraints.max_slowdown):
            out[pid] = f"{after}: {why}"
        else:
            alive.append(verdict)
    alive.sort(key=lambda v: v.objective)
    survivors: list[Point] = []
    level = ALPHA / max(1, len(alive) - 1)  # the best is the luckiest of them: one test per other finalist
    for verdict in alive:
        pid, best = verdict.point.id, alive[0]
        if verdict is not best and (p := slower(pid, best.point.id)) < level:
            out[pid] = (
                f"{after}: {verdict.objective / best.objective:.2f}x the objective of {best.point.id}, "
                f"significantly slower (p = {p:.3f} < {level:.3g})"
            )
        elif rounds >= RACE_ROUNDS and len(survivors) >= MAX_SURVIVORS:
            out[pid] = f"{after}: not among the {MAX_SURVIVORS} best on the objective"
        else:
            survivors.append(verdict.point)
    return survivors, out, stopped


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
    alive, rows, raced_out, number = list(finalists), [], {}, 0
    for number in range(1, request.repeats + 1):
        last = number == request.repeats
        round_dir = res_dir / f"round-{number}"
        _measure(request, dataset_path, [*alive, *references], number, round_dir, workdir, READERS if last else (), log)
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
                log(f"no finalist is left after round {number}: anndata's default is kept, no more rounds")
                break
    verdicts = judge(request, [*finalists, *references], rows)
    for verdict in verdicts:
        if verdict.point.id in raced_out:
            verdict.problems.append(raced_out[verdict.point.id])
    qualified = sorted((v for v in verdicts if v.qualifies), key=lambda v: v.objective)
    pick = qualified[0].point if qualified else references[0]
    readers = {r["point_id"]: r.get("readers", {}) for r in rows if r["workload"] == "interop"}
    return Verification(pick, verdicts, rows, readers, res_dir, number)


def _measure(
    request: TuneRequest,
    dataset_path: Path,
    points: list[Point],
    number: int,
    res_dir: Path,
    workdir: Path,
    readers: Iterable[str],
    log=print,
) -> None:
    """Round `number` of the points on the full data, under every network condition asked for."""
    finalists = [p for p in points if not p.baseline]
    for network in request.verify_networks:
        where = "" if network.label == "none" else f", network {network.label}"
        log(
            f"verifying {len(finalists)} finalists beside {', '.join(r.id for r in request.references())} on the "
            f"full dataset (round {number} of {request.repeats}{where})"
        )
        run_sweep(
            Sweep(
                dataset=str(dataset_path),
                points=points,
                workloads=request.verify_workloads(),
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
            )
        )
