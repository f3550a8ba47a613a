"""Timed runs of one workload in the worker's process: warm-ups, then repeats, each after an untimed `reset`; a short
read runs 3 to 5 times a repeat and its median run is the repeat's value (`short_runs`); CPU time, peak memory and,
against the loopback servers, the requests of each timed run."""

from __future__ import annotations

import math
import os
import resource
import time
from typing import Any


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (Linux: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: The runs of a short read in one timed repeat (`short_runs`): at least 3 and at most 5.
SHORT_RUNS = (3, 5)


def short_runs(seconds: float, least: float) -> int:
    """How many runs one timed repeat of a read makes when its first run took `seconds`: one, or, under `least`
    seconds, enough to add up to `least`, at least 3 and at most 5 (`SHORT_RUNS`); its value is their median run.

    A sub-second read timed once a round is mostly run-to-run jitter: on 100k, over six rounds of anndata-default
    beside Fused `rows-256x16`, with `least` 1.5 s the sd of the per-round log ratio of the two fell from 0.22 to 0.16
    (lazy-open, 0.2 s, five runs), 0.38 to 0.13 (lazy-rows, 0.6-1.2 s, three) and 0.14 to 0.09 (lazy-obs, 0.25 s,
    five), and a first run was up to 1.2x its repeat's median. The tunes since show less: 12-13 % less noise on small
    data, none measurable on 100k, whose noise is mostly between rounds (docs/tune-validation.md)."""
    if least <= 0 or seconds >= least or seconds <= 0:
        return 1
    low, high = SHORT_RUNS
    return min(high, max(low, math.ceil(least / seconds)))


def measure(workload: Any, repeats: int, warmup: int, least: float = 0.0) -> dict[str, Any]:
    """Warm-ups, then `repeats` timed repeats; `reset` is untimed before each run. A read whose first run of a
    repeat is shorter than `least` seconds runs again (`short_runs`) and the repeat's figures are its median run's
    (the lower median); every run's seconds are kept in `runs`, one list per repeat.

    Against the loopback servers, each timed run's requests are counted from their access logs (untimed);
    a workload's own per-run figures (e.g. time to first batch) land in `metrics`.
    """
    from .requests import RequestCounter

    counter = RequestCounter.from_env()

    def timed() -> dict[str, Any]:
        workload.reset()
        workload.result = None
        workload.metrics = {}
        reset_peak_rss()
        if counter:
            counter.start()
        t0, c0 = time.perf_counter(), os.times()
        workload.run()
        wall, c1 = time.perf_counter() - t0, os.times()
        counted = counter.stop() if counter else None
        return {
            "wall": wall,
            "user": c1.user - c0.user,
            "sys": c1.system - c0.system,
            "requests": counted,
            "metrics": dict(workload.metrics),
            "cold": workload.ctx.last_cold,
            "peak": peak_rss_mb(),
        }

    warm = [timed()["wall"] for _ in range(warmup)]
    requests: list[dict[str, int]] = []
    metrics: dict[str, list[float]] = {}
    walls: list[float] = []
    users: list[float] = []
    syss: list[float] = []
    runs: list[list[float]] = []
    peak = 0.0
    colds: list[bool] = []
    for _ in range(repeats):
        done = [timed()]
        wanted = 1 if workload.writes else short_runs(done[0]["wall"], least)
        done += [timed() for _ in range(wanted - 1)]
        run = sorted(done, key=lambda r: r["wall"])[(len(done) - 1) // 2]
        walls.append(run["wall"])
        users.append(run["user"])
        syss.append(run["sys"])
        runs.append([r["wall"] for r in done])
        peak = max(peak, *(r["peak"] for r in done))
        colds.append(all(r["cold"] for r in done))
        if run["requests"] is not None:
            requests.append(run["requests"])
        for name, value in run["metrics"].items():
            metrics.setdefault(name, []).append(value)
    extra: dict[str, Any] = {"metrics": metrics} if metrics else {}
    if requests:
        extra["requests"] = {k: [r.get(k, 0) for r in requests] for k in sorted({k for r in requests for k in r})}
    if least > 0:
        extra["runs"] = runs
    return {
        **extra,
        "values": walls,
        "warmup_values": warm,
        "cpu_user": users,
        "cpu_sys": syss,
        "peak_rss_mb": round(peak, 1),
        "page_cache": "n/a" if workload.writes else ("cold" if colds and all(colds) else "warm"),
    }
