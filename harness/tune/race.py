"""The race of the verification, and when its rounds may stop.

The race: the finalists and the defaults are measured round by round on the full data, every round in a new random
order, until no finalist is left or all --repeats rounds are in. After each of the first RACE_ROUNDS rounds a
finalist stops when it has a problem of its own (a workload failed, or its store is too large: known after its first
write) or, from the second round on, when its per-round objective is significantly slower than anndata-default's
(p < 0.05) or than the best finalist's (p < 0.05 / the other finalists: the best is the luckiest of them; without the
correction the race stopped the 10k grid's best at p = 0.035 among eight and kept the default), or one of its
verified workloads is significantly slower than anndata-default's by more than --max-slowdown (`_slowed`, at
p < 0.05 / the workloads tested: an early look needs stronger evidence than rule 4; with rule 4 itself, a paired
test with one degree of freedom after two rounds, the race stopped all four 100k finalists, Fused `rows-256x16` on
a 0.90x). The rounds are blocks: a round's
drift is shared by every point in it, so the test compares mean log objectives against the noise left once the
rounds' and the points' effects are taken out, pooled over all the points in those rounds (`stats.block_slower_p`):
with eight points two rounds show a clear loss, and ties stay. Nothing stops on one round's difference: there is
no noise to judge it by. After round RACE_ROUNDS at most MAX_SURVIVORS, the best on the median, go on with the
defaults; in the next round (the reading round) their stores are also read back under every reader.

The end: the rounds stop when no finalist is left (more rounds of the defaults alone cannot change the answer), or
after the reading round when the answer is settled (`settled`): the best survivor on the objective already meets the
whole rule (`rule.judge`) and none of its verified workloads is slower than anndata-default's beyond --max-slowdown
even round by round (one round fewer is less power for rule 4, so the early answer must not lean on it). After four
rounds Mann-Whitney reaches p < 0.05 only when all four of the candidate's rounds were faster than all four of the
default's, so a settled answer is a clear one. The look costs a little of the rule's guard against a false change:
under the null (the candidate no better) the rule recommends it in 1.5 % of five-round verifications, and in 2.3 %
with the look after round four (simulated: 20,000 draws of log-normal rounds); well within the rule's 5 %. Replayed
on the stored rounds of 42 five-round verifications (19 validation runs on 100k, 11 on 10k, 12 main commands), it
settled 14 after round four (10 on 100k, 4 on 10k), each on the pick the five rounds made, and saves a fifth round
of the survivors and both defaults (on 100k 90-130 s of a tune of 770-1,000 s). Most that did not settle were kept
on by the median guard: zarrs `rows-256x16` often opens a lazy store at 0.85-0.89x the default's speed, which no
verification found significant.

The deciding rounds (`undecided`): after the last round, a finalist that meets the rest of the rule may be slower
than anndata-default on a workload round by round (`stats.paired_ratio`: the geometric mean of the rounds' ratios) by more
than --max-slowdown without the paired test finding it significantly beyond it (`rule.unresolved`). Five rounds
cannot settle a 0.75-0.9x on a sub-second lazy workload: on 100k Fused `rows-256x16` was ruled out on lazy-rows 0.77x
(p = 0.012) in one tune and recommended with lazy-rows 0.73x (p = 0.12) in the next; zarrs `rows-256x16` was
recommended with lazy-open 0.93x over nine rounds in one and ruled out on 0.80x in five (slower at all, p = 0.033)
in the next. While the best such finalist is undecided, up to --deciding-rounds more rounds
(`request.DECIDING_ROUNDS`) measure only those workloads, of the undecided finalists beside anndata-default (each
round writes their stores again, untimed, then times the workloads), until each is significantly beyond
--max-slowdown (rule 4 then rules the finalist out, and the next one may need deciding) or back within it. One
still beyond it after the last deciding round is ruled out too (`rule.judge`): a pick is never slower than
anndata-default on a workload, round by round, by more than --max-slowdown. The rounds append to the same paired
series. A finalist leaves the deciding rounds and never comes back, so its rounds are the first of
anndata-default's, as the paired test needs. The objective's verdict is unchanged: it is the median of the rounds
every one of its workloads ran, so the objective's false-change rate is what it was.
`scripts/slowdown_rule_simulation.py` compares this rule 4 with the one before it (a paired p < 0.05 that the
workload is slower at all, and the ratio of the two medians beyond --max-slowdown; no verdict at the deciding
rounds' end): see docs/tune-validation.md.
"""

from __future__ import annotations

import math
from typing import Any

from ..analysis.stats import ALPHA, block_noise, block_slower_p, median
from ..matrix import Point
from .request import TuneRequest
from .rule import Verdict, by_point, judge, objectives, paired, unresolved

RACE_ROUNDS = 3  # the race looks after each of these rounds; after the last of them at most MAX_SURVIVORS go on
MAX_SURVIVORS = 3


def full_data_noise(request: TuneRequest, rows: list[dict[str, Any]]) -> tuple[float, int] | None:
    """The noise of the verification's rounds (`stats.block_noise` of every point's per-round objective, over
    the points measured in every round): what the race's test is against from its second round on."""
    return block_noise(objectives(request, rows))


def racing(request: TuneRequest) -> bool:
    """Whether the verification races (looks after each of the first RACE_ROUNDS rounds, then the survivors go
    on): only when there are rounds left after the race."""
    return request.repeats > RACE_ROUNDS


def point_rounds(request: TuneRequest, finalists: int) -> int:
    """How many (point, round) measurements the verification makes per network condition, at most, before its
    deciding rounds (`undecided`: only a would-be pick's undecided workloads, when there are any)."""
    references = len(request.references())
    if not racing(request):
        return (finalists + references) * request.repeats
    survivors = min(finalists, MAX_SURVIVORS) + references
    return (finalists + references) * RACE_ROUNDS + survivors * (request.repeats - RACE_ROUNDS)


def fewest_point_rounds(request: TuneRequest, finalists: int, change: bool) -> int:
    """The fewest (point, round) measurements a verification of `finalists` finalists can make per network condition,
    every finalist correct and within the size limit: all of them run until the race's first test, after round 2
    (nothing stops on one round's difference), then, for a change, the pick and the defaults until the reading
    round settles it; keeping the default needs nothing after every finalist is raced out."""
    references = len(request.references())
    if not racing(request):
        return (finalists + references) * request.repeats
    first_test = 2
    after = (1 + references) * (reading_round(request) - first_test) if change else 0
    return (finalists + references) * first_test + after


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
    --max-slowdown (`stats.block_slower_p` with the margin), or '': rule 4 would reject it at the end. One look tests
    every verified workload, so the level is ALPHA / the workloads tested (without it, on a noisy 10k day the race
    stopped the grid's best after two rounds on lazy-rows 0.74x at p = 0.013, one of seven tests; rule 4, at the
    end, keeps ALPHA on every workload: there a false alarm keeps the default, it does not lose the best)."""
    tested = sorted(
        (block_slower_p(seconds, pid, reference, max_slowdown), workload)
        for workload, seconds in per_workload.items()
        if pid in seconds and reference in seconds
    )
    level = ALPHA / max(1, len(tested))
    if not tested or (p := tested[0][0]) >= level:
        return ""
    seconds = per_workload[workload := tested[0][1]]
    ratio = median(seconds[reference]) / median(seconds[pid])
    return (
        f"{workload} {ratio:.2f}x anndata-default, beyond --max-slowdown {max_slowdown:g} "
        f"(p = {p:.3f} < {level:.3g}, one of {len(tested)} workloads)"
    )


def race(
    request: TuneRequest, points: list[Point], rows: list[dict[str, Any]], rounds: int
) -> tuple[list[Point], dict[str, str], dict[str, str]]:
    """After `rounds` rounds of the finalists `points` beside the defaults: the finalists that go on (best first),
    why each other one was raced out (the race in the module's docstring), and the first problem of each that
    stopped by a problem of its own (its verdict keeps the problem, so it is not a race reason)."""
    reference = request.references()[0]
    scores = objectives(request, rows)
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


def reading_round(request: TuneRequest) -> int:
    """The round in which the finalists still racing are read back under every reader: the first after the race
    (its survivors are known), or the last when the verification does not race."""
    return RACE_ROUNDS + 1 if racing(request) else request.repeats


def settled(request: TuneRequest, points: list[Point], rows: list[dict[str, Any]]) -> str:
    """Why more rounds of the finalists `points` (those still racing) cannot change the answer, or '' (the end in
    the module's docstring): the best of them on the objective meets the whole rule, and none of its verified
    workloads is slower than anndata-default's by more than --max-slowdown round by round either."""
    verdicts = [v for v in judge(request, points, rows) if not v.point.baseline and v.objective is not None]
    if not verdicts or not (best := min(verdicts, key=lambda v: v.objective)).qualifies:
        return ""
    by = by_point(rows, request.verify_networks[-1].label)
    reference = by.get(request.references()[0].id, {})
    worst = math.inf
    for workload, row in by.get(best.point.id, {}).items():
        if workload != "interop" and (found := paired(reference.get(workload, {}), row)):
            worst = min(worst, found[0])
    if worst * request.constraints.max_slowdown < 1:
        return ""
    return (
        f"{best.point.id} meets the rule ({best.ratio:.2f}x anndata-default, p = {best.p_value:.3f}), no finalist is "
        f"ahead of it, and its slowest workload is {worst:.2f}x anndata-default's"
    )


def undecided(request: TuneRequest, points: list[Point], rows: list[dict[str, Any]]) -> tuple[list[Point], list[str]]:
    """The points among `points` that need a deciding round, and the workloads it measures (the deciding rounds in
    the module's docstring): the points that meet the rule, best objective first, up to the first of them with no
    unresolved workload (`rule.unresolved`; a point after it can no longer be the pick), those with one; and every
    workload unresolved for one of them, in the verification's order."""
    by = by_point(rows, request.verify_networks[-1].label)
    reference = by.get(request.references()[0].id, {})
    verdicts = judge(request, points, rows, pending=True)
    qualified = sorted((v for v in verdicts if v.qualifies), key=lambda v: v.objective)
    need: list[Point] = []
    workloads: set[str] = set()
    for verdict in qualified:
        open_ = {
            workload
            for workload, row in by.get(verdict.point.id, {}).items()
            if workload != "interop" and unresolved(reference.get(workload, {}), row, request.constraints.max_slowdown)
        }
        if not open_:
            break
        need.append(verdict.point)
        workloads |= open_
    return need, [w for w in request.verify_workloads() if w in workloads]
