#!/usr/bin/env bash
# Data parallelism on one machine: the same global batch trained as 1 process x 1 thread,
# 1 process x P threads (OpenMP) and P processes x 1 thread (mpirun). Prints, per configuration,
# the median and the fastest step time (first step of each run excluded), tokens/s at the
# median, and for the MPI runs the time per step spent in communication (which includes waiting
# for the slower rank). The configurations alternate, ROUNDS times, so that load from elsewhere
# hits them alike; on a busy machine the fastest step is the better estimate.
#   bench/dist.sh DATA [LAYERS DIM SEQ BATCH STEPS P ROUNDS]    (docs/DISTRIBUTED.md)
# DATA is a directory made by lnlab prepare; BATCH is the global batch (rows), a multiple of P.
set -eu
cd "$(dirname "$0")/.."
DATA=${1:?usage: bench/dist.sh DATA [LAYERS DIM SEQ BATCH STEPS P ROUNDS]}
L=${2:-6} C=${3:-384} T=${4:-256} B=${5:-8} S=${6:-6} P=${7:-2} R=${8:-2}
LNLAB=${LNLAB_BIN:-./lnlab}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
H=$((C / 64 > 0 ? C / 64 : 1))
ARGS=(train --data "$DATA" --preset pre --layers "$L" --heads "$H" --dim "$C" --seq "$T" --steps "$S"
      --warmup 1 --eval-batches 1 --seed 1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$R"); do
  OMP_NUM_THREADS=1 "$LNLAB" "${ARGS[@]}" --batch "$B" --out "$tmp/1x1.$r" --quiet
  OMP_NUM_THREADS=$P "$LNLAB" "${ARGS[@]}" --batch "$B" --out "$tmp/1x$P.$r" --quiet
  OMP_NUM_THREADS=1 mpirun --bind-to core -np "$P" "$LNLAB" "${ARGS[@]}" --batch $((B / P)) --out "$tmp/${P}x1.$r" \
    2>"$tmp/${P}x1.$r.err" >/dev/null
done
echo "model L $L C $C T $T (preset pre, $(cat "$DATA/meta.json" | sed -n 's/.*"tokenizer":[^"]*"\([a-z0-9]*\)".*/\1/p') vocab), global batch $B x $T = $((B * T)) tokens/step, $S steps x $R rounds"
echo "$(nproc) cores; load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$tmp" "$P" "$R" "$((B * T))" <<'EOF'
import json, re, statistics, sys
tmp, P, R, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for cfg in ("1x1", "1x%d" % P, "%dx1" % P):
    ms, comm = [], []
    for r in range(1, R + 1):
        steps = [x["ms"] for x in map(json.loads, open("%s/%s.%d/log.jsonl" % (tmp, cfg, r))) if "loss" in x]
        ms += steps[1:]
        if cfg.endswith("x1") and cfg != "1x1":
            m = re.search(r"([0-9.]+) s per process in gradient", open("%s/%s.%d.err" % (tmp, cfg, r)).read())
            if m: comm.append(float(m.group(1)) * 1000 / len(steps))
    med, best = statistics.median(ms), min(ms)
    line = "%-5s step median %8.1f ms, fastest %8.1f ms, %7.0f tokens/s at the median" % (cfg, med, best, tokens / med * 1000)
    if comm: line += ", MPI %.0f ms/step (%.1f%% of the median step)" % (statistics.median(comm), 100 * statistics.median(comm) / med)
    print(line)
EOF
