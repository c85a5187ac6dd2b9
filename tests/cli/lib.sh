# Helpers for CLI tests (sourced, not run): each check prints "ok NAME" or "FAIL NAME: why".
# LNLAB_BIN is the executable under test; TMP is a scratch directory removed on exit.
LNLAB="${LNLAB_BIN:-./lnlab}"
# The repository root, and LNLAB made absolute so that a script may cd elsewhere.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case "$LNLAB" in /*) ;; */*) LNLAB="$PWD/$LNLAB" ;; esac
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; FAILED=1; }

# expect_error NAME CODE PATTERN -- command...
# The command must exit with CODE, print exactly one line on stderr matching PATTERN
# (an extended regex), and nothing on stdout.
expect_error() {
  local name=$1 code=$2 pat=$3; shift 4
  local out err rc
  out=$("$@" 2>"$TMP/err" </dev/null); rc=$?
  err=$(cat "$TMP/err")
  if [ "$rc" -ne "$code" ]; then fail "$name" "exit $rc, expected $code (stderr: $err)"; return; fi
  if [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] || [ -z "$err" ]; then
    fail "$name" "expected one stderr line, got: $err"; return; fi
  if ! printf '%s\n' "$err" | grep -Eq -- "$pat"; then fail "$name" "stderr '$err' does not match /$pat/"; return; fi
  if [ -n "$out" ]; then fail "$name" "unexpected stdout: $(printf '%s' "$out" | head -c 200)"; return; fi
  ok "$name"
}

# need_refdump NAME: REFDUMP = the refdump test tool in LNLAB_TEST_DIR (default build/tests);
# when it is not built, a skip line for NAME and the end of the script.
need_refdump() {
  local td="${LNLAB_TEST_DIR:-build/tests}"
  case "$td" in /*) ;; *) td="$ROOT/$td" ;; esac
  REFDUMP="$td/tools/refdump"
  if [ ! -x "$REFDUMP" ]; then echo "skip $1: $REFDUMP not built (make -f mk/build.mk tests)"; finish; fi
}

# records LOG: the records of a run's log.jsonl without the timing fields (ms, tokens_per_s, and
# threads, which follows the machine's load: --adapt-threads), one
# JSON object per line with sorted keys, for comparing runs.
records() {
  /usr/bin/python3 -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line); r.pop("ms", None); r.pop("tokens_per_s", None); r.pop("threads", None); print(json.dumps(r, sort_keys=True))' "$1"
}

# same_model A B: two safetensors model files hold the same tensors (bytes) and metadata, apart
# from the id of the training run that wrote each (lnlab.run_id), which differs between runs.
same_model() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.get("__metadata__", {}).pop("lnlab.run_id", None)
    return h, b[8 + n:]
sys.exit(0 if load(sys.argv[1]) == load(sys.argv[2]) else 1)
PY
}

# Ends the script with the right exit code.
finish() { exit "$FAILED"; }
