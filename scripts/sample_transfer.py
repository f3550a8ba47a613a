"""Does a tune's row sample rank layouts the way the full data does? (issue 16, part 3)

    python scripts/sample_transfer.py --dataset 100k --repeats 3 --sample-layouts search,full
    python scripts/sample_transfer.py --dataset 100k --pipelines python,fused,zarrs --codecs zstd-0,blosc-lz4-bitshuffle \
        --shardings sparse:rows-1024x16+dense:rows-1024x16+columns:auto     # within one layout

Measures a few points (pipelines x codecs x shardings) exactly as `harness tune`'s search does on each rung (the same random row samples,
`tune.samples.subsample`; the same per-sample layout, `tune.layout.at_sample`: the full data's chunk size and
shard count; interleaved rounds) and then on the full data. Prints, per size, every workload's median and its
ratio to the first layout (auto sharding by default) and the objective; then the Spearman rank correlation
with the full data's objective of each sample's objective, and of the objective extrapolated from two
consecutive samples (each workload's line through its two medians, at the full data's rows). Results go to
--out (one results directory per size, which `harness report` reads); nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

from harness.analysis import results
from harness.analysis.stats import median
from harness.matrix import Point
from harness.measure import datasets
from harness.measure.runner import Sweep, run_sweep
from harness.tune.layout import at_sample, dataset_shapes
from harness.tune.samples import rung_sizes, subsample
from harness.tune.space import OBJECTIVES, score
from harness.tune.validate import spearman

#: How a sample is laid out: as the search does (`at_sample`), or with the full data's shards unchanged.
SAMPLE_LAYOUTS = {"search": at_sample, "full": lambda point, fraction: point}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="100k")
    parser.add_argument("--pipelines", default="fused", help="comma list")
    parser.add_argument("--codecs", default="zstd-0", help="comma list")
    parser.add_argument("--shardings", default="auto,rows-256x16,rows-1024x16", help="comma list, as on the full data")
    parser.add_argument("--objective", default="balanced", choices=[k for k, v in OBJECTIVES.items() if v])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per size (the search uses 3)")
    parser.add_argument(
        "--sample-layouts",
        default="search",
        help="comma list of how a sample is laid out: 'search' (the search's own: the full data's shard count, so "
        "shards shrink with the sample) and/or 'full' (the full data's shard shape: fewer shards)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/sample-transfer"))
    args = parser.parse_args()

    path = datasets.resolve(args.dataset)
    shapes = dataset_shapes(path)
    weights = OBJECTIVES[args.objective]
    workloads = list(dict.fromkeys(["write", *weights]))
    full = [
        Point.of(pipeline=p, codec=c, sharding=s)
        for p, c, s in itertools.product(*(a.split(",") for a in (args.pipelines, args.codecs, args.shardings)))
    ]
    sizes = [*(r for r in rung_sizes(shapes.n_obs) if r < shapes.n_obs), shapes.n_obs]
    variants = args.sample_layouts.split(",")
    if unknown := set(variants) - set(SAMPLE_LAYOUTS):
        parser.error(f"unknown --sample-layouts {', '.join(sorted(unknown))}; valid: {', '.join(SAMPLE_LAYOUTS)}")
    # per variant, per size, per layout (in --shardings order): the objective, and workload -> median seconds
    objective: dict[str, dict[int, list[float | None]]] = {v: {} for v in variants}
    medians: dict[str, dict[int, list[dict[str, float | None]]]] = {v: {} for v in variants}
    for rows in sizes:
        source = subsample(path, rows, args.out / "samples")
        chosen = {v: [SAMPLE_LAYOUTS[v](p, rows / shapes.n_obs) for p in full] for v in variants}
        points = list({p.id: p for ps in chosen.values() for p in ps}.values())  # one interleaved sweep
        out = args.out / f"rows-{rows}"
        print(f"{rows} rows: {', '.join(map(_label, points))}", file=sys.stderr, flush=True)
        run_sweep(
            Sweep(
                dataset=str(source),
                points=points,
                workloads=workloads,
                rounds=args.repeats,
                results_dir=out,
                workdir=args.out / "work",
                progress=False,
            )
        )
        by_point: dict[str, dict[str, dict]] = {}
        for row in results.iter_rows(out):
            by_point.setdefault(row["point_id"], {})[row["workload"]] = row
        for variant, ps in chosen.items():
            medians[variant][rows] = [
                {w: median((by_point.get(p.id, {}).get(w) or {}).get("values")) for w in workloads} for p in ps
            ]
            objective[variant][rows] = [score(by_point.get(p.id, {}), args.objective) for p in ps]
            print(f"\n{rows} rows ({rows / shapes.n_obs:.1%} of the data), sample layout {variant!r}")
            ref = medians[variant][rows][0]
            for point, got, value in zip(ps, medians[variant][rows], objective[variant][rows]):
                cells = [
                    f"{w} {got[w]:.3f}s ({ref[w] / got[w]:.2f}x)" if got[w] and ref[w] else f"{w} failed"
                    for w in workloads
                ]
                shown = "failed" if value is None else f"{value:.3f}"
                print(f"  {_label(point)} " + "  ".join(cells) + f"  | {args.objective} {shown}")
    for variant in variants:
        truth = objective[variant][shapes.n_obs]
        print(f"\nSpearman with the full data's {args.objective} objective ({len(full)} points), samples {variant!r}:")
        for rows in sizes[:-1]:
            print(f"  the sample of {rows:>7} rows: {_rho(objective[variant][rows], truth)}")
        for small, large in zip(sizes[:-2], sizes[1:-1]):
            guess = [
                _extrapolated(a, b, small, large, shapes.n_obs, weights)
                for a, b in zip(medians[variant][small], medians[variant][large])
            ]
            shown = ", ".join("failed" if g is None else f"{g:.3f}" for g in guess)
            print(f"  extrapolated from {small} and {large} rows ({shown}): {_rho(guess, truth)}")
    return 0


def _extrapolated(
    small: dict[str, float | None], large: dict[str, float | None], n1: int, n2: int, n: int, weights: dict[str, float]
) -> float | None:
    """The objective from each workload's line through two sample sizes, at n rows (never below the larger
    sample's time: a workload does not get faster with more rows)."""
    logs = 0.0
    for w, weight in weights.items():
        a, b = small.get(w), large.get(w)
        if not a or not b:
            return None
        logs += weight * math.log(max(b, b + (b - a) * (n - n2) / (n2 - n1)))
    return math.exp(logs / sum(weights.values()))


def _label(point: Point) -> str:
    return "/".join(point.axis(a) for a in ("pipeline", "codec", "sharding"))


def _rho(values: list[float | None], truth: list[float | None]) -> str:
    pairs = [(a, b) for a, b in zip(values, truth) if a is not None and b is not None]
    rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
    return "n/a" if rho is None else f"{rho:+.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
