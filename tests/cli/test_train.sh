# lnlab train: a small model overfits one batch, every preset learns on the KJV data, runs
# repeat exactly for a seed, batches follow the data seed (not --seed) or llm.c's order,
# divergence ends cleanly, and bad flags are one-line errors.
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

# 1. Overfit one batch: in llm.c's order (--data-order sequential) a data file holding exactly
#    one batch (B*T+1 tokens) makes every step see the same batch.
head -c 129 /usr/share/common-licenses/GPL-3 > "$TMP/one.txt"
"$LNLAB" prepare --input "$TMP/one.txt" --tokenizer byte --val-fraction 0.01 --out "$TMP/one" >/dev/null 2>&1
ntrain=$($PY -c 'import json; print(json.load(open("'"$TMP/one/meta.json"'"))["train_tokens"])' 2>/dev/null)
if "$LNLAB" train --data "$TMP/one/train.bin" --vocab 257 --out "$TMP/overfit" --preset pre --layers 2 --heads 2 \
     --dim 32 --seq 32 --batch 4 --steps 300 --lr 1e-2 --warmup 10 --schedule constant --weight-decay 0 \
     --data-order sequential --quiet; then
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
  records "$TMP/rep$i/log.jsonl" > "$TMP/rep$i.txt"
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

# 5b. Data order. Random batches are a function of --data-seed, the step and the micro-batch, not
#     of --seed: from the same initial model, runs that differ only in --seed log the same numbers
#     (a paired comparison), another data seed gives other batches. In llm.c's order step 1 is the
#     split's first batch (probe's batch), and the state's data.pos is B*T tokens per step.
steps_txt() { records "$1/log.jsonl"; }  # the records of RUN/log.jsonl without timings
C=(--data "$TMP/kjv" --init-from "$TMP/rep1/model.safetensors" --seq 32 --batch 4 --steps 3 --quiet)
"$LNLAB" train "${C[@]}" --seed 1 --out "$TMP/ds1" && "$LNLAB" train "${C[@]}" --seed 2 --out "$TMP/ds2" &&
  "$LNLAB" train "${C[@]}" --seed 1 --data-seed 9 --out "$TMP/ds3" &&
  "$LNLAB" train "${C[@]}" --data-order sequential --stop-after 1 --out "$TMP/dq" 2>/dev/null &&
  "$LNLAB" train "${C[@]}" --data-order sequential --out "$TMP/dq2" ||
  fail data_order_runs "a run failed"
if [ -s "$TMP/ds1/log.jsonl" ] && cmp -s <(steps_txt "$TMP/ds1") <(steps_txt "$TMP/ds2"); then ok data_seed_not_init_seed
else fail data_seed_not_init_seed "runs with --seed 1 and 2 from one model differ: $(diff <(steps_txt "$TMP/ds1") <(steps_txt "$TMP/ds2") | head -3)"; fi
l1=$(json_field "$TMP/ds1/log.jsonl" 1 loss); l3=$(json_field "$TMP/ds3/log.jsonl" 1 loss)
lq=$(json_field "$TMP/dq2/log.jsonl" 1 loss)
pl=$("$LNLAB" probe --model "$TMP/rep1/model.safetensors" --data "$TMP/kjv" --batch 4 --seq 32 --json 2>/dev/null |
     $PY -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
if [ -n "$l1" ] && [ -n "$l3" ] && [ "$l1" != "$l3" ] && [ "$l1" != "$lq" ]; then ok data_seed_changes_batches
else fail data_seed_changes_batches "step-1 losses: data seed 0 $l1, data seed 9 $l3, sequential $lq"; fi
if $PY -c "import sys; sys.exit(0 if abs(float('$lq') - float('$pl')) <= 2e-6 else 1)" 2>/dev/null; then
  ok sequential_first_batch
else fail sequential_first_batch "step-1 loss in sequential order $lq, probe's loss of the first batch $pl"; fi
if why=$($PY - "$TMP" 2>&1 <<'EOF'
import json, struct, sys
t = sys.argv[1]
def state(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    pos = h["data.pos"]["data_offsets"][0]
    return h["__metadata__"], struct.unpack("<Q", b[8 + n + pos:8 + n + pos + 8])[0]
cfg = lambda r: json.load(open(t + "/" + r + "/config.json"))["train"]
assert cfg("ds1")["data_order"] == "random" and cfg("ds1")["data_seed"] == 0, cfg("ds1")
assert cfg("ds3")["data_seed"] == 9 and cfg("dq")["data_order"] == "sequential", (cfg("ds3"), cfg("dq"))
meta, pos = state(t + "/dq/checkpoints/state_00000001.safetensors")
assert meta["version"] == "3" and meta["data.order"] == "sequential" and meta["data.seed"] == "0", meta
assert pos == 4 * 32, pos
EOF
); then ok data_order_recorded; else fail data_order_recorded "$(printf '%s' "$why" | tail -n 2)"; fi

# 5c. Init, biases and embedding: each preset's defaults (docs/PLACEMENTS.md) and the flags that
#     change them, as RUN/config.json records them; --init-std 1/sqrt(C) is resolved at the width.
model_cfg() {  # RUN: preset, init std, std rule, resid scale, biases of every sub-layer, embed norm, scale
  $PY -c 'import json,sys
m = json.load(open(sys.argv[1] + "/config.json"))["model"]
b = {l[s]["bias"] for l in m["layers"] for s in ("attn", "mlp")}
print(m["preset"], "%.6g" % m["init"]["std"], m["init"]["std_rule"], m["init"]["resid_scale"],
      b.pop() if len(b) == 1 else "mixed", m["embed_norm"], m["embed_scale"])' "$1"
}
FLAGSRUN=(--data "$TMP/kjv" --layers 2 --heads 2 --dim 16 --seq 16 --batch 2 --steps 1 --eval-batches 1 --quiet)
check_cfg() {  # NAME WANT flags...
  local name=$1 want=$2; shift 2
  rm -rf "$TMP/cfg"
  if ! "$LNLAB" train "${FLAGSRUN[@]}" --out "$TMP/cfg" "$@" 2>"$TMP/err"; then fail "$name" "train failed: $(cat "$TMP/err")"; return; fi
  local got; got=$(model_cfg "$TMP/cfg")
  [ "$got" = "$want" ] && ok "$name" || fail "$name" "config.json says '$got', want '$want'"
}
check_cfg defaults_post "post 0.25 1/sqrt(C) False True False True" --preset post
check_cfg defaults_b2t "b2t 0.25 1/sqrt(C) False True False True" --preset b2t
check_cfg defaults_pre "pre 0.02 fixed True True False False" --preset pre
check_cfg defaults_peri "peri 0.02 fixed False True True False" --preset peri
check_cfg defaults_mix "mix 0.02 fixed False False False False" --preset mix
check_cfg flags_off "peri 0.25 1/sqrt(C) True False False True" --preset peri --init-std '1/sqrt(C)' \
  --resid-scale-init on --bias off --embed-norm=false --embed-scale
check_cfg flags_post_gpt2 "post 0.05 fixed True True False False" --preset post --init-std 0.05 --resid-scale-init on \
  --embed-scale=false
check_cfg flags_spec_bias "custom 0.02 fixed True mixed False False" --preset pre --spec attn.bias=0@2
rm -rf "$TMP/cfg"
"$LNLAB" train "${FLAGSRUN[@]}" --out "$TMP/cfg" --preset pre --bias off 2>"$TMP/err"
if $PY - "$TMP/cfg/model.safetensors" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
names = [k for k in h if k != "__metadata__"]
assert not [k for k in names if k.endswith(("c_attn.bias", "c_proj.bias", "c_fc.bias"))], names
assert "h.0.ln_1.bias" in names and "h.1.mlp.c_fc.weight" in names, names
PY
then ok bias_off_no_tensors; else fail bias_off_no_tensors "bias tensors in the model file: $(cat "$TMP/err")"; fi
# the model reloads, trains on and evaluates
if "$LNLAB" train --data "$TMP/kjv" --out "$TMP/cfg2" --init-from "$TMP/cfg/model.safetensors" --seq 16 --batch 2 \
     --steps 1 --quiet && "$LNLAB" eval --model "$TMP/cfg/model.safetensors" --data "$TMP/kjv" --batch 2 --seq 16 \
     >"$TMP/e1" 2>/dev/null; then ok bias_off_reloads; else fail bias_off_reloads "init-from or eval failed"; fi
# a new --preset on a loaded model keeps the file's biases and embedding norm (lns's defaults
# have neither; the file has both), and says what changed
"$LNLAB" train "${FLAGSRUN[@]}" --out "$TMP/cfg3" --preset pre --embed-norm 2>/dev/null
if "$LNLAB" eval --model "$TMP/cfg3/model.safetensors" --data "$TMP/kjv" --batch 2 --seq 16 --preset lns \
     >/dev/null 2>"$TMP/note" && grep -q "overrides the file's config: preset pre -> lns$" "$TMP/note"; then
  ok loaded_preset_keeps_file_tensors
else fail loaded_preset_keeps_file_tensors "$(cat "$TMP/note")"; fi
expect_error init_std_word 2 "^lnlab: error: --init-std: expected a number in \(0, 10\] or 1/sqrt\(C\), got 'big'$" -- \
  "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --init-std big
expect_error init_std_zero 2 "--init-std: expected a number in \(0, 10\] or 1/sqrt\(C\), got '0'" -- \
  "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --init-std 0
expect_error init_std_rule 2 "--init-std: .*got '1/sqrt\(L\)'" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" \
  --init-std '1/sqrt(L)'
expect_error bias_word 2 "--bias: 'no' is not one of on\|off" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --bias no
expect_error resid_word 2 "--resid-scale-init: 'yes' is not one of on\|off" -- "$LNLAB" train --data "$TMP/kjv" \
  --out "$TMP/x" --resid-scale-init yes
expect_error embed_norm_word 2 "--embed-norm: expected true or false, got 'maybe'" -- "$LNLAB" train --data "$TMP/kjv" \
  --out "$TMP/x" --embed-norm=maybe
[ -e "$TMP/x" ] && fail init_flags_write_nothing "$TMP/x was created" || ok init_flags_write_nothing

# 5d. The z-loss (a training setting) and the final logit softcap (a model field). --z-loss 0 is the
#     run without the flag, number for number; with a coefficient every step record adds z_loss
#     (coef * mean (log Z)^2: at init, logits near 0, log Z is about log V) while loss stays the
#     cross-entropy (step 1 is the same model on the same batch); the gradient flows (another model).
#     The softcap is recorded in the model's config, reloads (eval, sample's KV-cache decoding) and
#     can be overridden on a loaded model like any model flag.
Z=(--data "$TMP/kjv" --preset pre --layers 2 --heads 2 --dim 16 --seq 16 --batch 2 --steps 4 --eval-every 4
   --eval-batches 1 --quiet)
"$LNLAB" train "${Z[@]}" --out "$TMP/zl_none" && "$LNLAB" train "${Z[@]}" --z-loss 0 --out "$TMP/zl_0" &&
  "$LNLAB" train "${Z[@]}" --z-loss 0.01 --out "$TMP/zl_on" &&
  "$LNLAB" train "${Z[@]}" --logit-softcap 0.5 --out "$TMP/cap" || fail zloss_softcap_runs "a run failed"
if cmp -s <(records "$TMP/zl_none/log.jsonl") <(records "$TMP/zl_0/log.jsonl") &&
   same_model "$TMP/zl_none/model.safetensors" "$TMP/zl_0/model.safetensors" &&
   ! grep -q z_loss "$TMP/zl_none/log.jsonl"; then ok zloss_zero_is_off
else fail zloss_zero_is_off "--z-loss 0 differs from the run without it"; fi
if why=$($PY - "$TMP" 2>&1 <<'EOF'
import json, math, sys
t = sys.argv[1]
steps = lambda r: [x for x in map(json.loads, open(t + "/" + r + "/log.jsonl")) if "loss" in x]
on, off = steps("zl_on"), steps("zl_none")
assert json.load(open(t + "/zl_on/config.json"))["train"]["z_loss"] == 0.01
assert json.load(open(t + "/zl_none/config.json"))["train"]["z_loss"] == 0
assert len(on) == 4 and all(r["z_loss"] > 0 for r in on), on
assert on[0]["loss"] == off[0]["loss"], (on[0], off[0])
assert abs(on[0]["z_loss"] / 0.01 - math.log(257) ** 2) < 0.5, on[0]
assert on[-1]["loss"] != off[-1]["loss"], "the z-loss changed no update"
EOF
); then ok zloss_records; else fail zloss_records "$(printf '%s' "$why" | tail -n 2)"; fi
if [ "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["logit_softcap"])' "$TMP/cap/config.json")" = 0.5 ] &&
   "$LNLAB" eval --model "$TMP/cap/model.safetensors" --data "$TMP/kjv" --batch 2 --seq 16 --batches 2 >/dev/null 2>"$TMP/note" &&
   [ ! -s "$TMP/note" ] &&
   "$LNLAB" eval --model "$TMP/cap/model.safetensors" --data "$TMP/kjv" --batch 2 --seq 16 --batches 2 \
     --logit-softcap 0 >/dev/null 2>"$TMP/note" && grep -q "overrides the file's config: logit_softcap 0.5 -> 0$" "$TMP/note" &&
   "$LNLAB" sample --model "$TMP/cap/model.safetensors" --tokens 8 --seed 3 >/dev/null 2>&1; then
  ok softcap_recorded_and_reloads
else fail softcap_recorded_and_reloads "$(cat "$TMP/note")"; fi
expect_error zloss_range 2 "^lnlab: error: --z-loss: 2 is out of range" -- "$LNLAB" train --data "$TMP/kjv" \
  --out "$TMP/x" --z-loss 2
expect_error softcap_negative 2 "^lnlab: error: --logit-softcap: -1 is out of range" -- "$LNLAB" train \
  --data "$TMP/kjv" --out "$TMP/x" --logit-softcap -1
[ -e "$TMP/x" ] && fail zloss_flags_write_nothing "$TMP/x was created" || ok zloss_flags_write_nothing

# 5e. --precision: bf16 products (fp32 accumulation and master weights) recorded in config.json,
#     near the fp32 run but not equal to it, the same as LNLAB_BF16=1, and kept by a resume even
#     when the environment says otherwise; fp32 is recorded when neither asks for bf16.
if LNLAB_BF16=1 "$LNLAB" train "${Z[@]}" --steps 1 --out "$TMP/bf16-probe" 2>&1 | grep -q "no AVX512-BF16"; then
  echo "skip precision_bf16: this CPU or build has no AVX512-BF16"
  expect_error precision_bf16_unavailable 2 "^lnlab: error: --precision bf16: this CPU or build has no AVX512-BF16" -- \
    "$LNLAB" train "${Z[@]}" --precision bf16 --out "$TMP/x"
else
  "$LNLAB" train "${Z[@]}" --precision bf16 --out "$TMP/pb" && LNLAB_BF16=1 "$LNLAB" train "${Z[@]}" --out "$TMP/pe" &&
    "$LNLAB" train "${Z[@]}" --precision bf16 --stop-after 2 --out "$TMP/pr" >/dev/null 2>&1
  LNLAB_BF16=0 "$LNLAB" train --resume "$TMP/pr" --quiet || fail precision_resume "the resume failed"
  if why=$($PY - "$TMP" 2>&1 <<'PYEOF'
import json, sys
t = sys.argv[1]
prec = lambda r: json.load(open(t + "/" + r + "/config.json"))["train"]["precision"]
steps = lambda r: [x["loss"] for x in map(json.loads, open(t + "/" + r + "/log.jsonl")) if "loss" in x]
assert (prec("pb"), prec("pe"), prec("pr"), prec("zl_none")) == ("bf16", "bf16", "bf16", "fp32")
b, e, r, f = steps("pb"), steps("pe"), steps("pr"), steps("zl_none")
assert b == e == r, (b, e, r)
assert b != f and all(abs(x - y) < 0.05 for x, y in zip(b, f)), (b, f)
PYEOF
  ); then ok precision_bf16_recorded_and_resumed; else fail precision_bf16_recorded_and_resumed "$(printf '%s' "$why" | tail -n 2)"; fi
fi

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
expect_error bad_data_order 2 "--data-order: 'shuffled' is not one of random\|sequential" -- "$LNLAB" train \
  --data "$TMP/kjv" --out "$TMP/x" --data-order shuffled
expect_error bad_data_seed 2 "--data-seed" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --data-seed -1
expect_error vocab_too_small 1 "token" -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --vocab 100 --quiet
# the progress line (not a terminal: every few steps and the last) has the newest val loss and its
# step, the step's milliseconds beside tokens/s, and the MFU against the peak measured at the start
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/prog" --layers 1 --heads 2 --dim 16 --seq 16 --batch 2 --steps 6 \
  --eval-every 3 --eval-batches 1 2>"$TMP/prog.err" >/dev/null
if grep -Eq '^step 6/6 \| loss [0-9.]+ \| val [0-9.]+ \(step 6\) \| lr .* \| [0-9.]+ ms \| [0-9]+ tok/s \| MFU [0-9.]+% \| ETA' "$TMP/prog.err" &&
   [ "$(grep -Ec '^lnlab train: peak [0-9]+ GFLOP/s \(SGEMM 1024\^3 on 1 thread, measured at start\)$' "$TMP/prog.err")" = 1 ]
then ok progress_line_val_and_ms; else fail progress_line_val_and_ms "$(tail -n 3 "$TMP/prog.err")"; fi
# MFU = this process's model FLOPs per step (B*T per micro-batch, times the accumulation) / the
# step's time / the peak: recomputed from the printed peak and ms (their rounding allows 5%; no upper
# bound: on a busy machine the peak measured at the start can be low)
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/mfu" --layers 2 --heads 2 --dim 64 --seq 64 --batch 4 --total-batch 512 \
  --steps 6 2>"$TMP/mfu.err" >/dev/null
if why=$($PY - "$TMP/mfu.err" 2>&1 <<'EOF'
import re, sys
err = open(sys.argv[1]).read()
peak = float(re.search(r"^lnlab train: peak ([0-9]+) GFLOP/s", err, re.M).group(1)) * 1e9
L, C, T, V, B, accum = 2, 64, 64, 257, 4, 2
flops = B * T * accum * (6 * (12 * L * C * C + V * C) + 6 * L * C * (T + 1))
lines = re.findall(r"^step (\d+)/6 .*\| ([0-9.]+) ms \| [0-9]+ tok/s \| MFU ([0-9.]+)% \|", err, re.M)
assert [int(s) for s, _, _ in lines] == list(range(1, 7)), lines
for s, ms, mfu in lines:
    want = 100 * flops / (float(ms) / 1000) / peak
    assert float(mfu) > 0 and abs(float(mfu) - want) <= 0.05 * want + 0.1, (s, ms, mfu, want)
EOF
); then ok progress_line_mfu; else fail progress_line_mfu "$(printf '%s' "$why" | tail -n 1)"; fi
# --sample-every: rank 0 prints a sample every K steps (with --quiet too, which measures no peak),
# decoded by the data's tokenizer (byte), control bytes other than newline and tab made visible;
# the run's log and model are those of the run without samples, and samples repeat for a seed
S=(--data "$TMP/kjv" --preset branchnorm --layers 2 --heads 2 --dim 32 --seq 32 --batch 4 --steps 10 --eval-every 5
   --eval-batches 2 --quiet)
"$LNLAB" train "${S[@]}" --out "$TMP/nosmp" 2>"$TMP/nosmp.err"
"$LNLAB" train "${S[@]}" --out "$TMP/smp1" --sample-every 3 --sample-tokens 16 2>"$TMP/smp1.err"
"$LNLAB" train "${S[@]}" --out "$TMP/smp2" --sample-every 3 --sample-tokens 16 2>"$TMP/smp2.err"
if [ ! -s "$TMP/nosmp.err" ] && [ "$(grep '^sample at step' "$TMP/smp1.err" | tr '\n' ' ')" = \
     "sample at step 3: sample at step 6: sample at step 9: " ] && ! grep -q 'peak\|^step' "$TMP/smp1.err" &&
   ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$TMP/smp1.err" && [ "$(wc -l < "$TMP/smp1.err")" -ge 6 ]; then
  ok sample_every_count; else fail sample_every_count "$(head -c 600 "$TMP/smp1.err")"; fi
if cmp -s <(records "$TMP/nosmp/log.jsonl") <(records "$TMP/smp1/log.jsonl") &&
   same_model "$TMP/nosmp/model.safetensors" "$TMP/smp1/model.safetensors"; then ok sample_every_same_run
else fail sample_every_same_run "a run with --sample-every differs from the run without"; fi
cmp -s "$TMP/smp1.err" "$TMP/smp2.err" && ok sample_every_repeats || fail sample_every_repeats "samples differ for one seed"
# a console setting: not stored in config.json, and given to a resumed run
"$LNLAB" train "${S[@]}" --out "$TMP/smpr" --stop-after 4 2>/dev/null
"$LNLAB" train --resume "$TMP/smpr" --sample-every 3 --sample-tokens 16 --quiet 2>"$TMP/smpr.err"
if [ "$(grep '^sample at step' "$TMP/smpr.err" | tr '\n' ' ')" = "sample at step 6: sample at step 9: " ] &&
   ! grep -q sample "$TMP/smp1/config.json" && same_model "$TMP/nosmp/model.safetensors" "$TMP/smpr/model.safetensors"
then ok sample_every_resume; else fail sample_every_resume "$(head -c 400 "$TMP/smpr.err")"; fi
# without meta.json the tokenizer is the one of the model's vocabulary, if any
mkdir -p "$TMP/nometa" && cp "$TMP/kjv/train.bin" "$TMP/nometa/train.bin"
"$LNLAB" train --data "$TMP/nometa/train.bin" --vocab 257 --out "$TMP/nometa_run" --layers 1 --heads 2 --dim 16 \
  --seq 16 --batch 2 --steps 2 --sample-every 2 --sample-tokens 4 --quiet 2>"$TMP/nometa.err" &&
  [ "$(grep -c '^sample at step 2:$' "$TMP/nometa.err")" = 1 ] && ok sample_by_vocab ||
  fail sample_by_vocab "$(cat "$TMP/nometa.err")"
expect_error sample_no_tokenizer 1 "^lnlab: error: --sample-every: .*/nometa/train.bin has no meta.json naming its tokenizer, and the model's vocabulary of 300 tokens" -- \
  "$LNLAB" train --data "$TMP/nometa/train.bin" --vocab 300 --out "$TMP/x" --sample-every 5 --quiet
expect_error sample_every_negative 2 "^lnlab: error: --sample-every: -1 is out of range" -- "$LNLAB" train \
  --data "$TMP/kjv" --out "$TMP/x" --sample-every -1
expect_error sample_tokens_zero 2 "^lnlab: error: --sample-tokens: 0 is out of range" -- "$LNLAB" train \
  --data "$TMP/kjv" --out "$TMP/x" --sample-every 5 --sample-tokens 0
expect_error sample_tokens_too_many 2 "^lnlab: error: --sample-tokens: 32 tokens .* n_positions 32 \(at most 31\)$" -- \
  "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --seq 32 --sample-every 5 --sample-tokens 32 --quiet
[ -e "$TMP/x" ] && fail sample_flags_write_nothing "$TMP/x was created" || ok sample_flags_write_nothing
# A run that blows up: every record of its log is strict JSON (a NaN or infinite loss is null)
"$LNLAB" train --data "$TMP/kjv" --out "$TMP/blowup" --preset rezero --layers 4 --heads 4 --dim 64 --seq 64 --batch 8 \
  --steps 60 --lr 10 --grad-clip 0 --eval-every 1 --eval-batches 1 --diag-every 1 --quiet 2>/dev/null
if /usr/bin/python3 -c 'import json, sys
def refuse(x): raise ValueError("not JSON: " + x)
recs = [json.loads(l, parse_constant=refuse) for l in open(sys.argv[1])]
assert any(r.get("diverged") for r in recs), "the run did not diverge"
assert any(r.get("loss", 0) is None or r.get("val_loss", 0) is None for r in recs), "no non-finite loss reached the log"
' "$TMP/blowup/log.jsonl" 2>"$TMP/err"; then ok diverged_log_strict_json; else fail diverged_log_strict_json "$(tail -n 1 "$TMP/err")"; fi
finish
