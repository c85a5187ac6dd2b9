#!/usr/bin/env bash
# make bench, "subnormals": a step at lr 1e-1 against the same step at lr 1e-3 on the study's
# shapes (depth 8, width 64 / seq 64 and width 128 / seq 128, batch 16, byte data, one thread), over
# whole `lnlab train` runs on data/kjv-byte, with subnormals kept (IEEE, the default) and flushed
# (LNLAB_DENORMALS=flush: FTZ and DAZ). Real data, because the bench's fixed random batch does not make the
# high-lr gradients that underflow. The runs of one repeat are interleaved; medians over repeats.
# Speed only. LNLAB_SUBN_STEPS (default 200) and LNLAB_SUBN_REPEAT (default 3) size it.
set -u
cd "$(dirname "$0")/.." || exit 1
LNLAB="${LNLAB_BIN:-./lnlab}"
DATA="${LNLAB_SUBN_DATA:-data/kjv-byte}"
STEPS="${LNLAB_SUBN_STEPS:-200}"
REPEAT="${LNLAB_SUBN_REPEAT:-3}"
if [ ! -f "$DATA/train.bin" ]; then
  echo "skip subnormals: no $DATA (./lnlab prepare --corpus kjv --tokenizer byte --out $DATA)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# mean ms per step of a run's log.jsonl, step 1 (first touch of the buffers) left out; and the
# same over steps 2..51
run_ms() {
  awk -v lim="$2" '/"ms":/ { n++; if (n == 1) next; if (lim && n > lim + 1) exit;
       s += substr($0, index($0, "\"ms\": ") + 6) + 0; k++ } END { printf "%.2f", s / k }' "$1"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

status=0
echo "lnlab train, $STEPS steps, one thread, median of $REPEAT interleaved repeats; ms per step over the run (steps 2-$STEPS) and over steps 2-51"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in "s64 64 64" "s128 128 128"; do
  read -r name C T <<<"$shape"
  declare -A all=() first=()
  for _ in $(seq 1 "$REPEAT"); do
    for mode in keep flush; do
      for lr in 1e-1 1e-3; do
        out="$tmp/$name-$mode-$lr"
        if ! LNLAB_DENORMALS=$mode OMP_NUM_THREADS=1 "$LNLAB" train --data "$DATA" --out "$out" --overwrite \
            --layers 8 --dim "$C" --heads 4 --seq "$T" --batch 16 --steps "$STEPS" --lr "$lr" \
            --quiet --adapt-threads=false >"$tmp/train.out" 2>&1; then
          echo "FAIL subnormals: lnlab train ($name, $mode, lr $lr) failed:"; tail -5 "$tmp/train.out"
          status=1
          continue
        fi
        all[$mode-$lr]+=" $(run_ms "$out/log.jsonl" 0)"
        first[$mode-$lr]+=" $(run_ms "$out/log.jsonl" 50)"
      done
    done
  done
  for mode in keep flush; do
    hi=$(echo "${all[$mode-1e-1]:-}" | median); lo=$(echo "${all[$mode-1e-3]:-}" | median)
    hi50=$(echo "${first[$mode-1e-1]:-}" | median); lo50=$(echo "${first[$mode-1e-3]:-}" | median)
    if [ -z "$hi" ] || [ -z "$lo" ]; then continue; fi
    awk -v n="$name" -v m="$mode" -v hi="$hi" -v lo="$lo" -v hi50="$hi50" -v lo50="$lo50" 'BEGIN {
      printf "%-5s subnormals %-5s  lr 1e-1 %7.2f ms  lr 1e-3 %7.2f ms  ratio %.3f   (steps 2-51: %.2f / %.2f ms, ratio %.3f)\n",
             n, (m == "flush" ? "flush" : "kept"), hi, lo, hi / lo, hi50, lo50, hi50 / lo50 }'
  done
  unset all first
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
