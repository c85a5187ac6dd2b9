# lnlab train's monitor: diagnostics records every K steps, z-scores in the step records,
# RUN/result.json for finished and diverged runs, divergence by NaN/Inf and by the loss threshold
# (exit 3, distinct from errors' 1 and usage errors' 2), and --skip-spikes counting. JSON is read
# by Python, not by lnlab.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
PY=/usr/bin/python3

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 || { fail prepare_kjv "prepare failed"; finish; }
SMALL=(--data "$TMP/kjv" --heads 2 --dim 32 --seq 32 --batch 4 --quiet)

# pycheck NAME RUN_DIR PYTHON: runs PYTHON with `run` (the directory), `recs` (log.jsonl records)
# and `res` (result.json, or None) defined; an assertion failure is the test's failure.
pycheck() {
  local name=$1 why
  why=$("$PY" - "$2" "$3" 2>&1 <<'EOF'
import json, math, os, sys
run = sys.argv[1]
recs = [json.loads(l) for l in open(os.path.join(run, 'log.jsonl'))]
res = json.load(open(os.path.join(run, 'result.json'))) if os.path.exists(os.path.join(run, 'result.json')) else None
exec(sys.argv[2])
EOF
  ) && ok "$name" || fail "$name" "$(printf '%s' "$why" | tail -n 3)"
}

# 1. Records every 5 steps; z-scores in every step record; result.json of a finished run.
"$LNLAB" train "${SMALL[@]}" --layers 3 --out "$TMP/d" --preset peri --steps 12 --eval-every 6 --eval-batches 2 \
  --diag-every 5 --zscore-window 4 2>"$TMP/err" || fail diag_run "$(cat "$TMP/err")"
pycheck diag_records "$TMP/d" '
L = 3
diag = [r for r in recs if "diag" in r]
assert [r["step"] for r in diag] == [5, 10], [r["step"] for r in diag]
for r in diag:
    d = r["diag"]
    assert d["layers"] == L
    for k in ("hidden_mean_abs", "hidden_var", "hidden_var_data", "dx_norm"):
        assert len(d[k]) == L + 1 and all(x > 0 for x in d[k]), (k, d[k])
    for s in ("attn", "mlp"):
        for k in ("mean_abs", "var", "var_data"):
            assert len(d[s + "_" + k]) == L and all(x > 0 for x in d[s + "_" + k]), (s, k)
    assert len(d["grad_norm"]) == L and len(d["update_ratio"]) == L
    assert all(0 < x < 1 for x in d["update_ratio"]), d["update_ratio"]
    assert d["embed_grad_norm"] > 0 and 0 < d["embed_update_ratio"] < 1
    # early-warning figures (values: tests/reference/test_early_warning.py); an AdamW step moves
    # each parameter by at most about lr (6e-4 here, plus decay), so its RMS is at most that
    assert len(d["update_rms"]) == L and all(0 < x < 1e-3 for x in d["update_rms"]), d["update_rms"]
    assert 0 < d["embed_update_rms"] < 1e-3, d["embed_update_rms"]
    assert len(d["attn_logit_max"]) == L and all(isinstance(x, float) for x in d["attn_logit_max"]), d["attn_logit_max"]
    # per row log sum_v exp z_v <= max_v z_v + log V (V = 257, the byte vocabulary)
    assert isinstance(d["logit_max"], float) and isinstance(d["log_z_mean"], float), d
    assert d["log_z_mean"] <= d["logit_max"] + math.log(257) + 1e-6, (d["logit_max"], d["log_z_mean"])
    step = [x for x in recs if x.get("step") == r["step"] and "loss" in x][0]
    # the global norm is the step record grad_norm, and the groups make it up
    assert abs(d["global_grad_norm"] - step["grad_norm"]) <= 1e-5 * step["grad_norm"]
    tot = math.sqrt(sum(g * g for g in d["grad_norm"]) + d["embed_grad_norm"] ** 2)
    assert abs(tot - d["global_grad_norm"]) <= 1e-5 * tot, (tot, d["global_grad_norm"])
steps = [r for r in recs if "loss" in r]
assert all("loss_z" in r and "grad_norm_z" in r and "skipped" not in r for r in steps)
assert all(r["loss_z"] is None for r in steps[:4]) and all(r["loss_z"] is not None for r in steps[4:])
'
pycheck result_json_finished "$TMP/d" '
assert res is not None, "no result.json"
assert set(res) == {"format", "version", "status", "run_id", "error", "stop_reason", "steps", "steps_planned", "final_loss",
                    "min_loss", "val_loss", "diverged", "diverged_step", "cause", "tokens_per_s", "skipped_steps",
                    "unigram_val_loss", "trained", "provenance"}, sorted(res)
p = res["provenance"]
assert set(p) == {"lnlab", "commit", "build", "date", "cpu", "cpus", "threads", "command"}, sorted(p)
assert p["command"].startswith("lnlab train ") and p["threads"] >= 1 and len(p["date"]) == 20, p
assert res["trained"] is (res["val_loss"] <= res["unigram_val_loss"] - 0.3), res
steps = [r for r in recs if "loss" in r]
assert res["format"] == "lnlab.result" and res["version"] == 3
assert res["status"] == "finished" and res["stop_reason"] is None, res
assert res["steps"] == res["steps_planned"] == 12 and res["diverged"] is False
assert res["diverged_step"] is None and res["cause"] is None and res["skipped_steps"] == 0
assert abs(res["final_loss"] - steps[-1]["loss"]) < 1e-5
assert abs(res["min_loss"] - min(r["loss"] for r in steps)) < 1e-5
assert abs(res["val_loss"] - [r for r in recs if "val_loss" in r][-1]["val_loss"]) < 1e-5
assert res["tokens_per_s"] > 0
c = json.load(open(run + "/config.json"))["train"]
assert (c["diag_every"], c["zscore_window"], c["skip_spikes"], c["diverge_loss"]) == (5, 4, 0, 0), c
'
"$LNLAB" train "${SMALL[@]}" --layers 3 --out "$TMP/d0" --steps 12 --diag-every 0 2>"$TMP/err" &&
  ! grep -q '"diag"' "$TMP/d0/log.jsonl" && ok diag_off || fail diag_off "diag records with --diag-every 0"
# the records change nothing: same losses and model with and without them
if "$LNLAB" train "${SMALL[@]}" --layers 3 --out "$TMP/d1" --steps 12 --diag-every 1 2>"$TMP/err" &&
   same_model "$TMP/d0/model.safetensors" "$TMP/d1/model.safetensors"; then ok diag_changes_nothing
else fail diag_changes_nothing "models differ with --diag-every 1 and 0"; fi

# 2. NaN/Inf: ReZero at lr 10 without clipping blows up within a few steps.
"$LNLAB" train "${SMALL[@]}" --layers 2 --out "$TMP/nan" --preset rezero --steps 30 --lr 10 --grad-clip 0 --diag-every 10 \
  2>"$TMP/err"; rc=$?
[ $rc -eq 3 ] && ok nan_exit_3 || fail nan_exit_3 "exit $rc: $(cat "$TMP/err")"
pycheck nan_result "$TMP/nan" '
assert res["diverged"] is True and 1 <= res["diverged_step"] < 30, res
assert res["status"] == "diverged" and res["stop_reason"] is None, res
assert res["cause"] in ("loss is NaN", "loss is infinite", "gradient norm is NaN", "gradient norm is infinite"), res
s = res["diverged_step"]
assert res["steps"] == s and res["steps_planned"] == 30
dv = [r for r in recs if r.get("diverged")]
assert len(dv) == 1 and dv[0]["step"] == s and dv[0]["cause"] == res["cause"] and recs[-1] is dv[0]
assert [r["step"] for r in recs if "diag" in r][-1] == s, "no diagnostics record at the diverged step"
# a step due only because it diverged ran its forward without recording attention maxima
if s % 10: assert recs[-2]["diag"]["attn_logit_max"] == [None, None], recs[-2]["diag"]["attn_logit_max"]
assert not os.path.exists(run + "/model.safetensors")
'

# 3. The loss threshold: constant lr 1 makes a tiny Pre-LN model jump above its best loss.
"$LNLAB" train "${SMALL[@]}" --out "$TMP/thr" --preset pre --layers 2 --steps 60 --lr 1 --schedule constant \
  --diverge-loss 1 2>"$TMP/err"; rc=$?
[ $rc -eq 3 ] && grep -q 'exceeds its running minimum' "$TMP/err" && ok threshold_exit_3 ||
  fail threshold_exit_3 "exit $rc: $(cat "$TMP/err")"
pycheck threshold_result "$TMP/thr" '
steps = [r for r in recs if "loss" in r]
s = res["diverged_step"]
assert res["diverged"] is True and "exceeds its running minimum" in res["cause"] and res["status"] == "diverged", res
assert steps[-1]["step"] == s and all(math.isfinite(r["loss"]) for r in steps)
# the first step whose loss is more than 1 above the minimum of the steps before it
first = next(r["step"] for i, r in enumerate(steps) if i and r["loss"] > min(x["loss"] for x in steps[:i]) + 1)
assert first == s, (first, s)
assert abs(res["min_loss"] - min(r["loss"] for r in steps[:-1])) < 1e-5
'
# ... and without the threshold the same run goes on to the end (finite, just bad)
"$LNLAB" train "${SMALL[@]}" --out "$TMP/thr0" --preset pre --layers 2 --steps 60 --lr 1 --schedule constant \
  2>"$TMP/err" && ok threshold_off || fail threshold_off "$(cat "$TMP/err")"

# 4. --skip-spikes: with a 4-step window and Z = 0.5 many updates are skipped; the log says which,
#    the count matches result.json, and each decision follows the logged z-scores.
"$LNLAB" train "${SMALL[@]}" --layers 2 --out "$TMP/skip" --steps 40 --zscore-window 4 --skip-spikes 0.5 --diag-every 0 \
  2>"$TMP/err" || fail skip_run "$(cat "$TMP/err")"
pycheck skip_spikes "$TMP/skip" '
steps = [r for r in recs if "loss" in r]
sk = [r for r in steps if r.get("skipped")]
assert res["skipped_steps"] == len(sk) > 0 and res["diverged"] is False, (res["skipped_steps"], len(sk))
window = []  # (loss, grad_norm) of applied steps
for r in steps:
    z = r["loss_z"], r["grad_norm_z"]
    if len(window) < 4: assert z == (None, None), r
    else:
        for j, v in enumerate((r["loss"], r["grad_norm"])):
            w = [x[j] for x in window[-4:]]
            m = sum(w) / 4; sd = math.sqrt(sum((x - m) ** 2 for x in w) / 4)
            assert abs((v - m) / sd - z[j]) < 2e-3 + 1e-3 * abs(z[j]), (r["step"], j, (v - m) / sd, z[j])
    spike = any(x is not None and x > 0.5 for x in z)
    assert bool(r.get("skipped")) == spike, r
    if not spike: window.append((r["loss"], r["grad_norm"]))
'
# skipped updates change the model, and the same flags give the same run
"$LNLAB" train "${SMALL[@]}" --layers 2 --out "$TMP/skip2" --steps 40 --zscore-window 4 --skip-spikes 0.5 --diag-every 0 2>/dev/null
"$LNLAB" train "${SMALL[@]}" --layers 2 --out "$TMP/noskip" --steps 40 --zscore-window 4 --diag-every 0 2>/dev/null
if same_model "$TMP/skip/model.safetensors" "$TMP/skip2/model.safetensors" &&
   ! same_model "$TMP/skip/model.safetensors" "$TMP/noskip/model.safetensors"; then ok skip_changes_model
else fail skip_changes_model "skipping did not change the model, or is not repeatable"; fi

# 5. Flags.
expect_error bad_skip 2 '--skip-spikes' -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --skip-spikes -1
expect_error bad_window 2 '--zscore-window' -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --zscore-window 1
expect_error bad_diag_every 2 '--diag-every' -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --diag-every -3
expect_error bad_diverge 2 '--diverge-loss' -- "$LNLAB" train --data "$TMP/kjv" --out "$TMP/x" --diverge-loss x
if "$LNLAB" train --help | grep -q -- '--skip-spikes' && "$LNLAB" train --help | grep -q -- '--diverge-loss'; then
  ok train_help; else fail train_help "monitor flags missing from --help"; fi
finish
