#!/usr/bin/env bash
# The measurement behind issue 20's conversion figures, from a clean clone, nothing else running: `1m-deep`
# (1,000,000 cells x 20,000 genes, ~1,200 non-zeros per cell in X and in layers/counts, ~19 GB of sparse arrays,
# generated in row chunks, never held in memory) converted from .h5ad with `harness convert` on a 2-worker
# LocalCluster, verified shard by shard against the source; then, beside it, anndata's own `write_zarr` of a
# `read_lazy` source (dask, its default threaded scheduler), timed with its peak RSS (GNU time).
# CONFIG: the layout to convert to (default: the stream layout of the loader benchmark, Blosc lz4 with byte
# shuffle, 64-row chunks x 1,024 per shard, minimal indices; about 0.3 GB per shard of X.data).
# E.g. the 100k tune's pick: a tune's io_config.py or IOConfig(pipeline='zarrs', codec='zstd-0',
# sharding='sparse:rows-256x16+dense:rows-256x16+columns:auto').to_json() in a file.
# CONVERT=0 skips the harness's conversion, ANNDATA=0 anndata's writer (the slow part); ANNDATA_TIMEOUT (2,400 s) bounds it (a timeout is a lower bound).
# SWEEP=1 runs only the second half instead: the default sweep on SWEEP_DATASET (100k) locally, then on a
# WORKERS-worker LocalCluster (each point still in its own fresh interpreter), compared with `harness compare`.
# The guide-example baseline is left out of it: one write of 100k takes more than 30 min here.
set -euo pipefail
OUT=${OUT:-results/scaleout-benchmark}
H=${HARNESS:-.venv/bin/harness}
PY=${PYTHON:-.venv/bin/python}
DATASET=${DATASET:-1m-deep}
WORKERS=${WORKERS:-2}
ANNDATA=${ANNDATA:-1}
SCRATCH=${SCRATCH:-$OUT/stores}
mkdir -p "$OUT" "$SCRATCH"
if [ "${SWEEP:-0}" = 1 ]; then
  ARGS=(--dataset "${SWEEP_DATASET:-100k}" --baselines anndata-default,anndata-default+zarrs,h5ad
    --repeats "${REPEATS:-5}" --no-progress)
  for where in local cluster; do
    extra=(); [ "$where" = local ] || extra=(--cluster "local:$WORKERS")
    start=$(date +%s)
    "$H" run "${ARGS[@]}" "${extra[@]}" --results "$OUT/sweep-$where" > "$OUT/sweep-$where.log" 2>&1
    echo "sweep $where: $(( $(date +%s) - start )) s wall" | tee -a "$OUT/sweep.log"
  done
  "$H" compare "$OUT/sweep-local" "$OUT/sweep-cluster" | tee -a "$OUT/sweep.log"
  exit 0
fi
CONFIG=${CONFIG:-$OUT/stream-layout.json}
[ -e "$CONFIG" ] || "$PY" -c "
from harness.runtime import IOConfig
print(IOConfig(codec='blosc-lz4-shuffle-3', sharding='rows-64x1024', indices='minimal').to_json())" > "$CONFIG"
SRC=$("$PY" -c "from harness.measure.datasets import resolve; print(resolve('$DATASET'))")
echo "source: $SRC ($(du -h "$SRC" | cut -f1))" | tee "$OUT/convert.log"
rm -rf "$SCRATCH/harness.zarr"
if [ "${CONVERT:-1}" = 1 ]; then
  "$H" convert "$SRC" "$SCRATCH/harness.zarr" --config "$CONFIG" --cluster "local:$WORKERS" --results "$OUT" \
    2>&1 | tee -a "$OUT/convert.log"
  echo "files: $(find "$SCRATCH/harness.zarr" -type f | wc -l)" | tee -a "$OUT/convert.log"
fi
rm -rf "$SCRATCH/harness.zarr"
[ "$ANNDATA" = 1 ] || exit 0
rm -rf "$SCRATCH/anndata.zarr"
/usr/bin/time -v timeout "${ANNDATA_TIMEOUT:-2400}" "$PY" - "$SRC" "$SCRATCH/anndata.zarr" > "$OUT/anndata.log" 2>&1 <<'EOF' || true
import sys, time
import anndata as ad
src, dst = sys.argv[1:]
t0 = time.perf_counter()
lazy = ad.experimental.read_lazy(src)
# anndata 0.13 cannot write a lazy Dataset2D ("Writing AnnData objects with a Dataset2D not supported yet"):
# obs and var come into memory (1m x 5 columns, small). obsm too, as `harness convert` holds it: anndata writes
# a dask obsm array one 1,000-row chunk at a time into its auto shards (750,000 x 48 for X_pca), each write a
# read-modify-write of a 144 MB shard; on 1m-deep it had not finished X_pca after 8 min. X and layers stay dask.
lazy.obs, lazy.var = lazy.obs.to_memory(), lazy.var.to_memory()
lazy.obsm = {k: v.compute() for k, v in lazy.obsm.items()}
lazy.write_zarr(dst)
seconds = time.perf_counter() - t0
print(f"anndata read_lazy -> write_zarr: {lazy.n_obs:,} cells in {seconds:.1f} s ({lazy.n_obs / seconds:,.0f} cells/s)")
EOF
grep -E "cells/s|Maximum resident|Elapsed|Error|error" "$OUT/anndata.log" | tee -a "$OUT/convert.log"
echo "anndata files: $(find "$SCRATCH/anndata.zarr" -type f 2>/dev/null | wc -l)" | tee -a "$OUT/convert.log"
rm -rf "$SCRATCH/anndata.zarr"
