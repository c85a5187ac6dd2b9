# lnlab train: a small model overfits one batch, every preset learns on the KJV data, runs
# repeat exactly for a seed, divergence ends cleanly, and bad flags are one-line errors.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1  # tiny models: threads only add synchronisation
PY=/usr/bin/python3

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 || { fail prepare_kjv "prepare failed"; finish; }

# json_field FILE STEP KEY: the value of KEY in the record of STEP that has it
json_field() {
  $PY -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("step") == int(sys.argv[2]) and sys.argv[3] in r: print(r[sys.argv[3]]); break' "$1" "$2" "$3"
}

# 1. Overfit one batch: a data file holding exactly one batch (B*T+1 tokens) makes every step
#    see the same batch.
head -c 129 /usr/share/common-licenses/GPL-3 > "$TMP/one.txt"
"$LNLAB" prepare --input "$TMP/one.txt" --tokenizer byte --val-fraction 0.01 --out "$TMP/one" >/dev/null 2>&1
ntrain=$($PY -c 'import json; print(json.load(open("'"$TMP/one/meta.json"'"))["train_tokens"])' 2>/dev/null)
if "$LNLAB" train --data "$TMP/one/train.bin" --vocab 257 --out "$TMP/overfit" --preset pre --layers 2 --heads 2 \
     --dim 32 --seq 32 --batch 4 --steps 300 --lr 1e-2 --warmup 10 --schedule constant --weight-decay 0 --quiet; then
  if grep -q val_loss "$TMP/overfit/log.jsonl"; then fail shard_has_no_val "a single shard was evaluated as val"
  else ok shard_has_no_val; fi
  loss=$(json_field "$TMP/overfit/log.jsonl" 300 loss)
  if $PY -c "import sys; sys.exit(0 if float('$loss') < 0.1 else 1)"; then ok overfit_one_batch
  else fail overfit_one_batch "loss after 300 steps on one batch is $loss (train tokens $ntrain), expected < 0.1"; fi
else fail overfit_one_batch "train exited non-zero"; fi

# 2. Every preset, 200 steps on KJV (byte tokenizer): validation loss goes down.
for p in post pre peri b2t mix lns hybrid 'hybrid*' deepnorm admin branchnorm rezero; do
  name="learns_${p/\*/star}"
  run="$TMP/run_${p/\*/star}"
  if ! "$LNLAB" train --data "$TMP/kjv" --out "$run" --preset "$p" --layers 4 --heads 2 --dim 32 --seq 32 \
        --batch 4 --steps 200 --lr 3e-3 --warmup 20 --eval-every 100 --eval-batches 8 --branchnorm-steps 100 \
        --quiet 2>"$TMP/err"; then
    fail "$name" "train failed: $(cat "$TMP/err")"; continue
  fi
  v0=$(json_field "$run/log.jsonl" 0 val_loss); v1=$(json_field "$run/log.jsonl" 200 val_loss)
  if $PY -c "import sys, math; a, b = float('$v0'), float('$v1'); sys.exit(0 if math.isfinite(b) and b < a - 1.0 else 1)"; then
    ok "$name"
  else fail "$name" "val loss $v0 -> $v1 after 200 steps, expected a drop of more than 1 nat"; fi
done

# 3. Same seed, same run: identical logs except timings.
for i in 1 2; do
  "$LNLAB" train --data "$TMP/kjv" --out "$TMP/rep$i" --preset peri --dt 0.1 --layers 2 --heads 2 --dim 32 --seq 32 \
    --batch 4 --steps 20 --eval-every 10 --eval-batches 2 --seed 7 --quiet
  $PY -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line); r.pop("ms", None); r.pop("tokens_per_s", None); print(json.dumps(r, sort_keys=True))' \
    "$TMP/rep$i/log.jsonl" > "$TMP/rep$i.txt"
done
if cmp -s "$TMP/rep1.txt" "$TMP/rep2.txt" && same_model "$TMP/rep1/model.safetensors" "$TMP/rep2/model.safetensors"; then
  ok repeatable_with_seed; else fail repeatable_with_seed "two runs with seed 7 differ"; fi
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/rep3" --preset peri --dt 0.1 --layers 2 --heads 2 --dim 32 --seq 32 \
  --batch 4 --steps 2 --seed 8 --quiet
if ! cmp -s "$TMP/rep1/model.safetensors" "$TMP/rep3/model.safetensors"; then ok seed_changes_init
else fail seed_changes_init "seed 8 gave the same model as seed 7"; fi

# 4. The run directory: config, log records, model that loads, gradient accumulation.
run="$TMP/rep1"
if $PY -c 'import json,sys
c = json.load(open(sys.argv[1] + "/config.json"))
assert c["model"]["preset"] == "peri" and abs(c["model"]["dt"] - 0.1) < 1e-6 and c["train"]["steps"] == 20
recs = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl")]
steps = [r for r in recs if "loss" in r]
assert [r["step"] for r in steps] == list(range(1, 21))
assert all(set(["step", "loss", "lr", "grad_norm", "tokens_per_s", "ms"]) <= set(r) for r in steps)
assert [r["step"] for r in recs if "val_loss" in r] == [0, 10, 20]' "$run"; then ok run_directory
else fail run_directory "config.json or log.jsonl malformed"; fi
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/accum" --layers 2 --heads 2 --dim 32 --seq 32 --batch 2 \
  --total-batch 256 --steps 3 --checkpoint-every 2 --quiet
if [ -f "$TMP/accum/checkpoints/model_00000002.safetensors" ] && [ -f "$TMP/accum/model.safetensors" ] &&
   $PY -c 'import json; c = json.load(open("'"$TMP/accum/config.json"'")); assert c["train"]["total_batch"] == 256'; then
  ok accumulation_and_checkpoints; else fail accumulation_and_checkpoints "missing checkpoint or config"; fi
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/cont" --init-from "$TMP/rep1/model.safetensors" --seq 32 --batch 4 \
  --steps 2 --quiet && ok init_from_model || fail init_from_model "could not continue from a saved model"

# 5. Divergence: a learning rate of 10 without clipping blows ReZero up; the run stops cleanly.
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/blow" --preset rezero --layers 2 --heads 2 --dim 32 --seq 32 \
  --batch 4 --steps 30 --lr 10 --grad-clip 0 --quiet 2>"$TMP/err"; rc=$?
if [ $rc -eq 3 ] && grep -q 'diverged at step' "$TMP/err" && grep -q '"diverged": true' "$TMP/blow/log.jsonl" &&
   [ ! -f "$TMP/blow/model.safetensors" ]; then ok divergence_stops
else fail divergence_stops "exit $rc, stderr: $(cat "$TMP/err")"; fi

# 6. Bad input.
expect_error no_data 2 "--data is required" -- "$LNLAB" train --out "$TMP/x"
expect_error missing_data 1 "nope" -- "$LNLAB" train --data "$TMP/nope" --out "$TMP/x" --quiet
expect_error bad_total_batch 2 "--total-batch: 100 is not a multiple" -- "$LNLAB" train --data "$TMP/kjv" \
  --out "$TMP/x" --seq 32 --batch 4 --total-batch 100
expect_error bad_heads 2 "multiple of n_head" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --dim 30 --heads 4
expect_error bad_preset 2 "--preset: 'sideways'" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --preset sideways
expect_error bad_lr 2 "--lr: expected a number" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --lr fast
expect_error seq_too_long 2 "--seq: 64 exceeds the model's n_positions 32" -- "$LNLAB" train --data "$TMP/kjv" \
  --out "$TMP/x" --init-from "$TMP/rep1/model.safetensors" --seq 64
expect_error vocab_too_small 1 "token" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --vocab 100 --quiet
finish
