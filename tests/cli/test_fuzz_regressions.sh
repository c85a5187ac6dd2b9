# Every reader against its fuzz seeds and every input a fuzzer ever crashed it with
# (fuzz/corpus/<reader>/, fuzz/regressions/<reader>/), without libFuzzer: the replay builds of
# fuzz/fuzz_<reader>.c (mk/build.mk) must end cleanly on each input. Under `make sanitize` they
# run with ASan and UBSan.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
DIR="${LNLAB_TEST_DIR:-build/tests}/fuzz"
n=0
for src in fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  name=${t#fuzz_}
  exe="$DIR/$t"
  if [ ! -x "$exe" ]; then fail "replay_$name" "$exe is not built (make -f mk/build.mk tests)"; continue; fi
  if "$exe" "fuzz/corpus/$name" "fuzz/regressions/$name" >"$TMP/out" 2>&1; then
    ok "replay_$name ($(grep -c '^input ' "$TMP/out") inputs)"
  else
    fail "replay_$name" "$(grep '^input ' "$TMP/out" | tail -1): $(grep -v '^input ' "$TMP/out" | head -5 | tr '\n' ' ')"
  fi
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail fuzz_targets "no fuzz/fuzz_*.c"
finish
