# Crash-safe training: a run stopped and resumed equals an uninterrupted one bit for bit (model
# bytes and every log record but timings), in both data orders, also when resumed from another
# working directory than the one its relative paths were given in, SIGTERM/SIGINT save and exit
# 143/130, a stopped run writes RUN/result.json with status "stopped" (a resumed run that
# finishes replaces it), a full disk while checkpointing (injected) is a clean error that leaves
# earlier checkpoints usable, a corrupt newest checkpoint falls back to the previous one,
# --keep-checkpoints prunes, and the memory check refuses what cannot fit.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
PY=/usr/bin/python3

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 || { fail prepare_kjv "prepare failed"; finish; }

# Settings with every kind of loop state: evaluation, diagnostics records, the spike monitor's
# windows (a small window so that they fill and two steps are skipped), gradient accumulation, a warmup + cosine schedule.
A=(--data "$TMP/kjv" --preset peri --dt 0.1 --layers 2 --heads 2 --dim 32 --seq 32 --batch 2 --total-batch 128
   --steps 20 --warmup 3 --eval-every 5 --eval-batches 2 --diag-every 4 --zscore-window 4 --skip-spikes 0.5
   --seed 7 --quiet)

# same_run NAME DIR [FULL]: DIR equals the uninterrupted run FULL (default $TMP/full; model bytes
# and log records)
same_run() {
  local full=${3:-$TMP/full}
  if [ ! -f "$2/model.safetensors" ]; then fail "$1" "no model.safetensors in $2"; return; fi
  if ! same_model "$full/model.safetensors" "$2/model.safetensors"; then fail "$1" "final model bytes differ"; return; fi
  records "$full/log.jsonl" >"$TMP/a.txt"; records "$2/log.jsonl" >"$TMP/b.txt"
  if ! cmp -s "$TMP/a.txt" "$TMP/b.txt"; then fail "$1" "log differs: $(diff "$TMP/a.txt" "$TMP/b.txt" | head -4)"; return; fi
  ok "$1"
}
ckpt() { printf '%s/checkpoints/%s_%08d.safetensors' "$1" "$2" "$3"; }
# result_is NAME RUN PYTHON: runs PYTHON with `res` (RUN/result.json), `steps` (the step records
# of RUN/log.jsonl) and `full` (the uninterrupted run's result.json); an assertion failure is the
# test's failure, and so is a temporary file of the atomic write left in RUN.
result_is() {
  local name=$1 run=$2 why
  if ls -a "$run" | grep -q '^result\.json\.'; then fail "$name" "temporary file left: $(ls -a "$run" | tr '\n' ' ')"; return; fi
  why=$("$PY" - "$run" "$TMP/full" "$3" 2>&1 <<'EOF'
import json, os, sys
run, full_run = sys.argv[1], sys.argv[2]
res = json.load(open(os.path.join(run, "result.json")))
steps = [r for r in map(json.loads, open(os.path.join(run, "log.jsonl"))) if "loss" in r]
full = json.load(open(os.path.join(full_run, "result.json")))
assert res["format"] == "lnlab.result" and res["version"] == 3, res
# one run, one id: the same in config.json, the checkpoints' state files and result.json
assert res["run_id"] == json.load(open(os.path.join(run, "config.json")))["run_id"] and len(res["run_id"]) == 16, res
exec(sys.argv[3])
EOF
  ) && ok "$name" || fail "$name" "$(printf '%s' "$why" | tail -n 3)"
}
# stopped_result NAME RUN STEP PLANNED REASON: RUN stopped after STEP of PLANNED steps for REASON
# (SIGTERM, SIGINT or stop-after), and its result.json has the figures of its log at that step.
stopped_result() {
  result_is "$1" "$2" "
assert res['status'] == 'stopped' and res['stop_reason'] == '$5' and res['diverged'] is False, res
assert res['steps'] == steps[-1]['step'] == $3 and res['steps_planned'] == $4, (res, steps[-1])
assert res['diverged_step'] is None and res['cause'] is None, res
assert abs(res['final_loss'] - steps[-1]['loss']) < 1e-5, (res['final_loss'], steps[-1]['loss'])
assert abs(res['min_loss'] - min(r['loss'] for r in steps)) < 1e-5, res['min_loss']
assert res['skipped_steps'] == sum(1 for r in steps if r.get('skipped')), res
assert res['tokens_per_s'] > 0, res"
}

"$LNLAB" train "${A[@]}" --out "$TMP/full" || { fail full_run "the uninterrupted run failed"; finish; }

# 1. Stop after step 12 (checkpoints every 5, and one at the stop), resume, compare.
"$LNLAB" train "${A[@]}" --out "$TMP/r1" --checkpoint-every 5 --stop-after 12 2>"$TMP/err"; rc=$?
if [ $rc -eq 0 ] && grep -q 'stopped (--stop-after) after step 12 of 20' "$TMP/err" && [ -f "$(ckpt "$TMP/r1" state 12)" ] &&
   [ ! -f "$TMP/r1/model.safetensors" ] && [ "$(records "$TMP/r1/log.jsonl" | tail -1 | grep -c '"step": 12')" = 1 ]; then
  ok stop_after_saves
else fail stop_after_saves "exit $rc, $(cat "$TMP/err")"; fi
stopped_result stop_after_result_json "$TMP/r1" 12 20 stop-after
result_is stop_after_result_val_loss "$TMP/r1" '
vals = [r for r in map(json.loads, open(run + "/log.jsonl")) if "val_loss" in r]
assert vals[-1]["step"] == 10 and abs(res["val_loss"] - vals[-1]["val_loss"]) < 1e-5, (res["val_loss"], vals[-1])'
cp -r "$TMP/r1" "$TMP/r2"; cp -r "$TMP/r1" "$TMP/r3"
"$LNLAB" train --resume "$TMP/r1" --quiet 2>"$TMP/err" || fail resume_bit_exact "resume failed: $(cat "$TMP/err")"
same_run resume_bit_exact "$TMP/r1"
# the finished result replaces the stopped one, with the uninterrupted run's figures
result_is resume_finished_result_json "$TMP/r1" '
assert res["status"] == "finished" and res["stop_reason"] is None and res["steps"] == res["steps_planned"] == 20, res
assert full["status"] == "finished", full
assert {k: v for k, v in res.items() if k not in ("tokens_per_s", "run_id", "provenance")} == {k: v for k, v in full.items() if k not in ("tokens_per_s", "run_id", "provenance")}, (res, full)'

# 1b. Relative paths given where a run starts are stored absolute in RUN/config.json, so the run
#     resumes from another working directory (where ../kjv names nothing) and equals the
#     uninterrupted run; so does --init-from's.
mkdir -p "$TMP/w/x/y"
REL=("${A[@]}"); REL[1]=../kjv # A starts with --data DIR
env -C "$TMP/w" "$LNLAB" train "${REL[@]}" --out rel --checkpoint-every 5 --stop-after 12 2>"$TMP/err" ||
  fail resume_other_cwd "the run with relative paths failed: $(cat "$TMP/err")"
cp -r "$TMP/w/rel" "$TMP/w/old"
if env -C "$TMP/w/x/y" "$LNLAB" train --resume ../../rel --quiet 2>"$TMP/err"; then same_run resume_other_cwd "$TMP/w/rel"
else fail resume_other_cwd "resume from another directory failed: $(cat "$TMP/err")"; fi
env -C "$TMP/w" "$LNLAB" train --data ../kjv --init-from ../full/model.safetensors --seq 32 --batch 2 --steps 4 \
  --stop-after 2 --out init --quiet 2>"$TMP/err" &&
  env -C "$TMP/w/x/y" "$LNLAB" train --resume ../../init --quiet 2>>"$TMP/err"
if $PY -c 'import json, os, sys
t, i = (json.load(open(sys.argv[1] + "/w/" + r + "/config.json"))["train"] for r in ("rel", "init"))
ok = all(os.path.isabs(p) for p in (t["data"], i["data"], i["init_from"]))
ok = ok and os.path.samefile(t["data"], sys.argv[1] + "/kjv") and os.path.samefile(i["data"], sys.argv[1] + "/kjv")
ok = ok and os.path.samefile(i["init_from"], sys.argv[1] + "/full/model.safetensors")
sys.exit(0 if ok and os.path.exists(sys.argv[1] + "/w/init/model.safetensors") else 1)' "$TMP"; then
  ok resume_other_cwd_paths
else fail resume_other_cwd_paths "$(tail -n 1 "$TMP/err"); config.json paths: $(grep -o '"data":"[^"]*"\|"init_from":"[^"]*"' "$TMP"/w/*/config.json)"; fi
# a run recorded with a relative path (an older lnlab) names the problem instead of a missing file
$PY - "$TMP/w/old/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["train"]["data"] = "../kjv"; json.dump(c, open(sys.argv[1], "w"))
EOF
expect_error resume_old_relative_path 1 "old/config.json: train.data '../kjv' is a relative path .*resume from the directory the run was started in" \
  -- env -C "$TMP/w/x/y" "$LNLAB" train --resume ../../old --quiet

# Admin's profiling pass (it sets the omegas from one batch) runs once, not again on resume.
D=(--data "$TMP/kjv" --preset admin --layers 2 --heads 2 --dim 32 --seq 32 --batch 4 --steps 8 --seed 5 --quiet)
"$LNLAB" train "${D[@]}" --out "$TMP/a1" && "$LNLAB" train "${D[@]}" --out "$TMP/a2" --stop-after 3 2>/dev/null &&
  "$LNLAB" train --resume "$TMP/a2" --quiet
if same_model "$TMP/a1/model.safetensors" "$TMP/a2/model.safetensors"; then ok resume_admin_profile_once
else fail resume_admin_profile_once "final models differ"; fi

# 1c. Data order. The runs above sample their batches (the default, random order: the step alone
#     places them); llm.c's order (its position data.pos in the state) resumes bit for bit too; a
#     run recorded before --data-order existed (no data_order in config.json) resumes in that
#     order; a state saved under another data order or data seed than config.json's is refused.
Q=("${A[@]}" --data-order sequential)
"$LNLAB" train "${Q[@]}" --out "$TMP/q_full" && "$LNLAB" train "${Q[@]}" --out "$TMP/q1" --checkpoint-every 5 \
  --stop-after 12 2>/dev/null || fail resume_sequential "the sequential runs failed"
cp -r "$TMP/q1" "$TMP/q2"
if "$LNLAB" train --resume "$TMP/q1" --quiet 2>"$TMP/err"; then same_run resume_sequential_bit_exact "$TMP/q1" "$TMP/q_full"
else fail resume_sequential_bit_exact "resume failed: $(cat "$TMP/err")"; fi
if ! same_model "$TMP/full/model.safetensors" "$TMP/q_full/model.safetensors"; then ok data_order_default_random
else fail data_order_default_random "the default order gave the sequential run's model"; fi
$PY - "$TMP/q2/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); del c["train"]["data_order"], c["train"]["data_seed"]; json.dump(c, open(sys.argv[1], "w"))
EOF
if "$LNLAB" train --resume "$TMP/q2" --quiet 2>"$TMP/err"; then same_run resume_config_without_data_order "$TMP/q2" "$TMP/q_full"
else fail resume_config_without_data_order "resume failed: $(cat "$TMP/err")"; fi
"$LNLAB" train "${A[@]}" --out "$TMP/o1" --stop-after 6 2>/dev/null
cp -r "$TMP/o1" "$TMP/o2"
set_train() {  # set_train RUN KEY JSON-VALUE: changes RUN/config.json's train.KEY
  $PY -c 'import json,sys
p = sys.argv[1] + "/config.json"; c = json.load(open(p)); c["train"][sys.argv[2]] = json.loads(sys.argv[3]); json.dump(c, open(p, "w"))' "$@"
}
set_train "$TMP/o1" data_seed 5; set_train "$TMP/o2" data_order '"sequential"'
expect_error resume_other_data_seed 1 "training state: saved with data seed 0, this run has 5" \
  -- "$LNLAB" train --resume "$TMP/o1" --quiet
expect_error resume_other_data_order 1 "training state: saved by a run with data order random, this run has sequential" \
  -- "$LNLAB" train --resume "$TMP/o2" --quiet
expect_error resume_refuses_data_seed 2 "--data-seed: cannot be given with --resume" \
  -- "$LNLAB" train --resume "$TMP/o1" --data-seed 5

# 2. A crash after step 12 lost checkpoint 12 and left a half-written record and a temporary
#    file: resume from 10 cuts the log after step 10 and removes the temporary file.
rm "$(ckpt "$TMP/r2" model 12)" "$(ckpt "$TMP/r2" state 12)"
printf '{"step": 13, "loss": 5.1' >>"$TMP/r2/log.jsonl"
echo junk >"$(ckpt "$TMP/r2" model 13).tmp.99999"
"$LNLAB" train --resume "$TMP/r2" --quiet 2>"$TMP/err" || fail resume_cuts_log "resume failed: $(cat "$TMP/err")"
same_run resume_cuts_log "$TMP/r2"
if ls "$TMP/r2/checkpoints" | grep -q tmp; then fail resume_removes_temp "a .tmp file is still there"; else ok resume_removes_temp; fi

# 3. A corrupt newest checkpoint (one flipped byte in a tensor) falls back to the previous one.
$PY - "$(ckpt "$TMP/r3" model 12)" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[-5] ^= 0x40; open(sys.argv[1], 'wb').write(bytes(b))
EOF
"$LNLAB" train --resume "$TMP/r3" --quiet 2>"$TMP/err"; rc=$?
if [ $rc -eq 0 ] && grep -q 'checkpoint at step 12 is unusable: .*checksum mismatch.*trying the previous one' "$TMP/err"; then
  same_run corrupt_checkpoint_falls_back "$TMP/r3"
else fail corrupt_checkpoint_falls_back "exit $rc, $(cat "$TMP/err")"; fi

# 4. SIGTERM: the step in progress finishes, a checkpoint is saved, exit 143; resuming and
#    stopping 50 steps later gives the bytes of an uninterrupted run stopped at that step. (The
#    step the signal lands after depends on the machine's speed, so the stop step follows it.)
B=(--data "$TMP/kjv" --preset pre --layers 2 --heads 2 --dim 32 --seq 32 --batch 4 --steps 100000 --seed 3 --quiet)
"$LNLAB" train "${B[@]}" --out "$TMP/s1" --checkpoint-every 10 2>"$TMP/err" &
pid=$!
for _ in $(seq 600); do [ -f "$(ckpt "$TMP/s1" state 10)" ] && break; sleep 0.05; done
kill -TERM $pid; wait $pid; rc=$?
last=$(records "$TMP/s1/log.jsonl" | tail -1 | $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["step"])')
if [ $rc -eq 143 ] && grep -q "stopped by SIGTERM after step $last of 100000; checkpoint saved" "$TMP/err" &&
   [ -f "$(ckpt "$TMP/s1" state "$last")" ]; then ok sigterm_saves
else fail sigterm_saves "exit $rc, last step $last, $(cat "$TMP/err")"; fi
stopped_result sigterm_result_json "$TMP/s1" "$last" 100000 SIGTERM
stop=$((last + 50))
"$LNLAB" train --resume "$TMP/s1" --stop-after $stop --quiet 2>/dev/null
"$LNLAB" train "${B[@]}" --out "$TMP/s2" --stop-after $stop 2>/dev/null
if [ -f "$(ckpt "$TMP/s1" model $stop)" ] && same_model "$(ckpt "$TMP/s1" model $stop)" "$(ckpt "$TMP/s2" model $stop)"; then
  ok sigterm_resume_bit_exact
else fail sigterm_resume_bit_exact "step-$stop models differ (or are missing)"; fi
# stopped again after the resume: the new stop replaces the old result, with the figures of the
# uninterrupted run stopped at the same step
stopped_result resumed_stop_result_json "$TMP/s1" $stop 100000 stop-after
result_is resumed_stop_same_figures "$TMP/s1" '
other = json.load(open(run + "/../s2/result.json"))
assert {k: v for k, v in res.items() if k not in ("tokens_per_s", "run_id", "provenance")} == {k: v for k, v in other.items() if k not in ("tokens_per_s", "run_id", "provenance")}, (res, other)'
"$LNLAB" train "${B[@]}" --out "$TMP/s3" 2>"$TMP/err" &
pid=$!
for _ in $(seq 600); do [ -f "$TMP/s3/log.jsonl" ] && grep -q '"step": 3,' "$TMP/s3/log.jsonl" && break; sleep 0.05; done
kill -INT $pid; wait $pid; rc=$?
if [ $rc -eq 130 ] && grep -q "stopped by SIGINT" "$TMP/err" && ls "$TMP/s3/checkpoints" | grep -q state_; then ok sigint_saves
else fail sigint_saves "exit $rc, $(cat "$TMP/err")"; fi
last=$(records "$TMP/s3/log.jsonl" | tail -1 | $PY -c 'import json,sys; print(json.loads(sys.stdin.read())["step"])')
stopped_result sigint_result_json "$TMP/s3" "$last" 100000 SIGINT

# 5. The disk fills up while checkpoint 10 is written (injected after the bytes of config.json
#    and checkpoint 5): a clean error, checkpoint 5 intact, no partial files; resume completes.
cfg=$(stat -c %s "$TMP/full/config.json")
m5=$(stat -c %s "$(ckpt "$TMP/r1" model 5)"); s5=$(stat -c %s "$(ckpt "$TMP/r1" state 5)")
LNLAB_FAULT_WRITE_AFTER_BYTES=$((cfg + m5 + s5 + m5 / 2)) "$LNLAB" train "${A[@]}" --out "$TMP/f1" --checkpoint-every 5 \
  2>"$TMP/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
   grep -q 'checkpoint at step 10 not saved (earlier checkpoints are intact): .*No space left on device' "$TMP/err" &&
   [ "$(ls "$TMP/f1/checkpoints")" = "$(printf 'model_00000005.safetensors\nstate_00000005.safetensors')" ] &&
   same_model "$(ckpt "$TMP/f1" model 5)" "$(ckpt "$TMP/r1" model 5)"; then ok full_disk_clean_error
else fail full_disk_clean_error "exit $rc, files: $(ls "$TMP/f1/checkpoints" | tr '\n' ' '), stderr: $(cat "$TMP/err")"; fi
"$LNLAB" train --resume "$TMP/f1" --quiet 2>"$TMP/err" || fail full_disk_resume "resume failed: $(cat "$TMP/err")"
same_run full_disk_resume "$TMP/f1"
# the state file fails instead (after the model of checkpoint 10 was written)
LNLAB_FAULT_WRITE_AFTER_BYTES=$((cfg + m5 + s5 + m5 + 100)) "$LNLAB" train "${A[@]}" --out "$TMP/f2" --checkpoint-every 5 \
  2>"$TMP/err"; rc=$?
if [ $rc -eq 1 ] && [ "$(ls "$TMP/f2/checkpoints" | tr '\n' ' ')" = "model_00000005.safetensors state_00000005.safetensors " ]; then
  ok full_disk_in_state_file
else fail full_disk_in_state_file "exit $rc, files: $(ls "$TMP/f2/checkpoints" | tr '\n' ' ')"; fi

# The same on a real full file system, when this machine lets us mount a small tmpfs (root).
if [ "$(id -u)" -eq 0 ] && mkdir -p "$TMP/small" && mount -t tmpfs -o size=$(( (cfg + m5 + s5 + m5 + s5 / 2) / 1024 ))k \
     tmpfs "$TMP/small" 2>/dev/null; then
  "$LNLAB" train "${A[@]}" --out "$TMP/small/run" --checkpoint-every 5 2>"$TMP/err"; rc=$?
  if [ $rc -eq 1 ] && grep -q 'checkpoint at step 10 not saved (earlier checkpoints are intact): .*No space left on device' "$TMP/err" &&
     [ "$(ls "$TMP/small/run/checkpoints" | tr '\n' ' ')" = "model_00000005.safetensors state_00000005.safetensors " ]; then
    cp -r "$TMP/small/run" "$TMP/f3"
    "$LNLAB" train --resume "$TMP/f3" --quiet 2>"$TMP/err" || fail tmpfs_full_disk "resume failed: $(cat "$TMP/err")"
    same_run tmpfs_full_disk "$TMP/f3"
  else fail tmpfs_full_disk "exit $rc, files: $(ls "$TMP/small/run/checkpoints" 2>&1 | tr '\n' ' '), stderr: $(cat "$TMP/err")"; fi
  umount "$TMP/small"
else
  echo "skip tmpfs_full_disk: cannot mount a tmpfs here (needs root); the injected full disk above covers it"
fi

# 6. --keep-checkpoints 2 keeps the newest two; the setting is kept on resume.
"$LNLAB" train "${A[@]}" --out "$TMP/k1" --checkpoint-every 3 --keep-checkpoints 2 --stop-after 10
"$LNLAB" train --resume "$TMP/k1" --quiet
if [ "$(ls "$TMP/k1/checkpoints" | tr '\n' ' ')" = "model_00000015.safetensors model_00000018.safetensors state_00000015.safetensors state_00000018.safetensors " ]; then
  ok keep_checkpoints
else fail keep_checkpoints "$(ls "$TMP/k1/checkpoints" | tr '\n' ' ')"; fi

# 7. Resume refuses what would change the run, and what cannot be resumed.
expect_error resume_refuses_lr 2 "^lnlab: error: --lr: cannot be given with --resume" -- "$LNLAB" train --resume "$TMP/r2" --lr 1
expect_error resume_refuses_model_flag 2 "--layers: cannot be given with --resume" -- "$LNLAB" train --resume "$TMP/r2" --layers 3
expect_error resume_finished 1 "the run has finished" -- "$LNLAB" train --resume "$TMP/full"
expect_error resume_missing 1 "nope/config.json" -- "$LNLAB" train --resume "$TMP/nope"
mkdir -p "$TMP/e1"; cp "$TMP/full/config.json" "$TMP/e1/"
expect_error resume_no_checkpoint 1 "no checkpoint to resume from" -- "$LNLAB" train --resume "$TMP/e1" --quiet
cp -r "$TMP/f2" "$TMP/e2"; echo garbage >"$(ckpt "$TMP/e2" state 5)"
"$LNLAB" train --resume "$TMP/e2" --quiet 2>"$TMP/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "checkpoint at step 5 is unusable" "$TMP/err" && grep -q "no usable checkpoint" "$TMP/err"; then
  ok resume_all_corrupt; else fail resume_all_corrupt "exit $rc, $(cat "$TMP/err")"; fi

# 7b. A run with the z-loss (a training setting, replayed from config.json) and the logit softcap (in
#     the model's config) resumes bit for bit.
ZA=(--data "$TMP/kjv" --preset pre --layers 2 --heads 2 --dim 32 --seq 32 --batch 2 --steps 8 --eval-every 4
    --eval-batches 2 --z-loss 0.01 --logit-softcap 3 --seed 5 --quiet)
"$LNLAB" train "${ZA[@]}" --out "$TMP/zfull" &&
  "$LNLAB" train "${ZA[@]}" --out "$TMP/zr" --stop-after 3 2>/dev/null &&
  "$LNLAB" train --resume "$TMP/zr" --quiet || fail zloss_softcap_resume "a run failed"
grep -q '"z_loss"' "$TMP/zfull/log.jsonl" || fail zloss_softcap_resume_records "no z_loss in the step records"
same_run zloss_softcap_resume "$TMP/zr" "$TMP/zfull"

# 8. The memory check: numbers instead of a crash midway.
expect_error memory_check 1 "not enough memory: training this model on 512 x 1024 batches needs [0-9.]+ GiB \(parameters .*activations .*\), but [0-9.]+ GiB are available" \
  -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --model-size gpt2-xl --vocab 50257 --seq 1024 --batch 512
LNLAB_MEM_AVAILABLE=100000 "$LNLAB" train "${A[@]}" --out "$TMP/m1" 2>"$TMP/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "are available (LNLAB_MEM_AVAILABLE)" "$TMP/err"; then ok memory_check_env
else fail memory_check_env "exit $rc, $(cat "$TMP/err")"; fi
finish
