"""Harness overhead: the same write timed by the runner and by a bare script, in one run.

    python scripts/overhead.py --dataset 100k --repeats 5

The bare script is plain anndata + zarr with time.perf_counter around `write_zarr` (as
anndata-default: Fused pipeline set explicitly), in its own fresh interpreter; the runner measures
the `anndata-default` write the usual way. The ratio runner/bare is the harness's overhead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BARE = r"""
import json, shutil, sys, time
import anndata as ad, zarr
zarr.config.set({"codec_pipeline.path": "zarr.core.codec_pipeline.FusedCodecPipeline"})
src, out, repeats, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
adata = ad.read_h5ad(src)
times = []
for i in range(warmup + repeats):
    shutil.rmtree(out, ignore_errors=True)
    copy = adata.copy()
    t0 = time.perf_counter()
    ad.io.write_zarr(out, copy)
    if i >= warmup:
        times.append(time.perf_counter() - t0)
shutil.rmtree(out, ignore_errors=True)
print(json.dumps(times))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="10k")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    from harness.analysis import results
    from harness.matrix import baseline_point
    from harness.measure import datasets
    from harness.measure.runner import Sweep, run_sweep

    src = datasets.resolve(args.dataset)
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        sweep = Sweep(
            dataset=str(src),
            points=[baseline_point("anndata-default")],
            workloads=["write"],
            repeats=args.repeats,
            warmup=args.warmup,
            results_dir=Path(tmp) / "results",
            workdir=Path(tmp) / "work",
            progress=False,
        )
        run_sweep(sweep)
        (row,) = results.iter_rows(sweep.results_dir)
        bare = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    BARE,
                    str(src),
                    str(Path(tmp) / "bare.zarr"),
                    str(args.repeats),
                    str(args.warmup),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    runner_med, bare_med = statistics.median(row["values"]), statistics.median(bare)
    print(f"dataset {args.dataset}: anndata-default write, {args.repeats} repeats")
    print(f"runner: median {runner_med:.3f} s  values {[round(v, 3) for v in row['values']]}")
    print(f"bare:   median {bare_med:.3f} s  values {[round(v, 3) for v in bare]}")
    print(f"overhead ratio runner/bare: {runner_med / bare_med:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
