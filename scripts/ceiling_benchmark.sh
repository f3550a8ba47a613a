#!/usr/bin/env bash
# The measurements behind issue 17 (ceilings and attribution), from a clean clone, nothing else running:
# the ceilings of 100k and of the built-in pbmc3k, then on 100k anndata's default beside the levers the
# ceilings point to (codecs per array role, zstd level 1, shards by bytes, the minimal index dtype), in one
# run with attribution. Read with `harness report --results $OUT` (ceilings, attribution, shares).
set -euo pipefail
REPEATS=${REPEATS:-5}
OUT=${OUT:-results/ceiling-benchmark}
H=${HARNESS:-.venv/bin/harness}
MIX="data:zstd-1+layers.data:blosc-zstd-shuffle-1+index:blosc-zstd-shuffle-1"
mkdir -p "$OUT"
"$H" ceiling --dataset 100k --results "$OUT" > "$OUT/ceiling-100k.log" 2>&1
"$H" ceiling --dataset pbmc3k --results "$OUT" > "$OUT/ceiling-pbmc3k.log" 2>&1
"$H" run --dataset 100k --results "$OUT" --baselines anndata-default --repeats "$REPEATS" --attribute --no-progress \
  --workloads write,read,lazy-rows,lazy-random --axis pipeline=fused,zarrs --axis "codec=zstd-1,$MIX" \
  --axis sharding=auto,bytes-4m-64m,bytes-1m-16m --axis indices=minimal > "$OUT/run-100k.log" 2>&1 || true
"$H" report --results "$OUT" --out "$OUT/report" > /dev/null
