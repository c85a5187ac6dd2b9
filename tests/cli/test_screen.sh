# lnlab screen: the verdicts the literature states where the screen's measurements show them
# (docs/SCREEN.md), dt < 1 tightening the bounds, the comparison table, a model file, and the
# error cases. Small models (L 6, C 64, V 512) so the whole script takes a few seconds; JSON is
# read by Python, not by lnlab.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
cd "$TMP" || exit 1
SMALL=(--layers 6 --dim 64 --heads 2 --vocab 512 --sensitivity-iters 6)

screen_json() {  # OUT -- screen flags...
  local out=$1; shift 2
  "$LNLAB" screen "${SMALL[@]}" --json "$@" >"$out" 2>err.txt
}

# verdict NAME FILE PYTHON-EXPR: the expression over o (the screen object), r1 (its dt 1 run) and
# rd (its last run: the chosen dt) must be true; prints the object's key figures when it is not.
verdict() {
  local name=$1 why
  why=$("$PY" - "$2" "$3" 2>&1 <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
r1, rd = o["runs"][0], o["runs"][-1]
if not eval("(" + sys.argv[2] + ")"):
    print("%s: spec %s, fwd %s %s, sens(a) %s %s, sens(s) %s %s, grad %s, within %s" % (
        sys.argv[2], o["spec"]["stream"], r1["forward_ratio"], r1["forward_verdict"], r1["sensitivity_input_ratio"],
        r1["sensitivity_input_verdict"], r1["sensitivity_weight_ratio"], r1["sensitivity_weight_verdict"],
        r1["grad_ratio"], [f["within_bound"] for f in r1["forward"]]))
EOF
  ) || why="python: $why"
  if [ -n "$why" ]; then fail "$name" "$why"; else ok "$name"; fi
}

for p in pre peri post b2t; do
  screen_json $p.json -- --preset $p --dt 0.1 || { fail "screen_$p" "$(cat err.txt)"; }
done
screen_json peri_qk.json -- --preset peri --spec attn.qkv_norm=1 || fail screen_peri_qk "$(cat err.txt)"

# Pre-LN: no bound from the spec; the stream and the block sensitivity grow with the weights
verdict pre_no_bound pre.json 'o["spec"]["stream"] == "none" and o["spec"]["updates"]["unnormalized"] == 12'
verdict pre_grows_with_weights pre.json 'r1["forward_verdict"] == "grows" and r1["forward_ratio"] > 50'
verdict pre_sensitivity_grows pre.json 'r1["sensitivity_weight_verdict"] == "grows" and r1["sensitivity_weight_ratio"] > 100'
# Peri-LN: linear bound, held at every weight scale; the stream is invariant to the weights
verdict peri_linear_bound peri.json 'o["spec"]["stream"] == "linear" and o["spec"]["updates"]["normalized"] == 12'
verdict peri_within_bound peri.json 'all(f["within_bound"] and f["bound"][-1] is not None for r in o["runs"] for f in r["forward"])'
verdict peri_invariant_forward peri.json 'r1["forward_verdict"] == "invariant"'
# the sensitivity is invariant to the weights once q and k are normalized too; without, the attention
# logits (quadratic in the weights) leave a growth far below Pre-LN's
verdict peri_qk_sensitivity_invariant peri_qk.json 'r1["sensitivity_weight_verdict"] == "invariant"'
"$PY" -c 'import json,sys
a, b = (json.load(open(f))["runs"][0]["sensitivity_weight_ratio"] for f in sys.argv[1:])
sys.exit(0 if a * 100 < b else 1)' peri.json pre.json && ok peri_sensitivity_far_below_pre ||
  fail peri_sensitivity_far_below_pre "peri's weight ratio is not 100 times below pre's"
# Post-LN and B2T: bounded by the post-norm at every layer and every weight scale
for p in post b2t; do
  verdict ${p}_bounded $p.json 'o["spec"]["stream"] == "bounded" and o["spec"]["updates"]["renormalized"] == 12'
  verdict ${p}_within_bound $p.json 'all(f["within_bound"] for r in o["runs"] for f in r["forward"])'
  verdict ${p}_invariant_forward $p.json 'r1["forward_verdict"] == "invariant"'
done
# dt < 1 tightens: the stream at every weight scale (Pre-LN, Peri-LN) and Peri-LN's spec bound
for p in pre peri; do
  verdict ${p}_dt_tightens $p.json 'len(o["runs"]) == 2 and rd["dt"] < 1 and all(
    d["last_hidden_mean_abs"] < one["last_hidden_mean_abs"] for d, one in zip(rd["forward"], r1["forward"]))'
done
verdict peri_dt_tightens_bound peri.json 'all(d["bound"][-1] < one["bound"][-1] for d, one in zip(rd["forward"], r1["forward"]))'
# the spec bound is a real bound: a composition with an unnormalized sub-layer has none from there on
screen_json mixed.json -- --preset peri --spec attn.out_norm@4-6=0 || fail screen_mixed "$(cat err.txt)"
verdict spec_composition mixed.json 'o["spec"]["stream"] == "none" and o["spec"]["updates"]["unnormalized"] == 3 and
  r1["forward"][0]["bound"][3] is not None and r1["forward"][0]["bound"][4] is None'

# the comparison table: one row per preset and dt; JSON: one object with a screen per preset
if "$LNLAB" screen "${SMALL[@]}" --presets post,pre,peri --dt 0.5 >table.txt 2>err.txt &&
   [ "$(grep -cE '^(post|pre|peri) ' table.txt)" -eq 3 ] && [ "$(grep -cE '^ +0\.5 ' table.txt)" -eq 3 ]; then
  ok presets_table
else fail presets_table "$(cat err.txt table.txt | head -5)"; fi
if "$LNLAB" screen "${SMALL[@]}" --presets post,peri --json >pj.json 2>err.txt &&
   "$PY" -c 'import json,sys; o=json.load(open("pj.json")); sys.exit(0 if [s["placement"] for s in o["screens"]] == ["post","peri"] else 1)'; then
  ok presets_json
else fail presets_json "$(cat err.txt)"; fi
# the full table of one placement has the four sections
if "$LNLAB" screen "${SMALL[@]}" --preset b2t --dt 0.5 >one.txt 2>err.txt &&
   [ "$(grep -cE '^[1-4]\. ' one.txt)" -eq 4 ]; then ok screen_table
else fail screen_table "$(cat err.txt one.txt | head -5)"; fi

# a model file as it is: the same numbers as the fresh model it was saved from
need_refdump screen_model
"$REFDUMP" --preset peri --layers 3 --heads 2 --dim 16 --seq 16 --vocab 64 --out m >/dev/null 2>err.txt ||
  { fail screen_model "$(cat err.txt)"; finish; }
if "$LNLAB" screen --model m/model.safetensors --seq 8 --json >m.json 2>err.txt &&
   "$PY" -c 'import json,sys; o=json.load(open("m.json")); sys.exit(0 if o["preset"] == "peri" and o["layers"] == 3 and o["seq"] == 8 else 1)'; then
  ok screen_model
else fail screen_model "$(cat err.txt)"; fi

# --study: beside each verdict, the study's measured counterpart, computed from its results.jsonl.
# A made-up study at depth 8, three seeds: Pre-LN's last layer grows 100x from lr 1e-3 to 1e-1 and
# fits an exponential, its val losses (2.5, 2.4, 2.9) give an LR sensitivity of 0.2 and the lr 0.1
# runs do not train; Peri-LN grows 1.2x, fits a line, sensitivity (0.15 + 0 + 0.1) / 3.
"$PY" - study/results.jsonl <<'PY' 2>err.txt || fail screen_study_world "$(cat err.txt)"
import json, os, sys
os.makedirs("study", exist_ok=True)
def layers(L, exp, scale):
    return [{"layer": l, "hidden_mean_abs": scale * (0.5 * 1.5 ** l if exp else 1.0 + l), "hidden_var": 1.0,
             "hidden_var_data": 1.0, "grad_norm": 1.0, "sensitivity": None, "dx_norm": 1.0} for l in range(L + 1)]
with open(sys.argv[1], "w") as f:
    for seed in (1, 2, 3):
        for lr, pre, peri in ((1e-3, 2.5, 2.45), (1e-2, 2.4, 2.3), (1e-1, 2.9, 2.4)):
            for p, val, exp, scale in (("pre", pre, True, lr / 1e-3), ("peri", peri, False, 1.2 if lr == 1e-1 else 1.0)):
                f.write(json.dumps({"id": "%s-dt1-L8-lr%g-s%d" % (p, lr, seed), "preset": p, "variant": "", "dt": 1,
                    "depth": 8, "lr": lr, "seed": seed, "final_val_loss": val, "final_train_loss": val,
                    "diverged_at_step": None, "init_loss": 5.6, "unigram_val_loss": 3.0, "min_grad_ratio": 0.5,
                    "grad_ratio": 1.0, "layers": layers(8, exp, scale)}) + "\n")
PY
for p in pre peri; do
  "$LNLAB" screen --preset $p --layers 8 --dim 32 --heads 2 --seq 8 --study study --json >"st_$p.json" 2>err.txt ||
    fail "screen_study_$p" "$(cat err.txt)"
done
if "$PY" - <<'PY' 2>err.txt; then ok screen_study; else fail screen_study "$(tail -n 1 err.txt)"; fi
import json, math
pre = json.load(open("st_pre.json"))["runs"][0]["study"]
peri = json.load(open("st_peri.json"))["runs"][0]["study"]
assert (pre["runs"], pre["trained"], pre["probed_runs"], pre["exponential_growth_runs"]) == (9, 6, 9, 9), pre
assert math.isclose(pre["growth_ratio"], 100) and math.isclose(pre["lr_sensitivity"], 0.2), pre
assert (peri["trained"], peri["exponential_growth_runs"]) == (9, 0), peri
assert math.isclose(peri["growth_ratio"], 1.2) and math.isclose(peri["lr_sensitivity"], 0.25 / 3), peri
assert math.isclose(pre["lr_sensitivity_all_presets"], (0.2 + 0.25 / 3) / 2), pre
# the screen says Pre-LN's stream has no bound and Peri-LN's is linear; the made-up study agrees
assert pre["growth_agrees"] == "agrees" and peri["growth_agrees"] == "agrees", (pre, peri)
PY

expect_error err_presets_and_model 2 'do not go together' -- "$LNLAB" screen --model m/model.safetensors --presets pre
expect_error err_preset_and_presets 2 'not both' -- "$LNLAB" screen --preset pre --presets post
expect_error err_unknown_preset 2 "unknown preset 'nope'" -- "$LNLAB" screen --presets pre,nope
expect_error err_seed_with_model 2 '^lnlab: error: --seed' -- "$LNLAB" screen --model m/model.safetensors --seed 3
expect_error err_study_missing 1 'cannot open' -- "$LNLAB" screen "${SMALL[@]}" --study nowhere
expect_error err_iters 2 'sensitivity-iters' -- "$LNLAB" screen --sensitivity-iters 0
expect_error err_seq_too_long 2 'longer than' -- "$LNLAB" screen --model m/model.safetensors --seq 17
expect_error err_unknown_flag 2 'unknown flag' -- "$LNLAB" screen --bogus
expect_error err_bad_spec 2 'spec' -- "$LNLAB" screen --spec nothing=1
finish
