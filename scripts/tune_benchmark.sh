#!/usr/bin/env bash
# The measurements behind the tune section of the README (issue 16), from a clean clone, nothing else
# running. PARTS picks them (default: all but validate-100k-full, in this order):
#   main                 the main command's tune on both built-in datasets (pbmc68k, pbmc3k)
#   100k                 a balanced tune of 100k at the default budget (about 13 min here on 2026-12-05
#                        with four finalists, 18 with six)
#   validate-10k         --validate-search on 10k (the small space, 20 points with the defaults)
#   validate-100k        --validate-search on 100k (the small space)
#   validate-10k-full    --validate-search full on 10k (the tune's own space: 15 min here on 2026-12-05)
#   validate-100k-full   --validate-search full on 100k: the grid over the tune's own space (47 points with the
#                        defaults, 5 rounds: 1 h 34 min here on 2026-12-05), then the tune (about 13 min)
# Outputs under results/tune-benchmark/; each tune's summary.md says what was decided and why, each validation's
# log its distance, cost share and rank correlation.
set -euo pipefail
OUT=${OUT:-results/tune-benchmark}
H=${HARNESS:-.venv/bin/harness}
PARTS=${PARTS:-main 100k validate-10k validate-100k}
mkdir -p "$OUT"
for part in $PARTS; do
  start=$(date +%s)
  case "$part" in
    main)
      for ds in pbmc68k pbmc3k; do
        /usr/bin/time -v "$H" tune --dataset "$ds" --no-progress --out "$OUT/$ds" > "$OUT/$ds.log" 2>&1
      done ;;
    100k)
      "$H" datasets make 100k > /dev/null
      /usr/bin/time -v "$H" tune --dataset 100k --no-progress --out "$OUT/100k" > "$OUT/100k.log" 2>&1 ;;
    validate-10k | validate-100k | validate-10k-full | validate-100k-full)
      ds=${part#validate-}; ds=${ds%-full}
      grid=(); [ "${part%-full}" = "$part" ] || grid=(full)
      "$H" datasets make "$ds" > /dev/null
      "$H" tune --dataset "$ds" --validate-search "${grid[@]}" --no-progress --out "$OUT/$part" > "$OUT/$part.log" 2>&1 ;;
    *) echo "tune_benchmark.sh: unknown part '$part'; valid: main 100k validate-10k validate-100k validate-10k-full validate-100k-full" >&2
       exit 2 ;;
  esac
  echo "$part: $(( $(date +%s) - start )) s" | tee -a "$OUT/parts.log"
done
