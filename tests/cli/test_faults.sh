# Fault injection: no run loses or mixes its records. Short train runs and a small study are
# SIGKILLed at random points (seeded; the seed is printed) many times and resumed, and must end
# identical to an uninterrupted run (model bytes, every log record but timings, results.jsonl);
# a log write that fails (the disk full for a moment, or for good) stops the run with one line,
# exit 1 and status "failed", and the resumed run again equals the uninterrupted one; a damaged
# log is refused, not cut; two processes on one RUN, a fresh run into an existing one, and a
# checkpoint of another run are refused; data edited or truncated under a run is caught.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=/usr/bin/python3
SEED=${LNLAB_FAULT_SEED:-$(( $(date +%s) % 100000 ))}
echo "# fault seed $SEED (rerun with LNLAB_FAULT_SEED=$SEED)"
RANDOM=$SEED

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 || { fail prepare_kjv "prepare failed"; finish; }

M=(--preset pre --layers 2 --heads 2 --dim 16 --seq 16 --batch 4 --warmup 10 --eval-every 50 --eval-batches 2
   --keep-checkpoints 2 --quiet)
A=(--data "$TMP/kjv" "${M[@]}" --steps 300 --diag-every 25 --checkpoint-every 20 --seed 3)

same_run() {  # NAME DIR: DIR ended as the uninterrupted run REF did
  if [ ! -f "$2/model.safetensors" ]; then fail "$1" "no model.safetensors in $2"; return; fi
  if ! same_model "$TMP/ref/model.safetensors" "$2/model.safetensors"; then fail "$1" "final model bytes differ"; return; fi
  records "$TMP/ref/log.jsonl" >"$TMP/a.txt"; records "$2/log.jsonl" >"$TMP/b.txt"
  if ! cmp -s "$TMP/a.txt" "$TMP/b.txt"; then fail "$1" "log records differ: $(diff "$TMP/a.txt" "$TMP/b.txt" | head -n 4)"; return; fi
  if ! $PY -c 'import json,sys
a, b = (json.load(open(p + "/result.json")) for p in sys.argv[1:])
drop = ("tokens_per_s", "run_id", "provenance")
sys.exit(0 if {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop} else 1)' \
     "$TMP/ref" "$2"; then fail "$1" "result.json differs: $(cat "$2/result.json")"; return; fi
  ok "$1"
}
status_of() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$1/result.json" 2>/dev/null; }

t0=$(date +%s%N)
"$LNLAB" train "${A[@]}" --out "$TMP/ref" 2>"$TMP/err" || { fail reference_run "$(cat "$TMP/err")"; finish; }
ms=$(( ($(date +%s%N) - t0) / 1000000 + 1 ))

# --- 1. SIGKILL at random points, then resume (or start over where nothing was saved yet) -------
# Each run is killed KILLS times at a uniform random moment of an uninterrupted run's duration
# (a kill that comes after the end misses: the run is started over and the window shrinks, as
# the machine's load may have changed), then resumed to the end.
KILLS=5
pause() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
kill_cycles=0
for k in 1 2 3; do
  R="$TMP/k$k"
  fresh=1 landed=0 win=$ms
  for attempt in $(seq 60); do
    if [ "$fresh" = 1 ]; then "$LNLAB" train "${A[@]}" --out "$R" --overwrite 2>"$TMP/err.k" &
    else "$LNLAB" train --resume "$R" --quiet 2>"$TMP/err.k" & fi
    pid=$!
    if [ "$landed" -lt "$KILLS" ]; then
      sleep "$(pause $((RANDOM % win)))"
      if kill -KILL "$pid" 2>/dev/null; then landed=$((landed + 1)); kill_cycles=$((kill_cycles + 1)); fi
    fi
    wait "$pid"; rc=$?
    if [ "$rc" -eq 0 ] && [ "$(status_of "$R")" = finished ]; then
      [ "$landed" -ge "$KILLS" ] && break
      fresh=1 win=$((win * 2 / 3 + 1)); continue  # the kill missed: once more from the start
    fi
    # killed, yet result.json says finished: the kill came after the run's end (nothing to resume),
    # or while a fresh run with --overwrite had not yet cleared the last one's files: start over
    if [ "$(status_of "$R")" = finished ]; then fresh=1; continue; fi
    # nothing to resume yet (killed before config.json or the first checkpoint): start over
    if ls "$R"/checkpoints/state_* >/dev/null 2>&1 && [ -f "$R/config.json" ]; then fresh=0; else fresh=1; fi
    if [ "$rc" -ne 137 ] && [ "$rc" -ne 0 ]; then
      # a refused resume is fine only when it says why in one line (e.g. no checkpoint yet)
      [ "$(wc -l <"$TMP/err.k")" -le 2 ] || { fail "kill_resume_$k" "exit $rc: $(tail -n 3 "$TMP/err.k")"; break; }
    fi
  done
  [ "$(status_of "$R")" = finished ] ||
    fail "kill_resume_finishes_$k" "not finished after 60 starts; the last said: $(tail -n 2 "$TMP/err.k")"
  same_run "kill_resume_equals_uninterrupted_$k" "$R"
  ls -a "$R" "$R/checkpoints" | grep -q '\.tmp\.' && fail "kill_no_temp_files_$k" "$(ls -a "$R/checkpoints")"
done
[ "$kill_cycles" -ge $((3 * KILLS)) ] && ok kill_cycles || fail kill_cycles "only $kill_cycles kills landed"

# --- 2. the log cannot be written ------------------------------------------------------------
LOGSIZE=$(wc -c <"$TMP/ref/log.jsonl")
AT=$((LOGSIZE / 3))
# a disk full for a moment: the run stops with a checkpoint of that step; the resume equals REF
R="$TMP/full1"
LNLAB_FAULT_LOG_FULL="$AT:1" "$LNLAB" train "${A[@]}" --out "$R" 2>"$TMP/err"; rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
   grep -Eq "log\.jsonl: write failed: No space left on device; the run stops after step [0-9]+, checkpoint of that step saved" "$TMP/err" &&
   [ "$(status_of "$R")" = failed ]; then ok log_full_moment_stops
else fail log_full_moment_stops "exit $rc, status $(status_of "$R"): $(cat "$TMP/err")"; fi
step=$(grep -o 'after step [0-9]*' "$TMP/err" | grep -o '[0-9]*$')
[ -n "$step" ] && [ -f "$R/checkpoints/state_$(printf %08d "$step").safetensors" ] && ok log_full_moment_checkpoint ||
  fail log_full_moment_checkpoint "no checkpoint of step $step: $(ls "$R/checkpoints")"
"$LNLAB" train --resume "$R" --quiet 2>"$TMP/err" || fail log_full_moment_resume "$(cat "$TMP/err")"
same_run log_full_moment_resume_equals_uninterrupted "$R"
# a malformed fault setting: one line naming the variable, a failed exit (the library does not exit itself)
LNLAB_FAULT_LOG_FULL="12x" "$LNLAB" train "${A[@]}" --out "$TMP/badfault" 2>"$TMP/err2"; rc=$?
if [ "$rc" -ne 0 ] && [ "$(wc -l <"$TMP/err2")" -eq 1 ] &&
   grep -q "LNLAB_FAULT_LOG_FULL: expected N or N:K (bytes, failures), got '12x'" "$TMP/err2"; then ok fault_setting_malformed
else fail fault_setting_malformed "exit $rc: $(cat "$TMP/err2")"; fi
# a disk that stays full: the run stops at once (not at the end), the resume drops and reruns
R="$TMP/full2"
LNLAB_FAULT_LOG_FULL="$AT" "$LNLAB" train "${A[@]}" --out "$R" 2>"$TMP/err"; rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
   grep -q "log\.jsonl: write failed: No space left on device; the run stops after step [0-9]* without a checkpoint of that step" "$TMP/err" &&
   [ "$(status_of "$R")" = failed ] && [ "$(wc -c <"$R/log.jsonl")" -le "$AT" ] &&
   $PY -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$R/log.jsonl"; then ok log_full_stays_stops_whole_records
else fail log_full_stays_stops_whole_records "exit $rc, status $(status_of "$R"): $(cat "$TMP/err")"; fi
"$LNLAB" train --resume "$R" --quiet 2>"$TMP/err"; rc=$?
if [ "$rc" -eq 0 ] && grep -Eq "dropped [0-9]+ records? past step" "$TMP/err"; then ok log_full_resume_says_dropped
else fail log_full_resume_says_dropped "exit $rc: $(cat "$TMP/err")"; fi
same_run log_full_stays_resume_equals_uninterrupted "$R"
# a real full file system, where one can be mounted (root in a container that allows it)
SMALL="$TMP/small"
mkdir -p "$SMALL"
if mount -t tmpfs -o size=600k tmpfs "$SMALL" 2>/dev/null; then
  "$LNLAB" train --data "$TMP/kjv" "${M[@]}" --out "$SMALL/r" --diag-every 1 --steps 3000 2>"$TMP/err"; rc=$?
  if [ "$rc" -eq 1 ] && grep -q "write failed: No space left on device" "$TMP/err" &&
     $PY -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$SMALL/r/log.jsonl"; then ok tmpfs_full_log
  else fail tmpfs_full_log "exit $rc: $(cat "$TMP/err")"; fi
  umount "$SMALL"
else
  echo "skip tmpfs_full_log: cannot mount a tmpfs here (the injected faults above cover the same path)"
fi

# --- 3. a damaged log is refused, not cut -----------------------------------------------------
R="$TMP/damaged"
"$LNLAB" train "${A[@]}" --out "$R" --stop-after 100 2>/dev/null
$PY - "$R/log.jsonl" <<'EOF'
import sys
p = sys.argv[1]
lines = open(p).read().split("\n")
lines[10] = lines[10][: len(lines[10]) // 2]  # a torn record in the middle
open(p, "w").write("\n".join(lines))
EOF
cp "$R/log.jsonl" "$TMP/damaged.log"
expect_error damaged_log_refused 1 "log\.jsonl: line 11 is not a JSON record .*damaged before its end" -- \
  "$LNLAB" train --resume "$R" --quiet
cmp -s "$R/log.jsonl" "$TMP/damaged.log" && ok damaged_log_untouched || fail damaged_log_untouched "the log was changed"

# --- 4. a run directory belongs to one run ----------------------------------------------------
R="$TMP/two"
"$LNLAB" train --data "$TMP/kjv" "${M[@]}" --out "$R" --steps 200000 2>/dev/null &
pid=$!
for _ in $(seq 200); do [ -s "$R/log.jsonl" ] && break; sleep 0.02; done
expect_error second_train_refused 1 "two: another lnlab train \(PID $pid\) is using this directory" -- \
  "$LNLAB" train "${A[@]}" --out "$R"
kill -TERM "$pid"; wait "$pid"
records "$R/log.jsonl" >/dev/null 2>&1 && ok first_train_log_whole || fail first_train_log_whole "torn records"
expect_error fresh_into_run_refused 1 "holds a run \(config\.json, log\.jsonl, result\.json, checkpoints/\): continue it with lnlab train --resume .*--overwrite" -- \
  "$LNLAB" train "${A[@]}" --out "$R"
# the chimera: B overwrites stopped run A and is killed before its first checkpoint; the resume
# must not take A's weights
R="$TMP/chimera"
"$LNLAB" train "${A[@]}" --out "$R" --stop-after 60 2>/dev/null
idA=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$R/config.json")
"$LNLAB" train --data "$TMP/kjv" "${M[@]}" --out "$R" --overwrite --lr 3e-3 --seed 7 --steps 200000 2>/dev/null &
pid=$!
for _ in $(seq 300); do  # until B has replaced A's config and logged a few steps
  grep -q "$idA" "$R/config.json" 2>/dev/null || { [ "$(wc -l 2>/dev/null <"$R/log.jsonl")" -gt 3 ] 2>/dev/null && break; }
  sleep 0.02
done
kill -KILL "$pid"; wait "$pid" 2>/dev/null
idB=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$R/config.json")
[ "$idA" != "$idB" ] && [ ! -e "$R/checkpoints" ] && ok overwrite_removes_old_checkpoints ||
  fail overwrite_removes_old_checkpoints "ids $idA $idB; $(ls "$R/checkpoints" 2>&1)"
expect_error chimera_resume_refused 1 "no checkpoint to resume from" -- "$LNLAB" train --resume "$R" --quiet
# a checkpoint of another run copied in is refused by its run id
R2="$TMP/foreign"
"$LNLAB" train "${A[@]}" --out "$R2" --stop-after 40 2>/dev/null
"$LNLAB" train "${A[@]}" --out "$TMP/other" --stop-after 40 2>/dev/null
# the same step, so that the log has its records: only the run id tells them apart
cp "$TMP/other"/checkpoints/*_00000040.safetensors "$R2/checkpoints/"
expect_error foreign_checkpoint_refused 1 "belongs to run [0-9a-f]{16}, this run is [0-9a-f]{16}" -- \
  "$LNLAB" train --resume "$R2" --quiet

# eval and probe say which run made the model they loaded
idR=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/ref/config.json")
ev=$("$LNLAB" eval --model "$TMP/ref/model.safetensors" --data "$TMP/kjv" --batch 2 --seq 16 --batches 1 --json 2>&1)
pr=$("$LNLAB" probe --model "$TMP/ref/model.safetensors" --data "$TMP/kjv/val.bin" --batch 2 --seq 16 --json 2>&1)
if [ "$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["run_id"], json.loads(sys.argv[2])["run_id"])' "$ev" "$pr")" = "$idR $idR" ]
then ok eval_probe_print_run_id; else fail eval_probe_print_run_id "config $idR; eval $ev; probe $(printf '%s' "$pr" | head -c 200)"; fi

# --- 5. the data changed ----------------------------------------------------------------------
cp -r "$TMP/kjv" "$TMP/kjv2"
D2=(--data "$TMP/kjv2" "${M[@]}" --seed 3)
R="$TMP/edited"
"$LNLAB" train "${D2[@]}" --out "$R" --steps 300 --checkpoint-every 20 --stop-after 40 2>/dev/null
$PY -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(5000); b = f.read(1); f.seek(5000); f.write(bytes([b[0] ^ 1])); f.close()' "$TMP/kjv2/train.bin"
expect_error edited_data_refused 1 "the data.s content changed since the checkpoint" -- "$LNLAB" train --resume "$R" --quiet
cp "$TMP/kjv/train.bin" "$TMP/kjv2/train.bin"
R="$TMP/truncated"
"$LNLAB" train "${D2[@]}" --out "$R" --steps 2000000 --checkpoint-every 1000 2>"$TMP/err" &
pid=$!
for _ in $(seq 500); do [ -s "$R/log.jsonl" ] && [ "$(wc -l <"$R/log.jsonl")" -gt 30 ] && break; sleep 0.02; done
truncate -s 100000 "$TMP/kjv2/train.bin"
wait "$pid"; rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
   grep -q "kjv2/train.bin: the data file changed under the run" "$TMP/err" && [ "$(status_of "$R")" = failed ]; then
  ok truncated_data_clean_error
else fail truncated_data_clean_error "exit $rc (135 = SIGBUS): $(cat "$TMP/err")"; fi

# --- 6. a small study killed at random points equals an uninterrupted one -------------------------
S=(study --data "$TMP/kjv" --presets pre,peri --dts 1 --depths 2 --lrs 3e-3 --seeds 1 --dim 16 --heads 2 --seq 16
   --batch 4 --steps 300 --warmup 0 --eval-every 100 --eval-batches 2 --probe-batch 4 --checkpoint-every 20
   --threads 1 --jobs 1 --quiet)
t0=$(date +%s%N)
"$LNLAB" "${S[@]}" --out "$TMP/sref" >/dev/null 2>"$TMP/err" || fail study_reference "$(cat "$TMP/err")"
sms=$(( ($(date +%s%N) - t0) / 1000000 + 1 ))
for attempt in $(seq 30); do
  "$LNLAB" "${S[@]}" --out "$TMP/skill" >/dev/null 2>"$TMP/err.s" &
  pid=$!
  if [ "$attempt" -le 6 ]; then
    sleep "$(printf '%d.%03d' $(( (RANDOM % sms) / 1000 )) $(( (RANDOM % sms) % 1000 )))"
    kill -KILL "$pid" 2>/dev/null
    # the study's child dies with it (it watches its parent); wait until nothing holds the run
    for _ in $(seq 100); do pgrep -f -- "--out $TMP/skill/runs/" >/dev/null || break; sleep 0.02; done
  fi
  wait "$pid" && break
done
r=$($PY - "$TMP/sref" "$TMP/skill" <<'EOF'
import json, os, sys
def load(d):
    out = {}
    for l in open(os.path.join(d, "results.jsonl")):
        r = json.loads(l)
        for k in ("tokens_per_s", "wall_s", "run_id", "provenance"): r.pop(k, None)
        log = [json.loads(x) for x in open(os.path.join(d, "runs", r["id"], "log.jsonl"))]
        r["curve"] = [{k: v for k, v in x.items() if k not in ("ms", "tokens_per_s", "threads")} for x in log]
        out[r["id"]] = r
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
diff = [k for k in a if a[k] != b.get(k)]
print("same" if a.keys() == b.keys() and not diff else "differ: %s" % (diff or sorted(set(a) ^ set(b))))
EOF
)
[ "$r" = same ] && ok study_killed_equals_uninterrupted || fail study_killed_equals_uninterrupted "$r"
finish
