# The norm kinds and norm options a user reaches from the command line: --norm dyt|derf,
# --norm-gain one-plus, --norm-alpha-*, --embed-scale-learned. Each trains, its files hold the
# tensors by role (docs/FORMATS.md) with their initial values, its config records the choice, a
# stopped run resumes to the uninterrupted one, and eval and sample load the model. The errors: a
# kind BranchNorm cannot use, two embedding scales at once, an unknown kind or gain.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
cd "$TMP" || exit 1
for i in $(seq 1 120); do echo "line $i of the norms test corpus, with a few more words in it"; done >corpus.txt
"$LNLAB" prepare --tokenizer byte --input corpus.txt --out data >/dev/null 2>err.txt ||
  { fail setup_data "$(cat err.txt)"; finish; }
A=(--data data --layers 2 --dim 16 --heads 2 --seq 16 --batch 4 --steps 6 --eval-every 3 --quiet)

# tensors NAME RUN PYTHON-EXPR: the expression over t (name -> list of floats of the run's
# model.safetensors) and c (its config.json's "model") must be true
tensors() {
  local name=$1 why
  why=$("$PY" - "$2" "$3" 2>&1 <<'EOF'
import json, struct, sys
b = open(sys.argv[1] + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = {k: list(struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                           b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]))
     for k, v in h.items() if k != "__metadata__"}
c = json.load(open(sys.argv[1] + "/config.json"))["model"]
if not eval("(" + sys.argv[2] + ")"):
    print("%s: tensors %s; norm %s gain %s" % (sys.argv[2], sorted(k for k in t if not k.startswith("h.1")),
                                              c["norm"], c["norm_gain"]))
EOF
  ) || why="python: $why"
  if [ -n "$why" ]; then fail "$name" "$why"; else ok "$name"; fi
}

# DyT, the source's a (0.8 attention, 0.2 MLP and final) moved a little by 6 steps
"$LNLAB" train "${A[@]}" --norm dyt --out dyt 2>err.txt || fail train_dyt "$(cat err.txt)"
tensors dyt_tensors dyt 'c["norm"] == "dyt" and "h.0.ln_1.alpha" in t and "h.0.ln_1.bias" in t and
  "h.0.ln_1.shift" not in t and abs(t["h.0.ln_1.alpha"][0] - 0.8) < 0.05 and abs(t["h.1.ln_2.alpha"][0] - 0.2) < 0.05 and
  abs(t["ln_f.alpha"][0] - 0.2) < 0.05 and [round(c["init"]["norm_alpha"][k], 6) for k in ("attn", "mlp", "final")] == [0.8, 0.2, 0.2]'

# Derf with its own a per position, the one-plus gain (w starts at 0) and the learned embedding scale
"$LNLAB" train "${A[@]}" --norm derf --norm-alpha-attn 0.5 --norm-alpha-mlp 0.7 --norm-alpha-final 0.9 \
  --norm-gain one-plus --embed-scale-learned --out derf 2>err.txt || fail train_derf "$(cat err.txt)"
tensors derf_tensors derf 'c["norm"] == "derf" and c["norm_gain"] == "one-plus" and c["embed_scale_learned"] and
  abs(t["h.0.ln_1.alpha"][0] - 0.5) < 0.05 and abs(t["h.0.ln_2.alpha"][0] - 0.7) < 0.05 and
  abs(t["ln_f.alpha"][0] - 0.9) < 0.05 and abs(t["h.0.ln_1.shift"][0]) < 0.05 and
  max(abs(x) for x in t["h.0.ln_1.weight"]) < 0.05 and abs(t["embed_scale"][0] - 4.0) < 0.1 and
  t["h.0.ln_1.shift"][0] != 0'
# every norm option at once trains: the val loss falls (lr 1e-2, 6 steps)
"$LNLAB" train "${A[@]}" --lr 1e-2 --norm derf --norm-gain one-plus --embed-scale-learned --out fast 2>err.txt ||
  fail train_derf_fast "$(cat err.txt)"
if "$PY" -c 'import json,sys
v=[json.loads(l)["val_loss"] for l in open("fast/log.jsonl") if "val_loss" in json.loads(l)]
sys.exit(0 if len(v) >= 2 and v[-1] < v[0] - 0.2 else 1)' 2>/dev/null
then ok derf_loss_falls; else fail derf_loss_falls "$(grep val_loss fast/log.jsonl)"; fi

# a stopped run resumes to the uninterrupted one, bit for bit
"$LNLAB" train "${A[@]}" --norm derf --norm-gain one-plus --embed-scale-learned --out stop --stop-after 3 \
  >/dev/null 2>&1
"$LNLAB" train --resume stop --quiet 2>err.txt || fail resume_derf "$(cat err.txt)"
"$LNLAB" train "${A[@]}" --norm derf --norm-gain one-plus --embed-scale-learned --out whole 2>/dev/null
if cmp -s <(records stop/log.jsonl) <(records whole/log.jsonl) &&
   "$PY" -c 'import sys; a=open(sys.argv[1],"rb").read(); b=open(sys.argv[2],"rb").read(); import struct
na=struct.unpack("<Q",a[:8])[0]; nb=struct.unpack("<Q",b[:8])[0]; sys.exit(0 if a[8+na:]==b[8+nb:] else 1)' \
     stop/model.safetensors whole/model.safetensors; then ok resume_equals_uninterrupted
else fail resume_equals_uninterrupted "logs or weights differ"; fi

# eval and sample load the files
if "$LNLAB" eval --model derf/model.safetensors --data data --batch 2 --seq 16 >e.txt 2>err.txt &&
   grep -q "val_loss" e.txt; then ok eval_loads_derf; else fail eval_loads_derf "$(cat err.txt)"; fi
if "$LNLAB" sample --model dyt/model.safetensors --tokenizer byte --tokens 8 --seed 1 >s.txt 2>err.txt; then
  ok sample_loads_dyt; else fail sample_loads_dyt "$(cat err.txt)"; fi

# errors
expect_error branchnorm_dyt 2 'branch_norm needs a normalizing kind .*not dyt' -- \
  "$LNLAB" train "${A[@]}" --norm dyt --preset branchnorm --out bn
expect_error two_embed_scales 2 'embed_scale .* and embed_scale_learned .* exclude each other' -- \
  "$LNLAB" train "${A[@]}" --embed-scale --embed-scale-learned --out es
expect_error unknown_norm 2 '^lnlab: error: .*--norm.*groupnorm' -- "$LNLAB" train "${A[@]}" --norm groupnorm --out x
expect_error unknown_gain 2 '^lnlab: error: .*--norm-gain.*two-plus' -- "$LNLAB" train "${A[@]}" --norm-gain two-plus --out x
finish
