# The study's verdicts follow their rules: a study whose results.jsonl holds made-up records
# (every run finished, so nothing trains) is rendered, and each claim's verdict must be the one the
# numbers call for: shows where they differ beyond the seeds' spread, a tie (does not show) within
# it, inconclusive with one seed, and no verdict for deep Post-LN vs B2T when neither trained.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

"$LNLAB" prepare --input /usr/share/common-licenses/GPL-3 --tokenizer byte --val-fraction 0.1 --out "$TMP/data" \
  >/dev/null 2>&1 || { fail prepare "lnlab prepare failed"; finish; }

cat >"$TMP/config.json" <<EOF
{"data": "$TMP/data", "dim": 16, "heads": 2, "seq": 16, "batch": 4, "steps": 20, "warmup": 0, "threads": 1,
 "grids": [{"name": "sweep", "presets": ["pre", "peri"], "dts": [1], "depths": [8], "lrs": [1e-3, 1e-2, 1e-1]},
           {"name": "deep", "presets": ["post", "b2t", "pre"], "dts": [1], "depths": [6, 18], "lrs": [1e-3]}]}
EOF

# WORLD SEEDS OUT: writes OUT/results.jsonl of a world:
#   shows  Pre-LN grows 100x with the lr (exponential in depth), Peri-LN 1.2x (linear); Peri-LN flatter
#          in lr and 0.1 lower at its best; Pre-LN spikes at lr 0.1; at L18 Post-LN stays at the unigram
#          loss with a vanishing gradient and B2T trains, below Pre-LN
#   tie    the same, but Peri-LN's best loss is within the seeds' spread of Pre-LN's, and B2T did
#          not train at L18 either
world() {
  mkdir -p "$3"
  $PY - "$1" "$2" "$3/results.jsonl" <<'PY'
import json, math, sys
world, seeds, out = sys.argv[1], [int(s) for s in sys.argv[2].split(",")], sys.argv[3]
UNI, INIT = 3.0, 5.6
def layers(L, profile, scale):
    ls = []
    for l in range(L + 1):
        h = scale * (0.5 * 1.5 ** l if profile == "exp" else 1.0 + l)
        ls.append({"layer": l, "hidden_mean_abs": h, "hidden_var": h * h, "hidden_var_data": 0.5 * h * h,
                   "grad_norm": 1.0, "sensitivity": None, "dx_norm": 1.0})
    return ls
def rec(preset, depth, lr, seed, val, scale, profile, spikes=0, rise=0.2, ratio=0.1):
    return {"id": "%s-dt1-L%d-lr%g-s%d" % (preset, depth, lr, seed), "preset": preset, "variant": "", "dt": 1,
            "depth": depth, "lr": lr, "seed": seed, "final_val_loss": val, "final_train_loss": val,
            "diverged_at_step": None, "spikes": spikes, "spike_nats": 1.5, "max_loss_rise": rise,
            "max_loss_rise_step": 10, "init_loss": INIT, "unigram_val_loss": UNI, "min_grad_ratio": ratio,
            "min_grad_ratio_step": 10, "diag_records": 2, "layers": layers(depth, profile, scale)}
rs = []
for s in seeds:
    j = 0.005 * s  # the seeds' spread: 0.01 over seeds 1..3
    pre = {1e-3: 2.5, 1e-2: 2.4, 1e-1: 2.9}
    peri = {1e-3: 2.45, 1e-2: 2.3, 1e-1: 2.4} if world == "shows" else {1e-3: 2.45, 1e-2: 2.398, 1e-1: 2.45}
    for lr in (1e-3, 1e-2, 1e-1):
        rs.append(rec("pre", 8, lr, s, pre[lr] + j, lr / 1e-3 * (1 + 0.01 * s), "exp",
                      spikes=1 if lr == 1e-1 else 0, rise=2.0 if lr == 1e-1 else 0.3))
        rs.append(rec("peri", 8, lr, s, peri[lr] + j, 1.2 if lr == 1e-1 else 1.0, "lin", rise=0.3))
    for depth in (6, 18):
        post_ok = depth == 6
        b2t_ok = depth == 6 or world == "shows"
        rs.append(rec("post", depth, 1e-3, s, (2.2 if post_ok else 3.05) + j, 1, "lin", ratio=0.05 if post_ok else 1e-8))
        rs.append(rec("b2t", depth, 1e-3, s, (2.2 if b2t_ok else 3.05) + j, 1, "lin", ratio=1e-2 if b2t_ok else 1e-7))
        rs.append(rec("pre", depth, 1e-3, s, 2.35 + j, 1, "exp"))
with open(out, "w") as f:
    for r in rs: f.write(json.dumps(r) + "\n")
PY
}

verdicts() {  # DIR: "id|verdict" per claim, from summary.md's verdict table
  $PY - "$1" <<'PY'
import sys
md = open(sys.argv[1] + "/summary.md").read()
top = md.split("\n## ", 1)[0]  # the verdict table comes before every section
for l in top.splitlines():
    c = [x.strip() for x in l.strip().strip("|").split("|")]
    if len(c) == 3 and c[0] not in ("id", "---"): print("%s|%s" % (c[0], c[2]))
PY
}

expect() {  # NAME DIR WANT...: the verdicts, in the claims' order
  local name=$1 dir=$2; shift 2
  local got; got=$(verdicts "$dir" | tr '\n' ';')
  local want; want=$(printf '%s;' "$@")
  [ "$got" = "$want" ] && ok "$name" || fail "$name" "got $got, want $want"
}

for w in shows:1,2,3 tie:1,2,3 shows:1; do
  world "${w%%:*}" "${w#*:}" "$TMP/$w"
  seeds=${w#*:}
  if "$LNLAB" study --config "$TMP/config.json" --seeds "$seeds" --out "$TMP/$w" --quiet >"$TMP/out" 2>"$TMP/err" &&
     grep -q "0 trained now" "$TMP/out"; then ok "render_$w"
  else fail "render_$w" "exit $?: $(head -n 2 "$TMP/out") $(tail -n 2 "$TMP/err")"; continue; fi
done

# claims: a1 growth, a1 linear bound, a1 exponential, a2 LR sensitivity, a2 spikes, a3 loss, a4 dt
# hidden, a4 dt loss, b trains, b gradient, b B2T vs Pre-LN (no dt < 1 in these worlds: inconclusive)
expect verdicts_shows "$TMP/shows:1,2,3" "a1|shows" "a1|shows" "a1|shows" "a2|shows" "a2|shows" "a3|shows" \
  "a4|inconclusive" "a4|inconclusive" "b|shows" "b|shows" "b|shows"
expect verdicts_tie_and_no_deep_verdict "$TMP/tie:1,2,3" "a1|shows" "a1|shows" "a1|shows" "a2|shows" "a2|shows" \
  "a3|does not show" "a4|inconclusive" "a4|inconclusive" "b|inconclusive" "b|inconclusive" "b|inconclusive"
expect verdicts_one_seed "$TMP/shows:1" "a1|shows" "a1|shows" "a1|shows" "a2|inconclusive" "a2|shows" \
  "a3|inconclusive" "a4|inconclusive" "a4|inconclusive" "b|shows" "b|shows" "b|inconclusive"

# the LR sweep's figure names each preset's LR sensitivity in its legend: Pre-LN's val losses
# (2.5, 2.4, 2.9) + j give 0.2 in every seed, Peri-LN's (2.45, 2.3, 2.4) + j give 0.25 / 3
gp="$TMP/shows:1,2,3/plots/data/lr_dt1-L8.gp"
if [ ! -f "$gp" ] && ! command -v gnuplot >/dev/null; then echo "skip lr_figure_sensitivity: no gnuplot"
elif grep -q "pre (LR sensitivity 0.2, 3 seeds)" "$gp" && grep -q "peri (LR sensitivity 0.0833, 3 seeds)" "$gp"; then
  ok lr_figure_sensitivity
else fail lr_figure_sensitivity "$(grep -o "title '[^']*LR sensitivity[^']*'" "$gp" 2>&1 | head -n 2)"; fi

# the reasons are in the text, with the numbers
md="$TMP/tie:1,2,3/summary.md"
grep -q "Post-LN and B2T did not train at depth 18: no verdict" "$md" && ok says_no_verdict_why ||
  fail says_no_verdict_why "$(grep -m1 'Deep Post-LN fails' -A2 "$md")"
grep -Eq "a tie: the difference 0\.00[0-9]* is within the seeds' spread 0\.01" "$md" && ok says_tie_with_numbers ||
  fail says_tie_with_numbers "$(grep -m1 'tie' "$md")"
grep -q "1 and 1 seeds: the spread over seeds is unknown" "$TMP/shows:1/summary.md" && ok says_one_seed ||
  fail says_one_seed "$(grep -m1 'seeds' "$TMP/shows:1/summary.md")"
grep -q "2.41 \[2.405-2.415\] (3 seeds)" "$TMP/shows:1,2,3/summary.md" && ok gives_median_range_seeds ||
  fail gives_median_range_seeds "$(grep -m1 'best val loss' -A4 "$TMP/shows:1,2,3/summary.md")"
# the sweep's figure: medians over seeds with their range, runs that did not train apart
d="$TMP/shows:1,2,3/plots"
if [ -s "$d/lr_dt1-L8.png" ] && [ -s "$d/lr_dt1-L8.svg" ] &&
   grep -q "^0.01 2.41 2.405 2.415$" "$d/data/lr_dt1-L8.pre.trained.dat" &&
   [ "$(awk '{print $1}' "$d/data/lr_dt1-L8.pre.untrained.dat" | sort -u)" = "0.1" ] &&
   [ ! -e "$d/data/lr_dt1-L8.peri.untrained.dat" ]; then ok lr_figure
else fail lr_figure "$(ls "$d" | head -n 5) $(cat "$d/data/lr_dt1-L8.pre.trained.dat" 2>&1 | head -n 3)"; fi
# runs that did not train are marked in the runs table
grep -q "| post-dt1-L18-lr0.001-s1 | \*\*no\*\* |" "$md" && ok untrained_marked || fail untrained_marked "$(grep -m1 'post-dt1-L18' "$md")"
finish
