# lnlab study: a tiny grid end to end (every report file and its content), a rerun that repeats
# nothing, resume after the study is killed, --jobs 2 gives what --jobs 1 gives, a report
# without gnuplot, a changed setting refused, config errors as one-line exits 2, precision as an
# axis (fp32 and bf16 runs apart), and the built-in configs print as JSON that --config reads back.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

"$LNLAB" prepare --input /usr/share/common-licenses/GPL-3 --tokenizer byte --val-fraction 0.1 --out "$TMP/data" \
  >/dev/null 2>&1 || { fail prepare "lnlab prepare failed"; finish; }

# 2 presets x 1 dt x 1 depth x 2 seeds, 20 steps of a 2-layer width-16 model.
TINY=(--data "$TMP/data" --presets pre,peri --dts 1 --depths 2 --lrs 3e-3 --seeds 1,2 --dim 16 --heads 2 --seq 16
      --batch 4 --steps 20 --warmup 0 --eval-every 10 --eval-batches 2 --diag-every 10 --probe-batch 4 --threads 1 --quiet)

# --- 1. a study and its report -----------------------------------------------------------------
A="$TMP/a"
if "$LNLAB" study "${TINY[@]}" --jobs 1 --out "$A" >"$TMP/a.out" 2>"$TMP/a.err"; then ok study_runs
else fail study_runs "exit $?: $(tail -n 3 "$TMP/a.err")"; finish; fi

if grep -q '^study: 4 runs (0 finished before, 4 trained now, 0 failed)' "$TMP/a.out"; then ok study_stdout
else fail study_stdout "$(head -n 2 "$TMP/a.out")"; fi

for f in results.jsonl summary.md report.html study.json runs.csv metrics.csv; do
  [ -s "$A/$f" ] || fail "report_file_$f" "$A/$f missing or empty"
done
ok report_files_exist

$PY - "$A" >"$TMP/check" 2>&1 <<'PY'
import json, os, re, sys, glob
a = sys.argv[1]
recs = [json.loads(l) for l in open(os.path.join(a, "results.jsonl"))]
def check(name, cond, why):
    print(("ok " + name) if cond else ("FAIL %s: %s" % (name, why)))
check("results_one_line_per_run", len(recs) == 4, "%d records" % len(recs))
ids = {r["id"] for r in recs}
check("results_ids", ids == {"pre-dt1-L2-lr0.003-s1", "pre-dt1-L2-lr0.003-s2", "peri-dt1-L2-lr0.003-s1",
                             "peri-dt1-L2-lr0.003-s2"}, sorted(ids))
keys = ["preset", "dt", "depth", "lr", "seed", "settings", "final_val_loss", "diverged_at_step", "last_hidden_mean_abs",
        "growth", "grad_ratio", "median_sensitivity", "tokens_per_s", "layers"]
missing = [(r["id"], k) for r in recs for k in keys if k not in r]
check("results_keys", not missing, missing[:3])
bad = [r["id"] for r in recs if not (isinstance(r["final_val_loss"], float) and len(r["layers"]) == 3
       and r["diverged_at_step"] is None and r["growth"]["better"] in ("linear", "exponential")
       and abs(r["grad_ratio"] - r["layers"][1]["grad_norm"] / r["layers"][2]["grad_norm"]) < 1e-9 * r["grad_ratio"]
       and r["last_hidden_mean_abs"] == r["layers"][2]["hidden_mean_abs"])]
check("results_values", not bad, bad)

md = open(os.path.join(a, "summary.md")).read()
runs = md.split("## Runs", 1)[1].split("\n## ", 1)[0]
rows = [l for l in runs.splitlines() if l.startswith("| ") and not l.startswith("| run")]
check("summary_rows_equal_runs", len(rows) == 4, "%d rows" % len(rows))
head = [l for l in runs.splitlines() if l.startswith("| run")]
want = ["run", "trained", "final val loss", "unigram loss", "trained at step", "diverged at step", "spikes",
        "largest loss rise (nats, step)", "last-layer hidden_mean_abs", "block-1 hidden_mean_abs", "growth fit",
        "grad ratio layer 1 / L (end)", "min grad ratio (step)", "median sensitivity", "tokens/s"]
cols = [c.strip() for c in head[0].strip("|").split("|")] if head else []
check("summary_columns", cols == want, cols)
vals = {r["id"]: "%.4g" % r["final_val_loss"] for r in recs}
check("summary_values", all(v in runs for v in vals.values()), vals)
# every run knows the unigram loss of its data and whether it trained (20 steps: it did not)
check("results_trained_gate", all(isinstance(r["unigram_val_loss"], float) and r["trained"] is False
                                  and r["diag_records"] >= 1 and r["init_loss"] > r["final_train_loss"] for r in recs),
      [(r["id"], r.get("unigram_val_loss"), r.get("trained"), r.get("diag_records")) for r in recs])
f = md.split("## Findings", 1)[1].split("\n## ", 1)[0] if "## Findings" in md else ""
vt = [l for l in md.split("\n## ", 1)[0].splitlines() if l.startswith("| a") or l.startswith("| b")]
check("summary_verdict_table", len(vt) == 11 and all(l.rstrip(" |").split("|")[-1].strip() in
      ("shows", "does not show", "inconclusive") for l in vt), vt)
check("summary_claim_sections", f.count("\n### (") == 11 and f.count("Verdict: ") == 11, f[:300])
# the contents link every section; the runs table comes last
toc = md.split("\n## ", 1)[0]
check("summary_contents", toc.count("](#") == 16 and "- [Runs](#runs)" in toc and md.rstrip().split("\n## ")[-1].startswith("Runs"),
      toc[-600:])

# the tidy export: runs.csv has each record's figures, metrics.csv the curves, diag and probe figures
import csv
rc = list(csv.DictReader(open(os.path.join(a, "runs.csv"))))
check("runs_csv", len(rc) == 4 and {r["run"] for r in rc} == ids and all(
      abs(float(r["final_val_loss"]) - next(x for x in recs if x["id"] == r["run"])["final_val_loss"]) < 1e-6
      and r["trained"] == "false" for r in rc), rc[:1])
mc = list(csv.DictReader(open(os.path.join(a, "metrics.csv"))))
by = {}
for r in mc: by.setdefault((r["source"], r["metric"]), []).append(r)
one = "pre-dt1-L2-lr0.003-s1"
tl = [r for r in by.get(("train", "train_loss"), []) if r["run"] == one]
log = [json.loads(l) for l in open(os.path.join(a, "runs", one, "log.jsonl"))]
check("metrics_csv_train_loss", len(tl) == 20 and all(abs(float(r["value"]) - x["loss"]) < 1e-6 for r, x in
      zip(tl, [x for x in log if "loss" in x])), len(tl))
dg = [r for r in by.get(("diag", "hidden_mean_abs"), []) if r["run"] == one]
check("metrics_csv_diag_layers", sorted({(r["step"], r["layer"]) for r in dg}) ==
      sorted({(s, str(l)) for s in ("10", "20") for l in range(3)}), sorted({(r["step"], r["layer"]) for r in dg}))
gn = [r for r in by.get(("diag", "grad_norm"), []) if r["run"] == one and r["step"] == "10"]
check("metrics_csv_block_layers", sorted(r["layer"] for r in gn) == ["1", "2"], gn)
pr = [r for r in by.get(("probe", "hidden_mean_abs"), []) if r["run"] == one]
rec = next(x for x in recs if x["id"] == one)
check("metrics_csv_probe", len(pr) == 3 and abs(float(pr[2]["value"]) - rec["layers"][2]["hidden_mean_abs"]) < 1e-6 *
      rec["layers"][2]["hidden_mean_abs"], pr)

html = open(os.path.join(a, "report.html")).read()
plots = sorted(glob.glob(os.path.join(a, "plots", "*.png")) + glob.glob(os.path.join(a, "plots", "*.svg")))
names = {os.path.basename(p) for p in plots}
need = {"grad_norm.png", "grad_norm.svg", "hidden_pre.png", "hidden_peri.svg", "loss_dt1-L2-lr0.003.png"}
check("plots_made", need <= names, sorted(names))
# the layer x step heatmaps: one figure per figure of the diag records, a panel per preset at one setting
heat = {"heatmap_%s.%s" % (m, x) for m in ("hidden_mean_abs", "grad_norm", "update_rms", "attn_logit_max")
        for x in ("png", "svg")}
gp = open(os.path.join(a, "plots", "data", "heatmap_grad_norm.gp")).read() if "heatmap_grad_norm.png" in names else ""
check("plots_heatmaps", heat <= names and all(("plots/" + h) in html for h in heat) and "pre (seed 1" in gp
      and "peri (seed 1" in gp and "lr 0.003" in gp, sorted(heat - names))
unref = [n for n in names if ("plots/" + n) not in html]
check("html_references_every_plot", not unref, unref)
# each claim's section shows the figures its numbers come from: Pre-LN's growth claim its hidden-state
# figure, inline, and the Plots section links back to a figure shown above instead of embedding it again
h3 = [c for c in html.split("<h3")[1:] if c.split("</h3>", 1)[0].endswith(
    "(a1) Pre-LN's hidden states grow with training intensity (the learning rate) by a larger factor than Peri-LN's")]
sec = h3[0] if h3 else ""
check("claim_section_figures", 'id="fig-hidden_pre"' in sec and 'href="#fig-hidden_pre"' in html.split(">Plots<", 1)[-1],
      sec[:300])
# the headline figure sits above the contents: here (one learning rate) the first loss curves
top = html.split("<nav>", 1)[0]
check("headline_figure", top.count("<figure") == 1 and 'id="fig-loss_dt1-L2-lr0.003"' in top, top[-400:])
check("html_self_contained", html.count("data:image/svg+xml;base64,") == len(plots) // 2
      and not re.search(r'(src|href)="https?:', html) and "<script" not in html and "<link" not in html, "")
badimg = []
for p in plots:
    b = open(p, "rb").read()
    if p.endswith(".png") and not (len(b) > 100 and b[:8] == b"\x89PNG\r\n\x1a\n"): badimg.append(p)
    if p.endswith(".svg") and not (b"<svg" in b[:2000] and b.rstrip().endswith(b"</svg>")): badimg.append(p)
check("plot_headers", not badimg, badimg)
PY
cat "$TMP/check"
grep -q '^FAIL' "$TMP/check" && FAILED=1

# --- 2. the same command again repeats nothing ---------------------------------------------------
mt() { $PY -c 'import os,sys; print(" ".join(str(os.stat(p).st_mtime_ns) for p in sys.argv[1:]))' "$@"; }
before=$(mt "$A"/runs/*/log.jsonl)
"$LNLAB" study "${TINY[@]}" --jobs 1 --out "$A" >"$TMP/a2.out" 2>&1
if grep -q '4 finished before, 0 trained now' "$TMP/a2.out" && [ "$before" = "$(mt "$A"/runs/*/log.jsonl)" ]; then
  ok rerun_repeats_nothing; else fail rerun_repeats_nothing "$(head -n 1 "$TMP/a2.out")"; fi

# --- 2b. a grid with several dt values, learning rates and presets, then the finished study copied
#          to a longer path and re-rendered: every finding's table keeps all its rows (Finding 2's
#          table was built through a pointer that each verdict's append could move) ------------------
W="$TMP/wide"
WIDE=(--data "$TMP/data" --presets pre,peri,post,b2t --dts 1,0.1 --depths 2 --lrs 3e-3,3e-2 --seeds 1 --dim 16 --heads 2
      --seq 16 --batch 4 --steps 8 --warmup 0 --eval-every 4 --eval-batches 1 --probe-batch 4 --threads 1 --quiet)
if "$LNLAB" study "${WIDE[@]}" --jobs 2 --out "$W" >"$TMP/w.out" 2>"$TMP/w.err"; then ok wide_study_runs
else fail wide_study_runs "exit $?: $(tail -n 3 "$TMP/w.err")"; fi
check_wide() {  # DIR: each claim's table has its rows (a table was once built through a pointer that
                #      each verdict's append could move)
  $PY - "$1" <<'PY'
import sys
md = open(sys.argv[1] + "/summary.md").read()
f = md.split("## Findings", 1)[1].split("\n## ", 1)[0]
rows = lambda s: [l for l in s.splitlines() if l.startswith("| ") and "---" not in l][1:]
got = [len(rows(part)) for part in f.split("\n### ")[1:]]
# growth, bound, exponential, LR sensitivity (needs 3 lrs), spikes, loss, dt hidden, dt loss, deep x2, B2T vs Pre-LN
want = [0, 2, 1, 0, 2, 2, 2, 2, 4, 4, 2]
bad = [] if got == want else ["claim table rows %s, expected %s" % (got, want)]
runs = md.split("## Runs", 1)[1].split("\n## ", 1)[0]
if len([l for l in runs.splitlines() if l.startswith("| ") and not l.startswith("| run") and "---" not in l]) != 16:
    bad.append("runs table")
print("; ".join(bad) if bad else "same")
PY
}
r=$(check_wide "$W" 2>&1)
if [ "$r" = same ]; then ok wide_study_tables; else fail wide_study_tables "$r"; fi
LONG="$TMP/a-much-longer-directory-name-that-moves-the-heap-layout/copy"
mkdir -p "$(dirname "$LONG")" && cp -a "$W" "$LONG"
if "$LNLAB" study "${WIDE[@]}" --jobs 1 --out "$LONG" >"$TMP/w2.out" 2>"$TMP/w2.err" &&
   grep -q '16 finished before, 0 trained now' "$TMP/w2.out"; then ok rerender_copied_study
else fail rerender_copied_study "exit $?: $(head -n 1 "$TMP/w2.out") $(tail -n 2 "$TMP/w2.err")"; fi
r=$(check_wide "$LONG" 2>&1)
if [ "$r" = same ]; then ok rerender_copied_study_tables; else fail rerender_copied_study_tables "$r"; fi

# --- 3. --jobs 2 gives the same numbers as --jobs 1 ----------------------------------------------
B="$TMP/b"
"$LNLAB" study "${TINY[@]}" --jobs 2 --out "$B" >/dev/null 2>"$TMP/b.err" || fail jobs2_runs "$(cat "$TMP/b.err")"
same_results() {  # DIR1 DIR2: the numbers of every run agree (wall times and speeds aside)
  $PY - "$1" "$2" <<'PY'
import json, os, sys
def load(d):
    out = {}
    for l in open(os.path.join(d, "results.jsonl")):
        r = json.loads(l)
        for k in ("tokens_per_s", "wall_s", "provenance"): r.pop(k, None)
        log = [json.loads(x) for x in open(os.path.join(d, "runs", r["id"], "log.jsonl"))]
        r["curve"] = [(x["step"], x.get("loss"), x.get("val_loss")) for x in log if "loss" in x or "val_loss" in x]
        r["settings"].pop("data")
        out[r["id"]] = r
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
diff = [k for k in a if a[k] != b.get(k)]
print("same" if a.keys() == b.keys() and not diff else "differ: %s" % (diff or sorted(set(a) ^ set(b))))
PY
}
r=$(same_results "$A" "$B")
if [ "$r" = same ]; then ok jobs2_same_as_jobs1; else fail jobs2_same_as_jobs1 "$r"; fi

# --- 4. killed after its first run, the study goes on without repeating it ------------------------
SLOW=(--data "$TMP/data" --presets pre,peri --dts 1 --depths 2 --lrs 3e-3 --seeds 1,2 --dim 16 --heads 2 --seq 16
      --batch 4 --steps 1500 --warmup 0 --eval-every 500 --eval-batches 2 --probe-batch 4 --checkpoint-every 100
      --threads 1 --jobs 1)
C="$TMP/c"
"$LNLAB" study "${SLOW[@]}" --quiet --out "$C" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  [ -s "$C/results.jsonl" ] && break
  sleep 0.05
done
# into the next run, past its first checkpoint: a run with a checkpoint and no result.json yet
# (waiting for a state instead of a fixed time: how far a run gets in a given time depends on
# the machine)
unfinished_with_checkpoint() {
  local d
  for d in "$1"/runs/*/; do
    [ -f "$d/result.json" ] && continue
    ls "$d"checkpoints/state_* >/dev/null 2>&1 && return 0
  done
  return 1
}
for _ in $(seq 3000); do
  unfinished_with_checkpoint "$C" && break
  sleep 0.01
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
n1=$(wc -l <"$C/results.jsonl" 2>/dev/null || echo 0)
if [ "$n1" -ge 1 ] && [ "$n1" -lt 4 ]; then
  done_logs=$($PY -c 'import json,sys; print(" ".join(sys.argv[1]+"/runs/"+json.loads(l)["id"]+"/log.jsonl" for l in open(sys.argv[1]+"/results.jsonl")))' "$C")
  before=$(mt $done_logs)
  # the killed study's child died with it: the unfinished run's log stops growing
  sizes1=$(cat "$C"/runs/*/log.jsonl | wc -c); sleep 0.3; sizes2=$(cat "$C"/runs/*/log.jsonl | wc -c)
  [ "$sizes1" = "$sizes2" ] && ok kill_stops_children || fail kill_stops_children "logs still grow after the kill"
  ckpt=$(ls "$C"/runs/*/checkpoints/state_* 2>/dev/null | grep -v -F -f <(for f in $done_logs; do dirname "$f"; done) | head -n 1)
  if "$LNLAB" study "${SLOW[@]}" --out "$C" >"$TMP/c2.out" 2>"$TMP/c2.err" &&
     grep -q "($n1 finished before, $((4 - n1)) trained now, 0 failed)" "$TMP/c2.out" &&
     [ "$(wc -l <"$C/results.jsonl")" -eq 4 ] && [ "$before" = "$(mt $done_logs)" ]; then
    ok resume_after_kill
  else fail resume_after_kill "$(head -n 1 "$TMP/c2.out") $(tail -n 2 "$TMP/c2.err")"; fi
  # the run cut short continues from its checkpoint (if it had written one) instead of starting over
  if [ -n "$ckpt" ]; then
    grep -q "resuming .* from its newest checkpoint" "$TMP/c2.err" && ok resume_uses_checkpoint ||
      fail resume_uses_checkpoint "no resume although $ckpt exists: $(cat "$TMP/c2.err")"
  fi
  D="$TMP/d"
  "$LNLAB" study "${SLOW[@]}" --out "$D" >/dev/null 2>&1
  r=$(same_results "$C" "$D")
  if [ "$r" = same ]; then ok resumed_equals_uninterrupted; else fail resumed_equals_uninterrupted "$r"; fi
else
  fail resume_after_kill "after the kill results.jsonl has $n1 records, expected 1 to 3 (runs too fast or too slow?)"
fi

# --- 4b. SIGTERM: the running child stops, saves a checkpoint and writes result.json "stopped";
#         the study counts it neither finished nor diverged, and the next study resumes it ------
G="$TMP/g"
"$LNLAB" study "${SLOW[@]}" --quiet --out "$G" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  ls "$G"/runs/*/checkpoints/state_* >/dev/null 2>&1 && break
  sleep 0.05
done
kill -TERM "$pid"; wait "$pid"; rc=$?
stopped=$($PY - "$G" 2>&1 <<'PY'
import glob, json, os, sys
g = sys.argv[1]
recs = [json.loads(l)["id"] for l in open(g + "/results.jsonl")] if os.path.exists(g + "/results.jsonl") else []
stopped = []
for f in glob.glob(g + "/runs/*/result.json"):
    res, rid = json.load(open(f)), os.path.basename(os.path.dirname(f))
    if res["status"] == "stopped":
        assert res["stop_reason"] == "SIGTERM" and 0 < res["steps"] < res["steps_planned"] == 1500, res
        assert rid not in recs, "a stopped run has a record: " + rid
        stopped.append(rid)
assert len(stopped) == 1, "stopped runs: %s" % stopped
print(stopped[0])
PY
) && [ "$rc" -eq 143 ] && ok sigterm_child_result_stopped ||
  fail sigterm_child_result_stopped "study exit $rc: $(printf '%s' "$stopped" | tail -n 2)"
if "$LNLAB" study "${SLOW[@]}" --out "$G" >"$TMP/g2.out" 2>"$TMP/g2.err" && [ "$(wc -l <"$G/results.jsonl")" -eq 4 ] &&
   grep -q "resuming $stopped from its newest checkpoint" "$TMP/g2.err" &&
   [ "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$G/runs/$stopped/result.json")" = finished ]; then
  ok sigterm_stopped_run_resumed
else fail sigterm_stopped_run_resumed "$(head -n 1 "$TMP/g2.out") $(grep -v '^study: \[' "$TMP/g2.err" | tail -n 2)"; fi
if [ -f "$TMP/d/results.jsonl" ]; then
  r=$(same_results "$G" "$TMP/d")
  if [ "$r" = same ]; then ok sigterm_resumed_equals_uninterrupted; else fail sigterm_resumed_equals_uninterrupted "$r"; fi
fi

# --- 5. without gnuplot: the report says why there are no plots ----------------------------------
E="$TMP/e"
cp -r "$A" "$E"
if "$LNLAB" study "${TINY[@]}" --out "$E" --gnuplot "$TMP/no-such-gnuplot" >"$TMP/e.out" 2>&1 &&
   grep -q 'No plots: gnuplot' "$E/summary.md" && grep -q 'No plots: gnuplot' "$E/report.html" &&
   ! ls "$E"/plots/*.png >/dev/null 2>&1 && grep -q 'no plots: gnuplot' "$TMP/e.out"; then ok report_without_gnuplot
else fail report_without_gnuplot "$(cat "$TMP/e.out")"; fi

# --- 6. errors -------------------------------------------------------------------------------------
expect_error changed_setting_refused 2 "run .* was made with weight_decay 0.1, this study asks for weight_decay 0.2" -- \
  "$LNLAB" study "${TINY[@]}" --out "$A" --weight-decay 0.2
printf '{"steps": 20,\n "lrs": [0.003' >"$TMP/bad.json"
expect_error config_bad_json 2 "bad.json: not valid JSON at line 2" -- "$LNLAB" study --config "$TMP/bad.json" --out "$TMP/x"
echo '{"presets": ["pre", "bogus"]}' >"$TMP/preset.json"
expect_error config_unknown_preset 2 "preset.json: field 'presets\[1\]': 'bogus' is not a preset" -- \
  "$LNLAB" study --config "$TMP/preset.json" --out "$TMP/x"
echo '{"grids": [{"name": "g", "presets": ["peri"]}, {"presets": ["nope"]}]}' >"$TMP/grid.json"
expect_error config_grid_unknown_preset 2 "grid.json: field 'grids\[1\].presets\[0\]': 'nope' is not a preset" -- \
  "$LNLAB" study --config "$TMP/grid.json" --out "$TMP/x"
echo '{"steps": -5}' >"$TMP/steps.json"
expect_error config_negative_steps 2 "steps.json: field 'steps': expected an integer in \[1, .*got -5" -- \
  "$LNLAB" study --config "$TMP/steps.json" --out "$TMP/x"
echo '{"stepz": 5}' >"$TMP/unknown.json"
expect_error config_unknown_field 2 "unknown.json: unknown field 'stepz'" -- "$LNLAB" study --config "$TMP/unknown.json" --out "$TMP/x"
echo '{"steps": 10, "warmup": 10}' >"$TMP/warm.json"
expect_error config_warmup 2 "warm.json: field 'warmup'" -- "$LNLAB" study --config "$TMP/warm.json" --out "$TMP/x"
expect_error config_missing_file 2 "nothere.json" -- "$LNLAB" study --config "$TMP/nothere.json" --out "$TMP/x"
expect_error flag_unknown_preset 2 "--presets: 'bogus' is not a preset" -- "$LNLAB" study --presets pre,bogus --out "$TMP/x"
expect_error flag_negative_dt 2 "--dts" -- "$LNLAB" study --dts -1 --out "$TMP/x"
[ -e "$TMP/x" ] && fail errors_write_nothing "$TMP/x was created" || ok errors_write_nothing

# --- 6b. options per grid and per preset entry: distinct runs, each trained with its options ------
cat >"$TMP/opts.json" <<EOF
{"data": "$TMP/data", "dim": 16, "heads": 2, "seq": 16, "batch": 4, "steps": 6, "warmup": 0, "eval_every": 3,
 "eval_batches": 1, "probe_batch": 4, "threads": 1, "jobs": 2, "depths": [2],
 "grids": [{"name": "embed", "presets": ["peri", {"preset": "peri", "embed_norm": false}]},
           {"name": "init", "presets": ["post", {"preset": "post", "init_std": 0.02, "resid_scale_init": true,
             "embed_scale": false, "bias": false}], "steps": 8, "warmup": 2}]}
EOF
O="$TMP/opts"
if "$LNLAB" study --config "$TMP/opts.json" --out "$O" --quiet >"$TMP/o.out" 2>"$TMP/o.err" &&
   grep -q '^study: 4 runs (0 finished before, 4 trained now, 0 failed)' "$TMP/o.out"; then ok options_study_runs
else fail options_study_runs "exit $?: $(head -n 1 "$TMP/o.out") $(tail -n 2 "$TMP/o.err")"; fi
r=$($PY - "$O" 2>&1 <<'PY'
import json, os, sys
o = sys.argv[1]
def model(run):
    c = json.load(open(os.path.join(o, "runs", run, "config.json")))
    m, t = c["model"], c["train"]
    bias = {l[s]["bias"] for l in m["layers"] for s in ("attn", "mlp")}
    return (m["preset"], m["embed_norm"], m["embed_scale"], round(m["init"]["std"], 6), m["init"]["std_rule"],
            m["init"]["resid_scale"], bias, t["steps"], t["warmup"])
want = {
    "peri-dt1-L2-lr0.003-s1": ("peri", True, False, 0.02, "fixed", False, {True}, 6, 0),
    "peri+noen-dt1-L2-lr0.003-s1": ("peri", False, False, 0.02, "fixed", False, {True}, 6, 0),
    "post+steps8+wu2-dt1-L2-lr0.003-s1": ("post", False, True, 0.25, "1/sqrt(C)", False, {True}, 8, 2),
    "post+std0.02+rs+nobias+noes+steps8+wu2-dt1-L2-lr0.003-s1": ("post", False, False, 0.02, "fixed", True, {False}, 8, 2),
}
runs = sorted(os.listdir(os.path.join(o, "runs")))
recs = sorted(json.loads(l)["id"] for l in open(os.path.join(o, "results.jsonl")))
bad = [] if runs == sorted(want) == recs else ["runs %s, records %s" % (runs, recs)]
bad += ["%s: %s, want %s" % (r, model(r), w) for r, w in want.items() if r in runs and model(r) != w]
print("; ".join(bad) if bad else "same")
PY
)
if [ "$r" = same ]; then ok options_runs_distinct_and_recorded; else fail options_runs_distinct_and_recorded "$r"; fi
# runs of other options are another setup, not more seeds: each variant has its own loss figure,
# and peri's curve in the plain one stands for its single run
if [ -f "$O/plots/loss_noen-dt1-L2-lr0.003.svg" ] && [ -f "$O/plots/loss_steps8+wu2-dt1-L2-lr0.003.svg" ] &&
   grep -q "peri (1 seed) train" "$O/plots/loss_dt1-L2-lr0.003.svg"; then ok options_loss_figures_per_variant
else fail options_loss_figures_per_variant "$(ls "$O/plots" | grep '^loss_' | tr '\n' ' ')"; fi
"$LNLAB" study --config "$TMP/opts.json" --print-config >"$TMP/opts.1.json" &&
  "$LNLAB" study --config "$TMP/opts.1.json" --print-config | cmp -s - "$TMP/opts.1.json" &&
  grep -q '"embed_norm": false' "$TMP/opts.1.json" && ok options_print_config_roundtrip ||
  fail options_print_config_roundtrip "$(head -c 300 "$TMP/opts.1.json")"
echo '{"grids": [{"presets": [{"preset": "peri", "embed_norm": "maybe"}]}]}' >"$TMP/optbad.json"
expect_error config_option_value 2 "optbad.json: field 'grids\[0\].presets\[0\].embed_norm': 'maybe' is not one of preset\|on\|off" -- \
  "$LNLAB" study --config "$TMP/optbad.json" --out "$TMP/x"
expect_error flag_init_std 2 "--init-std: expected a number in \(0, 10\], 1/sqrt\(C\) or preset, got 'wide'" -- \
  "$LNLAB" study --init-std wide --out "$TMP/x"
"$LNLAB" study --preset-study default --embed-norm on --bias off --print-config >"$TMP/flags.json" &&
  $PY -c 'import json,sys; c = json.load(open(sys.argv[1])); sys.exit(0 if c["embed_norm"] is True and c["bias"] is False else 1)' \
    "$TMP/flags.json" && ok option_flags_set_shared || fail option_flags_set_shared "$(grep -E 'embed_norm|bias' "$TMP/flags.json")"
[ -e "$TMP/x" ] && fail option_errors_write_nothing "$TMP/x was created" || ok option_errors_write_nothing

# --- 6c. precision as an axis: the fp32 and bf16 runs of one point are two runs (ids differing by
#          -bf16), each trained at its own precision whatever LNLAB_BF16 the study has, recorded,
#          tabled and plotted apart; the same command again re-renders the report and repeats nothing.
#          Without AVX512-BF16 the study is refused before any run, naming the field --------------------
PREC=(--data "$TMP/data" --presets pre --dts 1 --depths 2 --lrs 3e-3 --seeds 1 --precisions fp32,bf16 --dim 16 --heads 2
      --seq 16 --batch 4 --steps 6 --warmup 0 --eval-every 3 --eval-batches 1 --probe-batch 4 --threads 1 --jobs 2 --quiet)
P="$TMP/prec"
expect_error flag_unknown_precision 2 "^lnlab: error: --precisions: 'fp16' is not a precision \(fp32\|bf16\)$" -- \
  "$LNLAB" study "${PREC[@]}" --precisions fp32,fp16 --out "$P"
if LNLAB_BF16=1 "$LNLAB" train --data "$TMP/data" --preset pre --layers 1 --heads 2 --dim 16 --seq 16 --batch 2 --steps 1 \
     --out "$TMP/bf16-probe" 2>&1 | grep -q "no AVX512-BF16"; then
  echo "skip precision_axis: this CPU or build has no AVX512-BF16"
  expect_error precision_axis_unavailable 2 \
    "^lnlab: error: lnlab study: field 'precisions' \(grid 'flags'\): bf16 needs AVX512-BF16" -- \
    "$LNLAB" study "${PREC[@]}" --out "$P"
  [ -e "$P" ] && fail precision_unavailable_writes_nothing "$P was created" || ok precision_unavailable_writes_nothing
elif LNLAB_BF16=1 "$LNLAB" study "${PREC[@]}" --out "$P" >"$TMP/p.out" 2>"$TMP/p.err"; rc=$?
     [ "$rc" -eq 0 ] && grep -q '^study: 2 runs (0 finished before, 2 trained now, 0 failed)' "$TMP/p.out"; then
  ok precision_axis_runs
  r=$($PY - "$P" 2>&1 <<'PY'
import csv, json, os, sys
p = sys.argv[1]
recs = {r["id"]: r for r in map(json.loads, open(os.path.join(p, "results.jsonl")))}
want = {"pre-dt1-L2-lr0.003-s1": "fp32", "pre-dt1-L2-lr0.003-s1-bf16": "bf16"}
bad = [] if set(recs) == set(want) else ["records %s" % sorted(recs)]
for rid, prec in want.items():
    if rid not in recs: continue
    train = json.load(open(os.path.join(p, "runs", rid, "config.json")))["train"]["precision"]
    if (recs[rid]["precision"], recs[rid]["settings"]["precision"], train) != (prec, prec, prec):
        bad.append("%s: record %s, settings %s, trained %s" % (rid, recs[rid]["precision"],
                   recs[rid]["settings"]["precision"], train))
md = open(os.path.join(p, "summary.md")).read()
runs = md.split("## Runs", 1)[1].split("\n## ", 1)[0]
rows = [[c.strip() for c in l.strip("|").split("|")] for l in runs.splitlines() if l.startswith("| ")]
if not rows or rows[0][:2] != ["run", "precision"] or sorted(r[:2] for r in rows[1:] if "---" not in r[0]) != sorted(
        [k, v] for k, v in want.items()):
    bad.append("runs table %s" % rows[:3])
plots = os.listdir(os.path.join(p, "plots"))
if not {"loss_dt1-L2-lr0.003.svg", "loss_bf16-dt1-L2-lr0.003.svg"} <= set(plots):
    bad.append("loss figures %s" % sorted(x for x in plots if x.startswith("loss_")))
rc = {r["run"]: r["precision"] for r in csv.DictReader(open(os.path.join(p, "runs.csv")))}
if rc != want: bad.append("runs.csv %s" % rc)
print("; ".join(bad) if bad else "same")
PY
)
  if [ "$r" = same ]; then ok precision_runs_apart; else fail precision_runs_apart "$r"; fi
  rm -f "$P/summary.md"
  if "$LNLAB" study "${PREC[@]}" --out "$P" >"$TMP/p2.out" 2>"$TMP/p2.err" &&
     grep -q '2 finished before, 0 trained now' "$TMP/p2.out" && grep -q '| pre-dt1-L2-lr0.003-s1-bf16 | bf16 |' "$P/summary.md"
  then ok precision_rerender; else fail precision_rerender "$(head -n 1 "$TMP/p2.out") $(tail -n 2 "$TMP/p2.err")"; fi
else
  fail precision_axis_runs "exit $rc: $(head -n 1 "$TMP/p.out") $(tail -n 2 "$TMP/p.err")"
fi

# --- 7. built-in configs print as JSON that --config reads back ----------------------------------
for s in default thorough paper; do
  "$LNLAB" study --preset-study "$s" --print-config >"$TMP/$s.json" &&
    "$LNLAB" study --config "$TMP/$s.json" --print-config >"$TMP/$s.2.json" &&
    cmp -s "$TMP/$s.json" "$TMP/$s.2.json" && ok "print_config_roundtrip_$s" ||
    fail "print_config_roundtrip_$s" "differs or failed"
done
if $PY -c 'import json,sys
c = json.load(open(sys.argv[1])); g = c["grids"][0]
ok = (g["sizes"] == ["gpt2", "gpt2-large", "gpt2-xl"] and g["presets"] == ["post", "pre", "peri"] and g["dts"] == [1, 0.1]
      and g["lrs"] == [0.0006] and c["seq"] == 1024 and c["warmup"] == 2000 and c["beta2"] == 0.95 and c["weight_decay"] == 0.1
      and c["grad_clip"] == 1 and abs(c["min_lr_frac"] - 0.1) < 1e-12 and c["schedule"] == "cosine")
sys.exit(0 if ok else 1)' "$TMP/paper.json"; then ok paper_config; else fail paper_config "$(cat "$TMP/paper.json")"; fi
# --grids keeps the named grids of a study, in the study's order; an unknown name is refused
"$LNLAB" study --preset-study thorough --grids depth,lr-sweep --print-config >"$TMP/g.json" &&
  $PY -c 'import json,sys; c = json.load(open(sys.argv[1])); sys.exit(0 if [g["name"] for g in c["grids"]] == ["lr-sweep", "depth"] else 1)' \
    "$TMP/g.json" && ok grids_flag_keeps || fail grids_flag_keeps "$(head -c 300 "$TMP/g.json")"
expect_error grids_flag_unknown 2 "^lnlab: error: --grids: no grid 'nosuch' in this study \(its grids: lr-sweep, lr-sweep-dt, depth, deep-post\)$" -- \
  "$LNLAB" study --grids nosuch --print-config
"$LNLAB" study --preset-study paper --steps 5000 --seeds 1,2 --print-config | grep -q '"steps":.*5000' &&
  ok flags_override_config || fail flags_override_config "--steps did not override"

finish
