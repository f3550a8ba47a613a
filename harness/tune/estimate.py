"""The cost of the verification, estimated during the search: it decides how deep the search goes and how many
finalists race (`--finalists auto`) within `--budget`.

anndata-default's seconds of every verified workload on the full data, extrapolated from row samples along the line
through the two largest (`full_seconds`), or timed on the full data when that line says it is cheap
(`cheap_full_data`), times what a verification round costs beyond its timed workloads
(`ROUND_OVERHEAD`), times the (point, round) measurements the race makes at most (`race.point_rounds`). A workload
under `space.SHORT_READ_S` counts as many runs as the verification makes of a read that short (`short_runs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..analysis.stats import median
from ..measure.timing import short_runs
from .space import SHORT_READ_S, VERIFY_WORKLOADS

#: Seconds per worker and round that do not grow with the rows: interpreter, imports, dataset load, warm-up slice
#: (measured order of magnitude).
STARTUP_S = 5.0
#: One (point, round) of the verification took 1.4-2.2x anndata-default's summed workload seconds on the full data
#: in 35 stored verifications on 10k and 100k (worker start, warm-up, untimed writes, the readers' round, finalists
#: slower than the default): the largest, so the estimate stays a bound.
ROUND_OVERHEAD = 2.2
#: Rounds of anndata-default on the second sample, for the verification's estimate (`search.search`): a slope,
#: not a test.
ESTIMATE_ROUNDS = 2
#: anndata-default is timed on the full data for the estimate when the line through two samples says its verified
#: workloads take at most this long there (`cheap_full_data`): two rounds of them cost about 2.5 % of the default
#: budget.
CHEAP_FULL_DATA_S = 15.0


@dataclass(frozen=True)
class VerifyPlan:
    """What the verification will measure, for the estimate of its cost: its workloads, the points it measures in
    every round (finalists and defaults) and its network conditions."""

    workloads: tuple[str, ...] = tuple(VERIFY_WORKLOADS)
    points: int = 6
    sweeps: int = 1


def full_seconds(times: Mapping[int, float], n_obs: int) -> float:
    """A workload's seconds on the full data from its medians on row samples ({rows: seconds}): the line through
    the two largest samples, never falling (a noisy pair gives the larger sample's time), or from one sample in
    proportion to the rows (an upper bound: fixed costs do not grow with rows).

    Measured for anndata-default's seven local workloads: from 3,703 and 11,111 rows of 100k the line gave 23.1 s
    against 23.1 s measured on the full data, where the rows alone gave 29 s from 11,111 rows and 45 s from 3,703;
    from 500 and 1,111 rows of 10k it gave 7.6 s against 3.3 s (the rows alone: 11.5 s and 18 s)."""
    sizes = sorted(times)
    if not sizes:
        return 0.0
    r1 = sizes[-1]
    if len(sizes) == 1:
        return times[r1] * n_obs / r1
    r0 = sizes[-2]
    return times[r1] + max(0.0, (times[r1] - times[r0]) / (r1 - r0)) * (n_obs - r1)


def workload_seconds(
    ref_times: Mapping[str, Mapping[int, float]], n_obs: int, workloads: Sequence[str]
) -> dict[str, float]:
    """anndata-default's seconds of one run of each of `workloads` on the full data (`full_seconds`; a workload no
    sample measured counts as the mean of the others)."""
    known = {w: full_seconds(t, n_obs) for w, t in ref_times.items() if t}
    mean = sum(known.values()) / max(1, len(known))
    return {w: known.get(w, mean) for w in workloads}


def point_round_seconds(ref_times: Mapping[str, Mapping[int, float]], n_obs: int, workloads: Sequence[str]) -> float:
    """Seconds of one point in one verification round on the full data: anndata-default's seconds of every verified
    workload there (`workload_seconds`), each times its runs in a round (`short_runs`: a write counts as a short
    read would, a bound), with ROUND_OVERHEAD."""
    seconds = workload_seconds(ref_times, n_obs, workloads)
    return ROUND_OVERHEAD * sum(t * short_runs(t, SHORT_READ_S) for t in seconds.values())


def cheap_full_data(ref_times: Mapping[str, Mapping[int, float]], n_obs: int, workloads: Sequence[str]) -> bool:
    """Whether anndata-default's verified workloads take at most CHEAP_FULL_DATA_S on the full data, along the line
    through its two largest samples (`full_seconds`): then the search times it on the full data itself, and the
    estimate is measured, not extrapolated. On 10k the line through 500 and 1,111 rows swung between runs on one
    host (a verification of up to twelve finalists estimated at 783 s in one run, of seven at 1,044 s in the next;
    eleven took 268 s), and the search's depth and the finalists with it; 100k's line (23 s) stays out."""
    return sum(workload_seconds(ref_times, n_obs, workloads).values()) <= CHEAP_FULL_DATA_S


def verification_estimate(point_round_s: float, point_rounds: int, rounds: int, sweeps: int) -> float:
    """Seconds to verify: `point_rounds` (point, round) measurements per network condition (`sweeps` of them), and
    every round's worker start."""
    return sweeps * (point_rounds * point_round_s + rounds * STARTUP_S)


def record(ref_times: dict[str, dict[int, float]], rows_of: Mapping[str, Mapping[str, Any]], rows: int) -> None:
    """Add anndata-default's median seconds per workload on a sample of `rows` rows to `ref_times`."""
    for workload, row in rows_of.items():
        if row.get("status") == "ok" and (values := row.get("values")):
            ref_times.setdefault(workload, {})[rows] = median(values)


def race_them_all(
    contenders: int, scored: int, enough: int, next_cost: float, verify_cost: Callable[[int], float], left_s: float
) -> str:
    """Why the verification should race all `contenders` candidates instead of the search running one more rung
    (said to the user), or '' when the rung is worth it. A rung is worth its cost only by what it takes out of the
    verification: a candidate it removes is one the race need not measure on the full data. This rung kept
    `contenders` of the `scored` candidates it ranked, and the next one is expected to keep the same share (at
    least `enough`): when what that saves the verification (`verify_cost`: seconds to race n finalists, an upper
    bound like `next_cost`) is less than the rung costs, and racing them all fits in the `left_s` seconds of the
    budget, the full data decides between them all, which ranks them better than any sample (on 10k three rungs
    of 500 to 3,333 rows kept 10 of 11 and cost 40 % of the tune, and their ranking left the grid's best out of
    the eight finalists: README, tune)."""
    if contenders <= enough or not scored:
        return ""
    expected = max(enough, math.ceil(contenders * contenders / scored))
    cost = verify_cost(contenders)
    saving = cost - verify_cost(expected)
    if next_cost <= saving or cost > left_s:
        return ""
    return (
        f"the search stops here: it kept {contenders} of the {scored} candidates it timed (the defaults aside), so the "
        f"next rung (about {next_cost:.0f}s) would be expected to keep about {expected} and save the verification "
        f"about {saving:.0f}s; "
        f"racing all {contenders} on the full data is estimated at up to {cost:.0f}s and fits in the budget"
    )
