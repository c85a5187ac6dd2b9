# LNLAB_KERNELS (src/kernels/kernels.h, "the kernel table"): =ref runs a training run on the
# reference kernels, whose model is close to the cpu backend's but not the same bits (so the variable
# reaches the kernels); =cpu is the default, bit for bit; any other value is a one-line error.
. "$(dirname "$0")/lib.sh"

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 ||
  { fail prepare_kjv "prepare failed"; finish; }
A=(--data "$TMP/kjv" --layers 2 --heads 4 --dim 64 --seq 32 --batch 4 --steps 6 --warmup 2 --eval-every 3
   --eval-batches 1 --seed 7 --quiet --adapt-threads=false)

# close CPU_RUN REF_RUN: some parameter differs; every parameter within 2e-3 (measured: 5e-5; AdamW
# steps of about lr = 6e-4 turn last-bit differences of gradients into parameter differences) and
# every logged loss and gradient norm within 1e-4 relative (measured: 3e-7).
close() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import array, json, struct, sys
def model(run):
    b = open(run + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        out[k] = array.array("f", b[8 + n + s:8 + n + e])
    return out
def log(run):
    return [json.loads(l) for l in open(run + "/log.jsonl")]
A, B = model(sys.argv[1]), model(sys.argv[2])
if A.keys() != B.keys():
    sys.exit("different tensors")
worst, where, ndiff = 0.0, "", 0
for k in A:
    for x, y in zip(A[k], B[k]):
        ndiff += x != y
        if abs(x - y) > worst:
            worst, where = abs(x - y), k
if ndiff == 0:
    sys.exit("the same model bits: LNLAB_KERNELS=ref changed nothing")
if worst > 2e-3:
    sys.exit("%s differs by %.3g" % (where, worst))
la, lb = log(sys.argv[1]), log(sys.argv[2])
if len(la) != len(lb):
    sys.exit("logs of different lengths")
for x, y in zip(la, lb):
    for key in ("loss", "val_loss", "grad_norm"):
        if key in x and abs(x[key] - y[key]) > 1e-4 * abs(y[key]):
            sys.exit("step %s: %s %s vs %s" % (x["step"], key, x[key], y[key]))
print("%d parameters differ, by at most %.3g" % (ndiff, worst))
PY
}

for preset in pre post; do
  for k in unset cpu ref; do
    E=(LNLAB_KERNELS=$k)
    [ "$k" = unset ] && E=(-u LNLAB_KERNELS)
    if ! env "${E[@]}" "$LNLAB" train "${A[@]}" --preset $preset --out "$TMP/$preset-$k" 2>"$TMP/err"; then
      fail "${preset}_$k" "train with LNLAB_KERNELS $k: $(cat "$TMP/err")"; continue 2; fi
  done
  records "$TMP/$preset-unset/log.jsonl" >"$TMP/a.txt"
  records "$TMP/$preset-cpu/log.jsonl" >"$TMP/b.txt"
  if same_model "$TMP/$preset-unset/model.safetensors" "$TMP/$preset-cpu/model.safetensors" &&
     cmp -s "$TMP/a.txt" "$TMP/b.txt"; then ok "${preset}_cpu_is_the_default"
  else fail "${preset}_cpu_is_the_default" "LNLAB_KERNELS=cpu gives another run than no LNLAB_KERNELS"; fi
  if why=$(close "$TMP/$preset-cpu" "$TMP/$preset-ref" 2>&1); then
    ok "${preset}_ref_close_not_same"; echo "# $preset: $why"
  else fail "${preset}_ref_close_not_same" "$why"; fi
done

for v in gpu REF 'cpu ref'; do
  expect_error "bad_value_${v// /_}" 2 \
    "^lnlab: error: LNLAB_KERNELS=$v names no kernel backend \(this build has: .*ref.*\)$" -- \
    env LNLAB_KERNELS="$v" "$LNLAB" train "${A[@]}" --out "$TMP/bad"
done
[ -e "$TMP/bad" ] && fail bad_value_writes_nothing "a run directory was made" || ok bad_value_writes_nothing
expect_error bad_value_any_command 2 '^lnlab: error: LNLAB_KERNELS=x names no kernel backend' -- \
  env LNLAB_KERNELS=x "$LNLAB" --version
finish
