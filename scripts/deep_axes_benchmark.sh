#!/usr/bin/env bash
# Deeper axes (issue 10): sparse filters, dask-backed input aligned vs not, zarrs knobs; one results
# directory, read with `harness report --results $RESULTS` and `harness effects --results $RESULTS`.
set -euo pipefail
DATASET=${DATASET:-100k}
RESULTS=${RESULTS:-results/deep-$DATASET}
REPEATS=${REPEATS:-5}
COMMON=(--dataset "$DATASET" --results "$RESULTS" --baselines none --repeats "$REPEATS" --warmup 1 --timeout 1800 --no-progress)
# filters: compression ratio (files/MB in the table) and write/read speed, read back by every pipeline in verify
harness run "${COMMON[@]}" --axis pipeline=fused,zarrs --axis codec=zstd-0,blosc-lz4-noshuffle --axis sharding=rows-1024x16 \
  --axis filters=none,delta,shuffle --workloads write,read,lazy-random || true
# dask-backed input: in memory vs dask with 1000-row chunks vs dask rechunked to whole shards
harness run "${COMMON[@]}" --axis pipeline=fused,zarrs --axis codec=zstd-0 --axis sharding=rows-1024x16 \
  --axis input=memory,dask,dask-aligned --workloads write || true
# zarrs knobs: chunk-level vs codec-level parallelism, sharded and unsharded
harness run "${COMMON[@]}" --axis pipeline=zarrs --axis codec=zstd-0 --axis sharding=none,rows-1024x16 \
  --axis knobs=default,zarrs-chunk-min=1,zarrs-chunk-max=1,zarrs-workers=1 --workloads write,read || true
