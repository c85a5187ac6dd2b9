# lnlab plot RUN: the figures and page of a finished run (every PNG and SVG there and not empty,
# the page naming only files that exist), of a run while it trains (its lock is left alone and the
# run finishes undisturbed), of the same run killed midway, of a diverged run (NaN in its log), and
# bad input as one-line errors: no directory, no log, a line that is not a record, a torn last
# line (an error, unless a process holds the run's lock: then it is skipped and said).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
PY=/usr/bin/python3

"$LNLAB" prepare --input /usr/share/common-licenses/GPL-3 --tokenizer byte --val-fraction 0.1 --out "$TMP/data" \
  >/dev/null 2>&1 || { fail prepare "lnlab prepare failed"; finish; }
SMALL=(--data "$TMP/data" --layers 2 --heads 2 --dim 16 --seq 16 --batch 4 --quiet)
FIGS="loss lr grad_norm tokens_per_s heatmap_hidden_mean_abs heatmap_grad_norm heatmap_update_rms heatmap_attn_logit_max"

# check_run NAME RUN STATUS FIGURES: the page says STATUS, the FIGURES are there as PNG and SVG, not
# empty, and in the page, and the page names no file that does not exist
check_run() {
  local why
  why=$("$PY" - "$2" "$3" "$4" 2>&1 <<'PY'
import os, re, sys
run, status, figs = sys.argv[1], sys.argv[2], sys.argv[3].split()
page = open(os.path.join(run, "report.html")).read()
bad = []
if "Status: " + status not in page: bad.append("page does not say status %s" % status)
for f in figs:
    for ext in ("png", "svg"):
        p = os.path.join(run, "plots", f + "." + ext)
        if not os.path.isfile(p) or os.path.getsize(p) == 0: bad.append("missing or empty: plots/%s.%s" % (f, ext))
        if "plots/%s.%s" % (f, ext) not in page: bad.append("page does not show plots/%s.%s" % (f, ext))
png = open(os.path.join(run, "plots", figs[0] + ".png"), "rb").read(8) if figs else b"\x89PNG\r\n\x1a\n"
if png != b"\x89PNG\r\n\x1a\n": bad.append("not a PNG")
refs = re.findall(r'(?:src|href)="([^"]+)"', page)
dead = [r for r in refs if not r.startswith(("data:", "#")) and not os.path.isfile(os.path.join(run, r))]
if dead: bad.append("page names missing files: %s" % dead[:3])
if page.count("<img ") != len(figs): bad.append("%d images in the page, expected %d" % (page.count("<img "), len(figs)))
left = [n for n in os.listdir(os.path.join(run, "plots")) if ".tmp" in n] + [n for n in os.listdir(run) if ".tmp." in n]
if left: bad.append("temporary files left: %s" % left)
print("; ".join(bad))
sys.exit(1 if bad else 0)
PY
  ) && ok "$1" || fail "$1" "$why"
}

# --- a finished run --------------------------------------------------------------------------------
R="$TMP/done"
"$LNLAB" train "${SMALL[@]}" --out "$R" --steps 30 --eval-every 10 --eval-batches 2 --diag-every 5 2>"$TMP/err" ||
  { fail train "$(cat "$TMP/err")"; finish; }
if "$LNLAB" plot "$R" >"$TMP/out" 2>"$TMP/err" && grep -q "report.html: finished; 8 figures" "$TMP/out"; then
  ok plot_finished; else fail plot_finished "$(cat "$TMP/out" "$TMP/err")"; fi
check_run page_finished "$R" finished "$FIGS"
# the heatmaps hold the log's diag records: 6 records (steps 5..30) x 3 stream entries
n=$(grep -vc '^#' "$R/plots/data/heatmap_hidden_mean_abs.0.dat")
[ "$n" -eq 18 ] && ok heatmap_cells || fail heatmap_cells "$n cells of hidden_mean_abs, expected 18"
grep -q "Provenance" "$R/report.html" && grep -q "lnlab train" "$R/report.html" && ok page_provenance ||
  fail page_provenance "no provenance with the command in the page"

# --- while a run trains, then killed midway ----------------------------------------------------------
K="$TMP/live"
"$LNLAB" train "${SMALL[@]}" --out "$K" --steps 100000 --diag-every 5 2>/dev/null &
kpid=$!
for _ in $(seq 100); do [ -f "$K/log.jsonl" ] && [ "$(grep -c diag "$K/log.jsonl")" -ge 2 ] && break; sleep 0.1; done
if "$LNLAB" plot "$K" >"$TMP/out" 2>"$TMP/err" && grep -q "report.html: running; 8 figures" "$TMP/out"; then
  ok plot_running; else fail plot_running "$(cat "$TMP/out" "$TMP/err")"; fi
check_run page_running "$K" "running (PID $kpid" "$FIGS"
# the run kept its lock and goes on writing records
n1=$(grep -c '"loss"' "$K/log.jsonl"); sleep 0.5; n2=$(grep -c '"loss"' "$K/log.jsonl")
kill -0 "$kpid" 2>/dev/null && [ "$n2" -gt "$n1" ] && ok run_goes_on || fail run_goes_on "the run stopped ($n1 -> $n2 records)"
kill -9 "$kpid" 2>/dev/null; wait "$kpid" 2>/dev/null
if "$LNLAB" plot "$K" >"$TMP/out" 2>"$TMP/err" && grep -q "report.html: stopped; 8 figures" "$TMP/out"; then
  ok plot_killed; else fail plot_killed "$(cat "$TMP/out" "$TMP/err")"; fi
check_run page_killed "$K" "stopped after" "$FIGS"

# --- a diverged run: ReZero at lr 10 without clipping, NaN within a few steps -------------------------
D="$TMP/div"
"$LNLAB" train --data "$TMP/data" --layers 4 --heads 4 --dim 64 --seq 64 --batch 8 --quiet --out "$D" --preset rezero \
  --steps 30 --lr 10 --grad-clip 0 --diag-every 1 2>/dev/null
grep -q '"diverged": true' "$D/log.jsonl" || fail diverged_setup "the run did not diverge"
if "$LNLAB" plot "$D" >"$TMP/out" 2>"$TMP/err" && grep -q "report.html: diverged; 8 figures" "$TMP/out"; then
  ok plot_diverged; else fail plot_diverged "$(cat "$TMP/out" "$TMP/err")"; fi
check_run page_diverged "$D" "diverged at step" "$FIGS"
# the diverged step's non-finite figures are grey cells, not dropped
ls "$D"/plots/data/heatmap_*.0.none.dat >/dev/null 2>&1 && ok heatmap_nonfinite_cells ||
  fail heatmap_nonfinite_cells "no cells for the non-finite values of the diverged step"

# --- without diag records: the curves, and the page says why there are no heatmaps ------------------
N="$TMP/nodiag"
"$LNLAB" train "${SMALL[@]}" --out "$N" --steps 10 --diag-every 0 2>/dev/null
if "$LNLAB" plot "$N" >"$TMP/out" 2>&1 && grep -q "4 figures" "$TMP/out" && grep -q "no diag records" "$N/report.html"
then ok plot_no_diag; else fail plot_no_diag "$(cat "$TMP/out")"; fi

# --- bad input ---------------------------------------------------------------------------------------
expect_error missing_dir 1 "nope: No such file or directory" -- "$LNLAB" plot "$TMP/nope"
mkdir -p "$TMP/empty"
expect_error no_log 1 "empty/log.jsonl: No such file" -- "$LNLAB" plot "$TMP/empty"
expect_error not_a_dir 1 "not a directory" -- "$LNLAB" plot "$R/config.json"
expect_error no_run_given 2 "give one run directory" -- "$LNLAB" plot
T="$TMP/torn"
mkdir -p "$T" && cp "$R/log.jsonl" "$R/config.json" "$T/"
printf '{"step": 31, "loss": 3.1' >>"$T/log.jsonl"
line=$(($(wc -l <"$T/log.jsonl") + 1))
expect_error torn_last_line 1 "torn/log.jsonl:$line: the last line is cut short" -- "$LNLAB" plot "$T"
# the same torn line while a process holds the run's lock (as a trainer between two writes)
flock "$T/.lock" sleep 30 &
fpid=$!
for _ in $(seq 50); do grep -q FLOCK /proc/locks 2>/dev/null && break; sleep 0.1; done
if "$LNLAB" plot "$T" >"$TMP/out" 2>&1 && grep -q "line $line of .*still being written; skipped" "$TMP/out" &&
   grep -q "report.html: running" "$TMP/out" && grep -q "still being written" "$T/report.html"; then
  ok torn_line_of_running_run; else fail torn_line_of_running_run "$(cat "$TMP/out")"; fi
kill "$fpid" 2>/dev/null; wait "$fpid" 2>/dev/null
G="$TMP/garbage"
mkdir -p "$G" && { head -n 3 "$R/log.jsonl"; echo 'not json'; tail -n 2 "$R/log.jsonl"; } >"$G/log.jsonl"
expect_error bad_line 1 "garbage/log.jsonl:4: not a JSON record" -- "$LNLAB" plot "$G"
finish
