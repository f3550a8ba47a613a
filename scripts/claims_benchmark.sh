#!/usr/bin/env bash
# The measurements behind issue 19 (the zarr-v3 guide's claims), from a clean clone, nothing else running: every
# claim on 100k, locally and over S3 (s3rver behind nginx) with 20 ms added per request; then claims f (zarr-python
# vs zarrs) and g (zstd vs Blosc) under a second stack, an older zarr that anndata 0.13 accepts, locally.
# Each `harness claims` prints its table; the rows and verdicts stay in $OUT (read with `harness report`).
set -euo pipefail
REPEATS=${REPEATS:-5}
OUT=${OUT:-results/claims-benchmark}
H=${HARNESS:-.venv/bin/harness}
STACK=${STACK:-zarr==3.2.*}
mkdir -p "$OUT"
"$H" claims --dataset 100k --results "$OUT/current" --repeats "$REPEATS" --network latency=20ms --no-progress \
  > "$OUT/claims-100k.log" 2>&1
"$H" claims --dataset 100k --results "$OUT/second-stack" --repeats "$REPEATS" --claims f,g --local-only \
  --stack "$STACK" --no-progress > "$OUT/claims-100k-stack.log" 2>&1
"$H" report --results "$OUT/current" --out "$OUT/report" > /dev/null
