"""Does a tune's row sample rank layouts the way the full data does? (issue 16, part 3)

    python scripts/sample_transfer.py --dataset 100k --repeats 3

Measures a few layouts exactly as `harness tune`'s search does on each rung (the same random row samples,
`tune.search.subsample`; the same per-sample layout, `tune.layout.at_sample`: the full data's chunk size and
shard count; interleaved rounds) and then on the full data, and prints, per size, every workload's median
and its ratio to auto sharding, the balanced objective, and the Spearman rank correlation of each sample's
objective with the full data's. Results go to --out (one results directory per size, `harness report` reads
them); nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.analysis import results
from harness.analysis.stats import median
from harness.matrix import Point
from harness.measure import datasets
from harness.measure.runner import Sweep, run_sweep
from harness.tune.layout import at_sample, dataset_shapes
from harness.tune.search import rung_sizes, subsample
from harness.tune.space import OBJECTIVES, score
from harness.tune.validate import spearman


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="100k")
    parser.add_argument("--pipeline", default="fused")
    parser.add_argument("--codec", default="zstd-0")
    parser.add_argument("--shardings", default="auto,rows-256x16,rows-1024x16", help="comma list, as on the full data")
    parser.add_argument("--objective", default="balanced", choices=[k for k, v in OBJECTIVES.items() if v])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per size (the search uses 3)")
    parser.add_argument("--out", type=Path, default=Path("results/sample-transfer"))
    args = parser.parse_args()

    path = datasets.resolve(args.dataset)
    shapes = dataset_shapes(path)
    workloads = list(dict.fromkeys(["write", *OBJECTIVES[args.objective]]))
    full = [Point.of(pipeline=args.pipeline, codec=args.codec, sharding=s) for s in args.shardings.split(",")]
    objective: dict[int, list[float | None]] = {}
    for rows in [*(r for r in rung_sizes(shapes.n_obs) if r < shapes.n_obs), shapes.n_obs]:
        source = subsample(path, rows, args.out / "samples")
        points = [at_sample(p, rows / shapes.n_obs) for p in full]
        out = args.out / f"rows-{rows}"
        print(f"{rows} rows: {', '.join(p.axis('sharding') for p in points)}", file=sys.stderr, flush=True)
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
        ref = by_point.get(points[0].id, {})
        print(f"\n{rows} rows ({rows / shapes.n_obs:.1%} of the data)")
        for point in points:
            got = by_point.get(point.id, {})
            cells = []
            for w in workloads:
                value, base = median((got.get(w) or {}).get("values")), median((ref.get(w) or {}).get("values"))
                cells.append(f"{w} {value:.3f}s ({base / value:.2f}x)" if value and base else f"{w} failed")
            value = score(got, args.objective)
            objective.setdefault(rows, []).append(value)
            shown = "failed" if value is None else f"{value:.3f}"
            print(f"  {point.axis('sharding'):14s} " + "  ".join(cells) + f"  | {args.objective} {shown}")
    truth = objective[shapes.n_obs]
    print(f"\nSpearman of each size's {args.objective} objective with the full data's ({len(full)} layouts):")
    for rows, values in objective.items():
        pairs = [(a, b) for a, b in zip(values, truth) if a is not None and b is not None]
        rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
        print(f"  {rows:>9} rows: " + ("n/a" if rho is None else f"{rho:+.2f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
