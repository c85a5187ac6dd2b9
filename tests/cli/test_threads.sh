# The same bits on any number of threads: whole training runs (model bytes and every log record but
# timings) at 1, 2 and 3 OpenMP threads are identical for several presets, norm kinds and settings
# that reach every kernel (gradient accumulation, diagnostics records, evaluation); so is a run
# whose thread count follows the machine's load (--adapt-threads, the default) beside a busy
# process, which may change its thread count between steps. This is what lets lnlab use fewer
# threads on a shared machine without changing a result (docs/PERFORMANCE.md, "Waiting threads").
. "$(dirname "$0")/lib.sh"

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 || { fail prepare_kjv "prepare failed"; finish; }

# NAME FLAGS...: the run at 1 thread against 2 and 3 threads (adaptation off)
same_on_threads() {
  local name=$1; shift
  local A=(--data "$TMP/kjv" --steps 12 --warmup 2 --eval-every 6 --eval-batches 2 --diag-every 4 --seed 5 --quiet
           --adapt-threads=false "$@")
  for t in 1 2 3; do
    if ! OMP_NUM_THREADS=$t "$LNLAB" train "${A[@]}" --out "$TMP/$name-$t" 2>"$TMP/err"; then
      fail "$name" "train at $t threads: $(cat "$TMP/err")"; return; fi
  done
  records "$TMP/$name-1/log.jsonl" >"$TMP/a.txt"
  for t in 2 3; do
    if ! same_model "$TMP/$name-1/model.safetensors" "$TMP/$name-$t/model.safetensors"; then
      fail "$name" "model bytes differ between 1 and $t threads"; return; fi
    records "$TMP/$name-$t/log.jsonl" >"$TMP/b.txt"
    if ! cmp -s "$TMP/a.txt" "$TMP/b.txt"; then
      fail "$name" "log records differ between 1 and $t threads: $(diff "$TMP/a.txt" "$TMP/b.txt" | head -n 4)"; return; fi
    if ! grep -q "\"threads\": $t[,}]" "$TMP/$name-$t/log.jsonl"; then
      fail "$name" "the step records do not say $t threads"; return; fi
  done
  ok "$name"
}

# widths and sequence lengths that split products, rows and heads unevenly between threads
same_on_threads pre_wide --preset pre --layers 2 --heads 6 --dim 384 --seq 96 --batch 3
same_on_threads post_rmsnorm --preset post --norm rmsnorm --layers 3 --heads 3 --dim 96 --seq 50 --batch 5
same_on_threads peri_accum --preset peri --dt 0.5 --layers 2 --heads 2 --dim 64 --seq 64 --batch 4 --total-batch 512
same_on_threads b2t_high_lr --preset b2t --layers 2 --heads 4 --dim 128 --seq 64 --batch 8 --lr 0.05
same_on_threads deepnorm --preset deepnorm --layers 3 --heads 2 --dim 80 --seq 40 --batch 6
same_on_threads hybrid_qkv --preset hybrid --layers 4 --heads 4 --dim 64 --seq 32 --batch 8
same_on_threads derf_qkv --preset hybrid --norm derf --norm-gain one-plus --layers 2 --heads 4 --dim 128 --seq 64 --batch 8
# the bf16 products (one workspace per thread) where this CPU has them
if LNLAB_BF16=1 "$LNLAB" train --data "$TMP/kjv" --layers 1 --heads 1 --dim 16 --seq 8 --batch 1 --steps 1 --quiet \
     --out "$TMP/bf16-probe" 2>&1 | grep -q "no AVX512-BF16"; then
  echo "skip bf16: this CPU or build has no AVX512-BF16"
else
  LNLAB_BF16=1 same_on_threads bf16 --preset peri --layers 2 --heads 6 --dim 192 --seq 64 --batch 3
fi

# adaptation beside a busy process: whatever thread counts it used, the run equals the 1-thread run
A=(--data "$TMP/kjv" --preset pre --layers 4 --heads 4 --dim 64 --seq 64 --batch 16 --steps 300 --seed 9 --quiet)
OMP_NUM_THREADS=1 "$LNLAB" train "${A[@]}" --adapt-threads=false --out "$TMP/fixed" 2>"$TMP/err" ||
  { fail adapt_beside_busy "train: $(cat "$TMP/err")"; finish; }
( while :; do :; done ) &
spinner=$!
OMP_NUM_THREADS=2 "$LNLAB" train "${A[@]}" --out "$TMP/adapt" 2>"$TMP/err"
rc=$?
kill "$spinner"; wait "$spinner" 2>/dev/null
if [ $rc -ne 0 ]; then
  fail adapt_beside_busy "train: $(cat "$TMP/err")"
elif ! same_model "$TMP/fixed/model.safetensors" "$TMP/adapt/model.safetensors"; then
  fail adapt_beside_busy "the adaptive run's model differs from the 1-thread run's"
else
  records "$TMP/fixed/log.jsonl" >"$TMP/a.txt"; records "$TMP/adapt/log.jsonl" >"$TMP/b.txt"
  if cmp -s "$TMP/a.txt" "$TMP/b.txt"; then
    ok adapt_beside_busy
    # how many steps ran on how many threads (depends on this machine's cores and load: reported)
    echo "# adapt_beside_busy: steps per thread count: $(grep -o '"threads": [0-9]*' "$TMP/adapt/log.jsonl" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
  else
    fail adapt_beside_busy "log records differ: $(diff "$TMP/a.txt" "$TMP/b.txt" | head -n 4)"
  fi
fi
finish
