"""summary.md: the decision first, in plain words, then the evidence that supports it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..analysis.stats import mann_whitney
from .race import MAX_SURVIVORS
from .rule import paired, slowdown

REJECTED_LISTED = 40  # rejections named in summary.md; recommended.json keeps them all


def _interval(v: dict[str, Any]) -> str:
    lo_hi = v.get("interval")
    return f"[{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else "–"


def _ceil(ratio: float) -> str:
    """The smallest round factor at or above `ratio`, for --max-size-ratio or --max-slowdown (1.002 -> 1.01,
    1.18 -> 1.2)."""
    for step in (0.01, 0.05, 0.1, 0.25):
        value = round(-(-ratio // step) * step, 2)
        if value - ratio < 5 * step:
            return f"{value:g}"
    return f"{ratio:.2f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _status(v: dict[str, Any], pick: str, reference: str, short: bool = False) -> str:
    """A verified point's verdict; `short`: each problem by its head only (the verdict table has them whole)."""
    if v["point_id"] == pick:
        return "**kept (the default)**" if v["default"] else "**recommended**"
    if v["point_id"] == reference:
        return "the reference"
    if v["problems"]:
        return "; ".join(p.split(":")[0] if short else p for p in v["problems"])
    if v.get("ratio") is None:
        return "–"
    if v["beats"]:
        return "beats the default, but another qualifying point is better"
    if (v.get("ratio") or 0) > 1:
        return "faster on the median, not significantly"
    return "not faster than the default"


def _cell(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("median") is None:
        return str((entry or {}).get("status") or "–")
    counted = (
        f" [{entry['requests']:.0f} req, {entry['transferred'] / 1e6:.0f} MB]"
        if entry.get("requests") is not None and entry.get("transferred") is not None
        else ""
    )
    return f"{entry['median']:.3f} ±{entry['iqr']:.3f}{counted}"


def _headline(record: dict[str, Any], verdicts: dict[str, dict[str, Any]]) -> list[str]:
    pick, cfg = record["point_id"], record["config"]
    if record["outcome"] == "keep-default":
        return [
            f"**Outcome: keep anndata's default.** Nothing beat `{pick}` on the {record['objective']} objective on "
            "the full data under the rule below, so `recommended_config()` calls anndata's own `write_zarr` / "
            f"`read_zarr` / `read_lazy` and changes nothing.{_near_misses(record, verdicts)}"
        ]
    v = verdicts[pick]
    return [
        f"**Recommended: `{pick}`** – store {cfg['store']}, pipeline {cfg['pipeline']}, codec {cfg['codec']}, "
        f"sharding {cfg['sharding']}, consolidated {cfg['consolidated']}, concurrency {cfg['concurrency']}, "
        f"cache {cfg['cache']}, knobs {cfg['knobs']}, filters {cfg['filters']}.",
        "",
        f"On the full data it is {v['ratio']:.2f}x anndata-default on the {record['objective']} objective "
        f"(95% bootstrap interval {_interval(v)}, Mann-Whitney p = {_p(v['p_value'])}) with "
        f"{v['bytes_ratio']:.2f}x its bytes."
        if v.get("bytes_ratio")
        else "",
        "",
        _slower(record),
    ]


def _slower(record: dict[str, Any]) -> str:
    """Every workload on which the pick is slower than the reference with significance (the slowdown rule's test
    at any size), allowed because it is within --max-slowdown: said beside the gain, so it is no surprise. (A pick
    is never beyond --max-slowdown on a workload round by round: `rule.judge`.)"""
    ref, pick = record["reference"], record["point_id"]
    slower = [
        f"{_workload(e)} {why}"
        for e in record["verification"]
        if (why := slowdown(e.get(ref) or {}, e.get(pick) or {}, 1.0))
    ]
    allowed = float(record["constraints"]["max_slowdown"])
    said = (
        f"Slower than anndata-default with significance, within --max-slowdown "
        f"{'none' if math.isinf(allowed) else f'{allowed:g}'}: {'; '.join(slower)}. "
        "Pass `--max-slowdown 1` to allow no significant slowdown."
        if slower
        else "No verified workload is significantly slower than anndata-default."
    )
    return said


def _workload(entry: dict[str, Any]) -> str:
    """A verification entry's workload, with its network condition when it has one."""
    net = entry.get("network", "none")
    return entry["workload"] if net == "none" else f"{entry['workload']} ({net})"


def _closest(verdicts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finalists, best objective first: those that ran enough rounds for a test (a p) before those the race
    stopped after a round or two, whose one or two rounds' median is no evidence (on pbmc68k a point stopped after
    round 1 for 1.014x the bytes was named closest at 1.01x over one that ran five rounds at 1.00x, p = 0.84)."""
    finalists = (v for v in verdicts if not v["default"] and v.get("objective"))
    return sorted(finalists, key=lambda v: (v.get("p_value") is None, v["objective"]))


def _slowdown_allowing(record: dict[str, Any], pid: str) -> float | None:
    """The --max-slowdown that lets the rule allow every slowdown of point `pid` in these rounds (1 / its slowest
    workload's ratio round by round, when beyond --max-slowdown), or None when none is beyond it."""
    ref, allowed = record["reference"], float(record["constraints"]["max_slowdown"])
    ratios = [
        found[0]
        for e in record["verification"]
        if (found := paired(e.get(ref) or {}, e.get(pid) or {})) and found[0] * allowed < 1
    ]
    return 1 / min(ratios) if ratios else None


def _near_misses(record: dict[str, Any], verdicts: dict[str, dict[str, Any]]) -> str:
    """What came closest: a correct point that beats the default but only with more bytes or a slower
    workload (and the smallest round flags that allow what these rounds measured), else the finalist with the best
    objective and why it did not qualify."""
    finalists = _closest(verdicts.values())
    beaten = [v for v in finalists if v["beats"] and v.get("correct", True)]
    if beaten:
        v = beaten[0]
        kinds = {problem.split(" ", 1)[0] for problem in v["problems"]}
        flags = []
        if "size" in kinds and v.get("bytes_ratio"):
            flags.append(f"`--max-size-ratio {_ceil(v['bytes_ratio'])}`")
        if "slowdown" in kinds:
            factor = _slowdown_allowing(record, v["point_id"])
            flags.append(f"`--max-slowdown {_ceil(factor) if factor else 'none'}`")
        size = f", {v['bytes_ratio']:.3f}x its bytes" if v.get("bytes_ratio") else ""
        return (
            f" `{v['point_id']}` does beat it ({v['ratio']:.2f}x on the objective, 95% interval {_interval(v)}, "
            f"p = {_p(v['p_value'])}{size}), but {'; '.join(v['problems'])}: "
            f"allow that with {' and '.join(flags)}."
        )
    if not finalists:
        return ""
    v = finalists[0]
    why = "; ".join([*([] if v["beats"] else ["not significantly faster"]), *v["problems"]])
    return (
        f" The closest finalist, `{v['point_id']}`, measured {v['ratio']:.2f}x (95% interval {_interval(v)}, "
        f"p = {_p(v['p_value'])}): {why}."
    )


def _noise(sd: dict[str, float | None]) -> str:
    """The noise the race's tests were against: one round's relative spread on the full data (and on the search's
    last sample, for comparison)."""
    if not sd.get("full_data"):
        return ""
    rung = f" ({sd['last_rung']:.1%} on the search's last sample)" if sd.get("last_rung") else ""
    return f" One round's noise (sd of the log objective): {sd['full_data']:.1%} on the full data{rung}."


def _deciding(record: dict[str, Any]) -> list[str]:
    """The deciding rounds after the verification's rounds (`race.undecided`), when there were any."""
    if not (deciding := record.get("deciding_rounds")):
        return []
    points = ", ".join(f"`{pid}`" for pid in dict.fromkeys(p for r in deciding for p in r["points"]))
    workloads = ", ".join(dict.fromkeys(w for r in deciding for w in r["workloads"]))
    allowed = float(record["constraints"]["max_slowdown"])
    return [
        "",
        f"Deciding rounds: {len(deciding)} after the {record.get('verification_rounds', 5)} rounds. {points} met the "
        f"rest of the rule but {workloads} {'was' if ',' not in workloads else 'were'} slower than anndata-default "
        f"round by round by more than --max-slowdown {allowed:g} without significance, so only those were measured "
        "again beside anndata-default until significantly beyond it (ruled out) or back within it; one still "
        f"beyond it after the last rules its point out: {record.get('deciding_ended')}. Their figures below include "
        "these rounds.",
    ]


def render(record: dict[str, Any], figure: str | None = None) -> str:
    verdicts = {v["point_id"]: v for v in record["verdicts"]}
    rounds = record.get("verification_rounds", 5)
    short = record.get("short_read_s")  # records before it timed every read once a round
    low, high = record.get("short_runs") or (3, 5)  # the runs of a short read; 3 to 5 before the record said
    lines = [
        f"# Tuned storage for {record['dataset']['name']} (objective: {record['objective']})",
        "",
        *_headline(record, verdicts),
        "",
        f"Rule: {record['rule']}",
        "",
        f"## Verified on the full data ({rounds} interleaved rounds; objective = median over rounds of the "
        "round's geometric mean of the objective's workloads, seconds"
        + (
            f"; a read under {short:g} s ran {low} to {high} times a round, its median run the round's value)"
            if short
            else ")"
        ),
        "",
        f"Raced: the finalists and the defaults round by round; after each of the first {race} rounds a finalist with "
        "a problem of its own stops, and from the second one significantly slower than anndata-default or the best "
        "finalist (p < 0.05 / the other finalists) on the objective, or significantly slower than anndata-default "
        f"on a workload by more than --max-slowdown; after round {race} at most {MAX_SURVIVORS} go on with the "
        f"defaults, and their stores are read back under every reader in round {race + 1}. No more rounds are run "
        f"when no finalist is left, or after round {race + 1} when the best finalist already meets the rule and none "
        "of its workloads is slower than anndata-default's beyond --max-slowdown round by round. A stopped point's "
        "figures are from the rounds it ran." + _noise(record.get("race_noise_sd") or {})
        if (race := record.get("race_rounds"))
        else "",
        *(["", f"The rounds ended early: {ended}."] if (ended := record.get("verification_ended")) else []),
        *_deciding(record),
        "",
        "| point | objective | vs anndata-default (95% interval) | p | bytes vs default | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for v in record["verdicts"]:
        ratio = f"{v['ratio']:.2f}x {_interval(v)}" if v.get("ratio") else "–"
        size = (
            f"{v['bytes'] / 1e6:.1f} MB ({v['bytes_ratio']:.2f}x)" if v.get("bytes") and v.get("bytes_ratio") else "–"
        )
        objective = f"{v['objective']:.4g}" if v.get("objective") else "–"
        lines.append(
            f"| `{v['point_id']}` | {objective} | {ratio} | {_p(v.get('p_value'))} | {size} | "
            f"{_status(v, record['point_id'], record['reference'])} |"
        )
    lines += [
        "",
        "## What each extra byte buys",
        "",
        "Fastest correct verified point within each budget of anndata-default's bytes (on the full data), and why it "
        "is or is not the recommendation:",
        "",
        "| bytes budget | point | objective vs default | p | bytes | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for b in record["size_budgets"]:
        if b.get("point_id"):
            lines.append(
                f"| {b['budget']:g}x | `{b['point_id']}` | {b['ratio']:.2f}x {_interval(b)} | {_p(b['p_value'])} | "
                f"{b['bytes_ratio']:.2f}x | {_status(verdicts[b['point_id']], record['point_id'], record['reference'], short=True)} |"
            )
        else:
            lines.append(f"| {b['budget']:g}x | none verified | | | | |")
    if figure:
        lines += [
            "",
            f"![objective against bytes]({figure})",
            "",
            "Verified points: objective (lower is better) against bytes on disk; the line joins the Pareto front, "
            "the star is the pick.",
        ]
    lines += _workload_tables(record)
    if any(record["readers"].values()):
        lines += ["## Cross-pipeline reads (full data)", ""]
        lines += [
            f"- `{pid}`: " + ", ".join(f"{r} {s}" for r, s in readers.items())
            for pid, readers in record["readers"].items()
        ]
        lines.append("")
    lines += _search(record)
    return "\n".join(lines) + "\n"


def _workload_tables(record: dict[str, Any]) -> list[str]:
    """Per network condition: every workload's median ±IQR for the reference, the pick, the other default and
    the closest finalist (`_closest`), each with its ratio to the reference and the Mann-Whitney p."""
    ref, pick = record["reference"], record["point_id"]
    finalists = _closest(record["verdicts"])
    shown = list(dict.fromkeys([ref, pick, *record["references"], *(v["point_id"] for v in finalists[:1])]))
    lines: list[str] = []
    for net in dict.fromkeys(e.get("network", "none") for e in record["verification"]):
        where = "" if net == "none" else f"; network {net}"
        lines += [
            "",
            f"## Per workload (median seconds ±IQR{where}; (ratio = {ref} / this, Mann-Whitney p across the rounds; "
            "the slowdown rule pairs each round's two values))",
            "",
            "| workload | " + " | ".join(f"`{p}`" for p in shown) + " |",
            "|---" * (len(shown) + 1) + "|",
        ]
        for e in (e for e in record["verification"] if e.get("network", "none") == net):
            cells = [_cell(e.get(ref))] + [_cell(e.get(p)) + _versus(e.get(ref), e.get(p)) for p in shown[1:]]
            lines.append(f"| {e['workload']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _versus(ref: dict[str, Any] | None, other: dict[str, Any] | None) -> str:
    if not ref or not other or not ref.get("median") or not other.get("median"):
        return ""
    p = mann_whitney(ref.get("values") or [], other.get("values") or [])
    return f" ({ref['median'] / other['median']:.2f}x{'' if p is None else f', p={p:.3f}'})"


def _search(record: dict[str, Any]) -> list[str]:
    search = record["search"]
    lines = [
        "## Search",
        "",
        f"Successive halving on random row samples ({search['seconds']:.0f}s): every rung measures "
        "its candidates beside anndata's defaults in interleaved rounds and keeps every candidate not significantly "
        "slower than the best of its layout (sharding policy): layouts are compared on the full data only.",
        "",
        "Candidates and kept count anndata's defaults, which every rung times and never prunes. Rejected: over "
        "--max-size-ratio on the sample (not timed) or failed there (listed below); pruned: timed and significantly "
        "slower than the best of their layout.",
        "",
        "| rows | candidates | rejected | pruned | kept | seconds |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['rows']} | {r['candidates']} | {len(r['rejected'])} | {len(r['pruned'])} | {len(r['kept'])} | "
        f"{r['seconds']:.0f} |"
        for r in search["rungs"]
    ]
    duplicates = sum(1 for reason in search["dropped_before_search"].values() if reason.startswith("duplicate"))
    lines += [
        "",
        f"{duplicates} candidates of the space were dropped before measuring because they write the same "
        "store as another at the full data size (e.g. zstd level 0 is numcodecs' level 3).",
    ]
    if search.get("note"):
        lines += ["", f"Note: {search['note'].rstrip('.')}."]
    rejected = list({k: v for r in search["rungs"] for k, v in r["rejected"].items()}.items())
    if rejected:
        lines += ["", "## Rejected during the search", ""] + [f"- `{k}`: {v}" for k, v in rejected[:REJECTED_LISTED]]
        if len(rejected) > REJECTED_LISTED:
            lines.append(
                f"- and {len(rejected) - REJECTED_LISTED} more: recommended.json lists every one (search, rungs, "
                "rejected)"
            )
    return lines
