# A short training run (with a checkpoint, a stop and a resume) and a short study with its report
# re-rendered from a copy are clean under valgrind's memcheck: no invalid reads or writes, no uses of uninitialised values, no definite leaks. Uses
# the portable build made with the tests when valgrind is installed (mk/build.mk, valgrind-bin).
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export LNLAB_BLAS_CORETYPE=keep  # no re-exec for other BLAS kernels: memcheck must see the run itself
TEST_DIR="${LNLAB_TEST_DIR:-build/tests}"
VG_LNLAB="$(dirname "$TEST_DIR")/vg/lnlab"
if ! command -v valgrind >/dev/null 2>&1; then echo "skip valgrind_train: valgrind is not installed"; finish; fi
if [ -n "${LNLAB_SANITIZED:-}" ]; then echo "skip valgrind_train: sanitizer build (valgrind cannot run it)"; finish; fi
if [ ! -x "$VG_LNLAB" ]; then fail valgrind_train "$VG_LNLAB is not built (make -f mk/build.mk tests)"; finish; fi
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite)

"$LNLAB" prepare --corpus kjv --tokenizer byte --out "$TMP/kjv" >/dev/null 2>&1 || { fail prepare_kjv "prepare failed"; finish; }
t0=$SECONDS
A=(train --data "$TMP/kjv" --out "$TMP/run" --preset peri --layers 2 --heads 2 --dim 32 --seq 32 --batch 2 --steps 4
   --eval-every 2 --eval-batches 1 --diag-every 2 --checkpoint-every 2 --stop-after 3 --quiet)
if "${VG[@]}" "$VG_LNLAB" "${A[@]}" 2>"$TMP/err"; then ok valgrind_train
else fail valgrind_train "exit $?: $(head -c 2000 "$TMP/err")"; fi
if "${VG[@]}" "$VG_LNLAB" train --resume "$TMP/run" --quiet 2>"$TMP/err" && [ -f "$TMP/run/model.safetensors" ]; then
  ok valgrind_resume
else fail valgrind_resume "exit $?: $(head -c 2000 "$TMP/err")"; fi
if [ $((SECONDS - t0)) -lt 60 ]; then ok valgrind_under_a_minute; else fail valgrind_under_a_minute "$((SECONDS - t0)) s"; fi
# A study with two dt values per preset (its report builds every claim's table) and then the
# same command again on a copy, which only re-renders the report: both without a memcheck error.
S=(study --data "$TMP/kjv" --presets pre,peri --dts 1,0.1 --depths 1 --lrs 3e-3 --seeds 1 --steps 4 --warmup 1
   --dim 16 --heads 2 --seq 16 --batch 2 --eval-every 0 --eval-batches 1 --probe-batch 2 --jobs 1 --threads 1 --quiet)
if "${VG[@]}" "$VG_LNLAB" "${S[@]}" --out "$TMP/st" >/dev/null 2>"$TMP/err" &&
   grep -q '^| Peri-LN | dt 0.1, L1 | ' "$TMP/st/summary.md"; then ok valgrind_study
else fail valgrind_study "exit $?: $(grep -m 5 -A 3 'Invalid\|uninit' "$TMP/err" | head -c 2000)"; fi
cp -a "$TMP/st" "$TMP/st-copy-at-a-longer-path"
if "${VG[@]}" "$VG_LNLAB" "${S[@]}" --out "$TMP/st-copy-at-a-longer-path" >/dev/null 2>"$TMP/err" &&
   grep -q '^| Peri-LN | dt 0.1, L1 | ' "$TMP/st-copy-at-a-longer-path/summary.md"; then ok valgrind_study_rerender
else fail valgrind_study_rerender "exit $?: $(grep -m 5 -A 3 'Invalid\|uninit' "$TMP/err" | head -c 2000)"; fi
finish
