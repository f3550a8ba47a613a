#!/usr/bin/env bash
# The remote-storage benchmark (issue 4): read_lazy open, lazy-rows, lazy-random and streaming over
# S3 (moto behind nginx) and HTTP (nginx), fsspec vs obstore x asyncio vs uvloop x consolidated on/off,
# with no added latency and with 20 ms per request; then zarrs where it drives the store, and the
# three streaming modes. Everything lands in one results directory; read it with
#   harness report --results $RESULTS --name remote && harness effects --results $RESULTS
set -euo pipefail
DATASET=${DATASET:-100k}
RESULTS=${RESULTS:-results/remote-$DATASET}
REPEATS=${REPEATS:-5}
COMMON=(--dataset "$DATASET" --results "$RESULTS" --baselines none --repeats "$REPEATS" --warmup 0 --timeout 1800 --no-progress)
MATRIX=(--axis store=s3-fsspec,s3-obstore,http-fsspec,http-obstore --axis loop=asyncio,uvloop --axis consolidated=on,off
        --axis pipeline=fused --axis codec=zstd-0 --axis sharding=auto)
for NET in none latency=20ms; do
  harness run "${COMMON[@]}" "${MATRIX[@]}" --network "$NET" --workloads lazy-open,lazy-rows,lazy-random,stream-async || true
  harness run "${COMMON[@]}" --network "$NET" --axis store=s3-obstore,http-obstore,http-fsspec --axis pipeline=zarrs \
    --axis codec=zstd-0 --axis sharding=auto --axis consolidated=on --workloads lazy-open,lazy-rows,lazy-random,stream-async || true
done
harness run "${COMMON[@]}" --network latency=20ms --axis store=s3-obstore --axis loop=asyncio,uvloop --axis pipeline=fused \
  --axis codec=zstd-0 --axis sharding=auto --axis consolidated=on --repeats 3 \
  --workloads stream-sync,stream-async,stream-dask,stream-sync-shuffled,stream-async-shuffled,stream-dask-shuffled || true
