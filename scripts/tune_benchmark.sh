#!/usr/bin/env bash
# The measurements behind the tune section of the README (issue 16), from a clean clone, nothing else
# running: the main command on both built-in datasets, a balanced tune of 100k at the default budget, and
# --validate-search on 10k (full validation space) and 100k (fused and zarrs only, to bound the grid).
# Outputs under results/tune-benchmark/; each tune's summary.md says what was decided and why.
set -euo pipefail
OUT=${OUT:-results/tune-benchmark}
H=${HARNESS:-.venv/bin/harness}
mkdir -p "$OUT"
for ds in pbmc68k pbmc3k; do
  /usr/bin/time -v "$H" tune --dataset "$ds" --no-progress --out "$OUT/$ds" > "$OUT/$ds.log" 2>&1
done
"$H" datasets make 10k >/dev/null
"$H" datasets make 100k >/dev/null
/usr/bin/time -v "$H" tune --dataset 100k --no-progress --out "$OUT/100k" > "$OUT/100k.log" 2>&1
"$H" tune --dataset 10k --validate-search --no-progress --out "$OUT/validate-10k" > "$OUT/validate-10k.log" 2>&1
"$H" tune --dataset 100k --validate-search --pipelines fused,zarrs --no-progress --out "$OUT/validate-100k" \
  > "$OUT/validate-100k.log" 2>&1
