#!/usr/bin/env bash
# The measurements behind issue 18 (training loaders), from a clean clone, nothing else running: on 100k and on
# the built-in pbmc3k, the harness's stream layouts and annbatch's own store (its writer), each read by the
# harness's loader and by annbatch's, at B = 4096, R in {64, 512}, 1 and 2 processes; then the same over S3 with 20 ms
# added per request. Read with `harness report --results $OUT` (the "Training loaders" table).
# K (runs preloaded) is annbatch's default 32, or B/R where that is more: annbatch refuses a batch larger than
# R x K (64-row runs need K = 64 for 4,096-row batches); both loaders get the same R, K and B.
# DATASETS, RUN_ROWS, PROCS and S3 (1 or 0) choose a part of it, e.g. PROCS=2 S3=0 for the multi-process runs only;
# S3_DATASETS, S3_RUN_ROWS and S3_PROCS the settings over S3 (default: the local ones; DATASETS=" " runs S3 only),
# S3_CONCURRENCY the concurrencies there.
REPEATS=${REPEATS:-5}
DATASETS=${DATASETS:-100k pbmc3k}
RUN_ROWS=${RUN_ROWS:-64 512}
PROCS=${PROCS:-1 2}
S3=${S3:-1}
set -euo pipefail
OUT=${OUT:-results/loader-benchmark}
H=${HARNESS:-.venv/bin/harness}
# Local points: the stream layout (Blosc lz4, 64-row chunks x 1,024 per shard, minimal indices) on zarr's Fused pipeline
# and on zarrs; annbatch's writer read on Fused and on zarrs (its docs advise zarrs for local stores). Every point is
# read by both loaders, so each loader gets the same store and pipeline. Over S3: Fused (zarrs is not used remotely).
POINTS=(--axis pipeline=fused,zarrs --axis codec=blosc-lz4-shuffle-3 --axis sharding=rows-64x1024 --axis indices=minimal)
# zarr's async.concurrency 10 (its default) and 64: at 20 ms a request, requests in flight bound a remote epoch.
S3_POINTS=(--axis pipeline=fused --axis codec=blosc-lz4-shuffle-3 --axis sharding=rows-64x1024 --axis indices=minimal
  --axis "concurrency=${S3_CONCURRENCY:-10,64}")
mkdir -p "$OUT"
for ds in $DATASETS; do
  for R in $RUN_ROWS; do
    for P in $PROCS; do
      "$H" run --dataset "$ds" --results "$OUT" --baselines annbatch,annbatch+zarrs "${POINTS[@]}" --repeats "$REPEATS" --no-progress \
        --workloads stream-blocks,stream-annbatch --batch 4096 --run-rows "$R" --preload "$(( R * 32 >= 4096 ? 32 : 4096 / R ))" --procs "$P" \
        > "$OUT/run-$ds-R$R-P$P.log" 2>&1 || true
    done
  done
done
if [ "$S3" = 1 ]; then
  for ds in ${S3_DATASETS:-$DATASETS}; do
    for R in ${S3_RUN_ROWS:-$RUN_ROWS}; do
      for P in ${S3_PROCS:-$PROCS}; do
        "$H" run --dataset "$ds" --results "$OUT" --baselines annbatch --axis store=s3-obstore "${S3_POINTS[@]}" \
          --repeats "$REPEATS" --no-progress --network latency=20ms --workloads stream-blocks,stream-annbatch --batch 4096 \
          --run-rows "$R" --preload "$(( R * 32 >= 4096 ? 32 : 4096 / R ))" --procs "$P" > "$OUT/run-s3-$ds-R$R-P$P.log" 2>&1 || true
      done
    done
  done
fi
"$H" report --results "$OUT" --out "$OUT/report" > /dev/null
