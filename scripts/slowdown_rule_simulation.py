"""How often rule 4 rules out one workload of a finalist, by its true speed against anndata-default, under the two
tests it has had: "slower at all" (before 2026-12-08: out when the ratio of the two medians is beyond --max-slowdown
and a paired p < 0.05 that it is slower; deciding rounds only while beyond it without that; still beyond at their
end: allowed) and "beyond the margin" (now, `stats.paired_ratio`: out when a paired p < 0.05 that it is slower by
more than --max-slowdown; deciding rounds while the geometric mean of the rounds' own ratios is beyond it without that;
still beyond at their end: out).

Rounds are log-normal: every round's drift is shared by the pair (the interleaved rounds), each value has its own
noise. The tests are harness's own (`stats.paired_ratio`). A workload truly within --max-slowdown should rarely be
ruled out (a stable answer); one truly beyond it should rarely get through (a safe one).

    .venv/bin/python scripts/slowdown_rule_simulation.py [--draws 4000]
"""

from __future__ import annotations

import argparse

import numpy as np

from harness.analysis.stats import ALPHA, block_slower_p, paired_ratio

MARGIN, ROUNDS, DECIDING = 1.1, 5, 5


def slower_at_all(candidate: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """The test before: the ratio of the two medians, the paired p that the candidate is slower at all."""
    pair = {"candidate": list(candidate), "reference": list(reference)}
    return float(np.median(reference) / np.median(candidate)), block_slower_p(pair, "candidate", "reference")


def ruled_out(candidate: np.ndarray, reference: np.ndarray, beyond_margin: bool) -> tuple[bool, int]:
    """(ruled out, deciding rounds run) of one workload's rounds under one of the two tests."""
    for n in range(ROUNDS, ROUNDS + DECIDING + 1):
        c, r = candidate[:n], reference[:n]
        ratio, p = paired_ratio(c, r, MARGIN) if beyond_margin else slower_at_all(c, r)
        if ratio * MARGIN >= 1:
            return False, n - ROUNDS
        if p < ALPHA:
            return True, n - ROUNDS
    return beyond_margin, DECIDING


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drift", type=float, default=0.2, help="sd of a round's log pace, shared by the pair")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    total = ROUNDS + DECIDING
    print(
        f"--max-slowdown {MARGIN}, {ROUNDS} rounds and up to {DECIDING} deciding rounds, drift {args.drift:.0%} a "
        f"round, {args.draws} draws each"
    )
    print("| noise a round | true speed vs default | out: slower at all | out: beyond the margin | deciding rounds |")
    print("|---|---|---|---|---|")
    for sigma in (0.08, 0.15):
        for speed in (0.75, 0.80, 0.85, 0.88, 1 / MARGIN, 0.93, 0.95, 1.0):
            got = {False: [], True: []}
            for _ in range(args.draws):
                drift = rng.normal(0.0, args.drift, total)
                reference = np.exp(drift + rng.normal(0.0, sigma / np.sqrt(2), total))
                candidate = np.exp(drift - np.log(speed) + rng.normal(0.0, sigma / np.sqrt(2), total))
                for beyond in (False, True):
                    got[beyond].append(ruled_out(candidate, reference, beyond))
            old, new = (np.mean([out for out, _ in got[b]]) for b in (False, True))
            extra = (np.mean([n for _, n in got[b]]) for b in (False, True))
            print(
                f"| {sigma:.0%} | {speed:.3f}x | {old:.0%} | {new:.0%} | "
                + " / ".join(f"{e:.1f}" for e in extra)
                + " |"
            )


if __name__ == "__main__":
    main()
