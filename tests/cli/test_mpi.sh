# Data-parallel training over MPI: n processes with batch B/n each give the losses and weights of
# one process with batch B, to fp32 rounding (plain, with gradient accumulation, in random and in
# sequential data order, Admin's profiling pass, ZeRO-1, 3 ranks), a run stopped and resumed under mpirun continues bit for bit,
# lnlab study --mpi spreads a study's runs over ranks into one report, and a file rank 0 cannot
# write stops every rank with an error instead of a hang.
# Skips when this lnlab was built without MPI or mpirun is missing.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
export OMP_NUM_THREADS=1                      # one thread per rank: 2 ranks on 2 cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # CI runs as root
export OMPI_MCA_btl_vader_single_copy_mechanism=none              # containers without CMA
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"            # OpenMPI's own allocations at exit
LOSS_RTOL=1e-5   # log losses, val losses, gradient norms
WEIGHT_ATOL=1e-4 # final weights: AdamW turns rounding noise in near-zero gradients into steps of ~lr/100

mpi() {  # mpi NPROC lnlab-args...
  local n=$1; shift
  mpirun --oversubscribe --bind-to none -np "$n" "$LNLAB" "$@"
}

if ! command -v mpirun >/dev/null 2>&1; then echo "skip mpi: mpirun not found (openmpi-bin)"; finish; fi
head -c 60000 /usr/share/common-licenses/GPL-3 > "$TMP/text.txt"
"$LNLAB" prepare --input "$TMP/text.txt" --tokenizer byte --val-fraction 0.1 --out "$TMP/data" >/dev/null 2>&1 ||
  { fail prepare "prepare failed"; finish; }
SMALL=(--data "$TMP/data" --layers 2 --heads 2 --dim 32 --seq 16 --lr 3e-3 --warmup 2 --seed 5 --quiet)

# A launch of 2 ranks; a build without MPI refuses it with a message that says so.
if ! mpi 2 train "${SMALL[@]}" --preset pre --batch 2 --steps 3 --out "$TMP/probe" 2>"$TMP/err"; then
  if grep -q "built without MPI" "$TMP/err"; then echo "skip mpi: this lnlab was built without MPI"; finish; fi
  fail mpi_launch "mpirun -np 2 lnlab train failed: $(head -c 600 "$TMP/err")"; finish
fi
ok mpi_launch

# compare NAME RUN_A RUN_B: every log record's loss, val_loss and grad_norm agree to LOSS_RTOL
# and every weight of the final models to WEIGHT_ATOL; prints the largest differences.
compare() {
  local name=$1 a=$2 b=$3 msg
  if msg=$($PY - "$a" "$b" "$LOSS_RTOL" "$WEIGHT_ATOL" 2>&1 <<'EOF'
import json, struct, sys
from array import array
ra, rb, rtol, atol = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
def records(run):
    out = {}
    for line in open(run + "/log.jsonl"):
        r = json.loads(line)
        for k in ("loss", "val_loss", "grad_norm"):
            if k in r: out[(r["step"], k)] = r[k]
    return out
la, lb = records(ra), records(rb)
if la.keys() != lb.keys() or not la: sys.exit("log records differ: %d vs %d values" % (len(la), len(lb)))
worst_rel, where = 0.0, None
for k in la:
    rel = abs(la[k] - lb[k]) / max(abs(la[k]), 1e-30)
    if rel > worst_rel: worst_rel, where = rel, k
def weights(run):
    b = open(run + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: array("f", b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
wa, wb = weights(ra), weights(rb)
if wa.keys() != wb.keys(): sys.exit("tensor names differ")
worst_abs, tensor = 0.0, None
for k in wa:
    d = max([abs(x - y) for x, y in zip(wa[k], wb[k])] or [0.0])
    if d > worst_abs: worst_abs, tensor = d, k
msg = "max rel diff of logged values %.2e (step %s %s), max abs weight diff %.2e (%s)" % (
    worst_rel, where and where[0], where and where[1], worst_abs, tensor)
print(msg)
sys.exit(0 if worst_rel <= rtol and worst_abs <= atol else 1)
EOF
  ); then ok "$name ($msg)"; else fail "$name" "$msg"; fi
}

# 1. 2 ranks x batch 2 = 1 process x batch 4, with validation and clipping.
ARGS=("${SMALL[@]}" --preset peri --dt 0.5 --steps 16 --eval-every 8 --eval-batches 3 --grad-clip 0.5)
"$LNLAB" train "${ARGS[@]}" --batch 4 --out "$TMP/one_b4"
mpi 2 train "${ARGS[@]}" --batch 2 --out "$TMP/two_b2"
compare mpi_2x2_equals_1x4 "$TMP/one_b4" "$TMP/two_b2"

# 1b. The runs here sample their batches (the default random order: rank r draws rows r*B.. of
#     each global batch); the same equality holds in llm.c's order, with accumulation too.
"$LNLAB" train "${ARGS[@]}" --data-order sequential --batch 4 --out "$TMP/one_b4_seq"
mpi 2 train "${ARGS[@]}" --data-order sequential --batch 2 --out "$TMP/two_b2_seq"
compare mpi_2x2_equals_1x4_sequential "$TMP/one_b4_seq" "$TMP/two_b2_seq"
"$LNLAB" train "${ARGS[@]}" --data-order sequential --batch 2 --total-batch 128 --out "$TMP/one_accum_seq"
mpi 2 train "${ARGS[@]}" --data-order sequential --batch 1 --total-batch 128 --out "$TMP/two_accum_seq"
compare mpi_accumulation_sequential "$TMP/one_accum_seq" "$TMP/two_accum_seq"
if ! same_model "$TMP/one_b4/model.safetensors" "$TMP/one_b4_seq/model.safetensors"; then ok mpi_orders_differ
else fail mpi_orders_differ "random and sequential order gave the same model"; fi

# 2. Gradient accumulation: --total-batch counts tokens over all processes.
"$LNLAB" train "${ARGS[@]}" --batch 2 --total-batch 128 --out "$TMP/one_accum"
mpi 2 train "${ARGS[@]}" --batch 1 --total-batch 128 --out "$TMP/two_accum"
compare mpi_accumulation "$TMP/one_accum" "$TMP/two_accum"

# 3. Admin profiles its omegas on the whole first global batch, as one process would. GPT-2's
#    small init: under admin's default (fairseq) init the float noise in the key block of
#    c_attn.bias, whose exact gradient is 0, exceeds adam_eps and AdamW moves it by ~lr either way.
ADMIN=(--preset admin --init-std 0.02 --resid-scale-init on --embed-scale=false --steps 8)
"$LNLAB" train "${SMALL[@]}" "${ADMIN[@]}" --batch 4 --out "$TMP/one_admin"
mpi 2 train "${SMALL[@]}" "${ADMIN[@]}" --batch 2 --out "$TMP/two_admin"
compare mpi_admin "$TMP/one_admin" "$TMP/two_admin"

# 4. ZeRO-1 (sharded AdamW moments) gives the plain data-parallel result bit for bit, and with 3
#    ranks (uneven shards) the single-process result.
mpi 2 train "${ARGS[@]}" --batch 2 --zero --out "$TMP/two_zero"
if same_model "$TMP/two_b2/model.safetensors" "$TMP/two_zero/model.safetensors"; then ok mpi_zero_bit_identical
else fail mpi_zero_bit_identical "--zero changed the weights of the 2-rank run"; fi
"$LNLAB" train "${ARGS[@]}" --batch 3 --out "$TMP/one_b3"
mpi 3 train "${ARGS[@]}" --batch 1 --zero --out "$TMP/three_zero"
compare mpi_3_ranks_zero "$TMP/one_b3" "$TMP/three_zero"

# 5. Stopped and resumed under mpirun (ZeRO's moments gathered into the checkpoint and
#    sharded again): the uninterrupted run's weights, bit for bit.
if mpi 2 train "${ARGS[@]}" --batch 2 --zero --checkpoint-every 4 --stop-after 8 --out "$TMP/two_stop" 2>"$TMP/err" &&
   mpi 2 train --resume "$TMP/two_stop" --quiet 2>>"$TMP/err"; then
  if same_model "$TMP/two_zero/model.safetensors" "$TMP/two_stop/model.safetensors"; then ok mpi_zero_resume_bit_identical
  else fail mpi_zero_resume_bit_identical "the resumed 2-rank --zero run differs from the uninterrupted one"; fi
else fail mpi_zero_resume_bit_identical "stop or resume failed: $(head -c 600 "$TMP/err")"; fi

# 6. Rank 0 alone writes the run: one log, the settings record the process count.
if [ "$(grep -c '"loss"' "$TMP/two_b2/log.jsonl")" -eq 16 ] && grep -q '"processes":2' "$TMP/two_b2/config.json"; then
  ok mpi_rank0_writes
else fail mpi_rank0_writes "log has $(grep -c '"loss"' "$TMP/two_b2/log.jsonl") step records (want 16) or config lacks processes"; fi

# 7. A global batch larger than the data is refused with one line per process, not a hang.
out=$(mpi 2 train "${SMALL[@]}" --preset pre --batch 2000 --steps 3 --out "$TMP/big" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && printf '%s' "$out" | grep -q "too few tokens"; then ok mpi_too_few_tokens
else fail mpi_too_few_tokens "exit $rc: $(printf '%s' "$out" | head -c 400)"; fi

# 8. lnlab study --mpi: the runs dealt out to 2 ranks, one results.jsonl and one report, the same
#    records as a study in one process.
TINY=(--data "$TMP/data" --presets pre,peri --dts 1 --depths 2 --lrs 3e-3 --seeds 1,2 --dim 16 --heads 2 --seq 16
      --batch 4 --steps 12 --warmup 0 --eval-every 6 --eval-batches 2 --probe-batch 4 --threads 1 --jobs 1 --quiet)
"$LNLAB" study "${TINY[@]}" --out "$TMP/study1" >/dev/null 2>&1
if mpi 2 study "${TINY[@]}" --mpi --out "$TMP/study2" >"$TMP/study2.out" 2>"$TMP/err"; then
  if msg=$($PY - "$TMP/study1" "$TMP/study2" 2>&1 <<'EOF'
import glob, json, os, sys
a, b = sys.argv[1], sys.argv[2]
def recs(d):
    return {r["id"]: r for r in map(json.loads, open(os.path.join(d, "results.jsonl")))}
ra, rb = recs(a), recs(b)
if sorted(ra) != sorted(rb) or len(rb) != 4: sys.exit("runs %s vs %s" % (sorted(ra), sorted(rb)))
bad = [i for i in ra if ra[i]["final_val_loss"] != rb[i]["final_val_loss"] or ra[i]["layers"] != rb[i]["layers"]]
if bad: sys.exit("records differ: %s" % bad)
if glob.glob(os.path.join(b, "results.shard*")): sys.exit("shard files left")
if not os.path.getsize(os.path.join(b, "report.html")): sys.exit("no report")
EOF
  ) && grep -q "^study: 4 runs (0 finished before, 4 trained now, 0 failed)" "$TMP/study2.out"; then ok mpi_study
  else fail mpi_study "$msg $(head -n 1 "$TMP/study2.out")"; fi
else fail mpi_study "mpirun lnlab study --mpi failed: $(head -c 600 "$TMP/err")"; fi

# 9. Rank 0 cannot write a checkpoint, or the final model (a full disk, injected; only rank 0
#    writes files): every rank stops with exit 1 and one line on stderr instead of waiting for
#    rank 0 in the next collective. A wrapper keeps each rank's exit status and stderr; mpirun is
#    told not to kill the other ranks when one fails (OpenMPI's orte_abort_on_non_zero_status), so
#    each rank has to end by itself. The timeouts only guard against a hang. The full disk is
#    placed from the sizes of the files of the mpi_launch run above (these runs differ from it
#    only in numbers of as many digits), not at fixed byte counts that the data's path or the
#    model's size would move.
cfg=$(wc -c <"$TMP/probe/config.json"); model=$(wc -c <"$TMP/probe/model.safetensors")
result=$(wc -c <"$TMP/probe/result.json")
cat >"$TMP/rank.sh" <<'EOF'
r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-x}}
timeout 120 "$@" 2>"$RANK_DIR/err.$r"; rc=$?
echo "$rc" >"$RANK_DIR/rc.$r"
exit "$rc"
EOF
# rank0_fails NAME FAULT_BYTES RANK0_ERE WHAT train-args...: 2 ranks train into $TMP/NAME/run with
# writes to atomic files failing after FAULT_BYTES bytes ("" = no injection); both ranks must exit
# 1 by themselves, rank 0 with one line matching RANK0_ERE, rank 1 with one line saying that rank 0
# could not write WHAT (an extended regex).
rank0_fails() {
  local name=$1 bytes=$2 pat0=$3 want=$4 dir="$TMP/$1" rc rc0 rc1; shift 4
  mkdir -p "$dir"
  RANK_DIR="$dir" LNLAB_FAULT_WRITE_AFTER_BYTES=$bytes OMPI_MCA_orte_abort_on_non_zero_status=0 timeout 180 \
    mpirun -x RANK_DIR -x LNLAB_FAULT_WRITE_AFTER_BYTES --oversubscribe --bind-to none -np 2 \
    bash "$TMP/rank.sh" "$LNLAB" train "${SMALL[@]}" --preset pre --batch 2 "$@" --out "$dir/run" \
    >/dev/null 2>"$dir/mpirun.err"; rc=$?
  rc0=$(cat "$dir/rc.0" 2>/dev/null); rc1=$(cat "$dir/rc.1" 2>/dev/null)
  if [ "$rc" -ne 124 ] && [ "$rc0" = 1 ] && [ "$rc1" = 1 ] &&
     [ "$(wc -l <"$dir/err.0")" -eq 1 ] && grep -Eq "$pat0" "$dir/err.0" &&
     [ "$(wc -l <"$dir/err.1")" -eq 1 ] &&
     grep -Eq "^lnlab: error: rank 1 of 2: stopping because rank 0 could not write $want " "$dir/err.1"; then
    ok "$name"
  else
    fail "$name" "mpirun exit $rc, rank exits '$rc0' '$rc1' (124: stopped by the hang guard); rank 0: $(cat "$dir/err.0" 2>/dev/null); rank 1: $(cat "$dir/err.1" 2>/dev/null); mpirun: $(head -c 300 "$dir/mpirun.err")"
  fi
}
# config.json and half of the first model file (a checkpoint, or the final model)
rank0_fails mpi_rank0_checkpoint_write_fails $((cfg + model / 2)) 'No space left on device' \
  'the checkpoint at step 4' --steps 8 --checkpoint-every 4
rank0_fails mpi_rank0_model_write_fails $((cfg + model / 2)) 'No space left on device' 'model\.safetensors' --steps 8

# 10. The same for what rank 0 writes before the first collective (config.json, then log.jsonl)
#     and for result.json at the end: the disk full halfway through config.json; a directory
#     where log.jsonl goes; the disk full halfway through result.json, after config.json and
#     model.safetensors.
rank0_fails mpi_rank0_config_write_fails $((cfg / 2)) 'config\.json.*No space left on device' \
  "the run directory's setup files" --steps 3
mkdir -p "$TMP/mpi_rank0_log_create_fails/run"
ln -s "$TMP/no-such-directory/log.jsonl" "$TMP/mpi_rank0_log_create_fails/run/log.jsonl"
rank0_fails mpi_rank0_log_create_fails '' 'log\.jsonl: cannot open the log' "the run directory's setup files" --steps 3
rank0_fails mpi_rank0_result_write_fails $((cfg + model + result / 2)) 'result\.json.*No space left on device' \
  'result\.json' --steps 3
finish
