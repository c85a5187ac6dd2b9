# lnlab bench: every flag error, then one real (short) comparison run on the tiny model: lnlab
# twice (--repeat 2) and PyTorch tuned once, one step each. Checks the JSON of the run (figures
# present, finite and consistent with each other), not any speed: speed is measured by make bench.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3

expect_error bad_model 2 "bench: --model: 'huge' is not one of tiny, gpt2, s64, s128" -- "$LNLAB" bench --model huge
expect_error bad_preset 2 "bench: --preset: 'post' is not one of pre, peri" -- "$LNLAB" bench --preset post
expect_error bad_torch 2 "bench: --torch: 'fast' is not tuned, default or none" -- "$LNLAB" bench --torch fast
expect_error bad_threads 2 "--threads" -- "$LNLAB" bench --threads 0
expect_error bad_repeat 2 "--repeat" -- "$LNLAB" bench --repeat 0
expect_error too_many_repeats 2 "--repeat" -- "$LNLAB" bench --repeat 10
expect_error bad_steps 2 "--steps" -- "$LNLAB" bench --steps 0
expect_error one_needs_one_case 2 "bench --one: give exactly one --model, --preset and --threads" -- \
  "$LNLAB" bench --one --model tiny
expect_error unknown_flag 2 "--fast" -- "$LNLAB" bench --fast

# --one --bf16 runs the case in the bf16 mode (as LNLAB_BF16=1 does), or says why it cannot.
if out=$(OMP_NUM_THREADS=1 LNLAB_BF16=0 "$LNLAB" bench --one --bf16 --model s64 --preset pre --threads 1 --warmup 0 \
  --steps 1 --sgemm 0 2>&1); then
  printf '%s' "$out" | grep -q '"bf16":true' && ok one_bf16 || fail one_bf16 "not in the bf16 mode: $out"
else
  printf '%s' "$out" | grep -q "bench --one --bf16: this CPU or build has no AVX512-BF16" && ok one_bf16_unavailable ||
    fail one_bf16 "$out"
fi

# A sanitizer build runs a tiny step (30M parameters, a 412 MB logits buffer) far too slowly.
if [ -n "${LNLAB_SANITIZED:-}" ]; then echo "skip bench_run: sanitizer build"; finish; fi
TORCH=none
if "$PY" -c 'import torch' 2>/dev/null; then TORCH=tuned; else echo "skip bench_torch: no PyTorch for $PY"; fi

OMP_NUM_THREADS=1 "$LNLAB" bench --model tiny --preset pre --threads 1 --warmup 0 --steps 1 --sgemm 0 --repeat 2 \
  --torch $TORCH --torch-script "$ROOT/bench/torch_train.py" --json "$TMP/b.json" >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then fail bench_run "exit $rc: $(tail -n 3 "$TMP/err")"; finish; fi
ok bench_run
grep -q "2 lnlab runs per case" "$TMP/out" && grep -Eq '^tiny +pre +1 \|' "$TMP/out" && ok bench_table ||
  fail bench_table "$(cat "$TMP/out")"
if ls -a "$TMP" | grep -q '^b\.json\.'; then fail bench_json_atomic "temporary file left"; else ok bench_json_atomic; fi

why=$("$PY" - "$TMP/b.json" "$TORCH" 2>&1 <<'EOF'
import json, math, sys
rows, torch = json.load(open(sys.argv[1])), sys.argv[2]
assert len(rows) == 1, rows
r = rows[0]
assert (r["model"], r["preset"], r["threads"]) == ("tiny", "pre", 1), r
l = r["lnlab"]
assert (l["batch"], l["seq"], l["params"]) == (8, 256, 30339456), l
# the reported run is the lower median of the two runs' step times
assert len(l["ms_runs"]) == 2 and l["ms"] == min(l["ms_runs"]), l["ms_runs"]
assert len(l["sgemm_peak_gflops_runs"]) == 2, l  # --sgemm 0: not measured (null)
assert l["ms"] > 0 and math.isclose(l["tokens_per_s"], 8 * 256 / (l["ms"] / 1e3), rel_tol=1e-9), l
# FLOPs of a step from the model: B T (6 (12 L C^2 + V C) + 6 L C (T + 1))
flop = 8 * 256 * (6 * (12 * 6 * 384**2 + 50257 * 384) + 6 * 6 * 384 * 257)
assert math.isclose(l["gflop_per_step"], flop / 1e9, rel_tol=1e-12), l["gflop_per_step"]
assert math.isclose(l["gflops"], flop / 1e9 / (l["ms"] / 1e3), rel_tol=1e-9), l
# one step from random init on random tokens: the loss is near ln(50257) = 10.82
assert abs(l["loss_first"] - math.log(50257)) < 0.5, l["loss_first"]
assert l["peak_rss"] > 1e8 and l["bf16"] is False, l
assert 0 <= r["other_load"] <= 1, r["other_load"]
if torch == "tuned":
    t = r["torch_tuned"]
    assert t["ms"] > 0 and t["peak_rss"] > 1e8, t
    # the same model from the same kind of init: the same starting loss to within init noise
    assert abs(t["loss_first"] - l["loss_first"]) < 0.5, (t["loss_first"], l["loss_first"])
    assert "torch_default" not in r  # PyTorch's defaults only when asked for
else:
    assert "torch_tuned" not in r
EOF
) && ok bench_json || fail bench_json "$why"
finish
