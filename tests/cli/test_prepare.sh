# lnlab prepare: shards and meta.json from files and from the KJV corpus, the split rule,
# chunked = whole tokenization, every error case, and no partial output after a failure.
# Shards are read back by an independent Python reader, not by lnlab.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
VOCAB="$ROOT/vocab/gpt2"
have_vocab=0
[ -f "$VOCAB/encoder.json" ] && [ -f "$VOCAB/vocab.bpe" ] && have_vocab=1
have_bible=0
command -v bible >/dev/null 2>&1 && have_bible=1

# The shard reader, with subcommands:
#   meta DIR KEY=VALUE...  meta.json agrees with the shard headers, both splits are non-empty,
#                          no temporary file is left, and each meta field KEY (a dotted path)
#                          equals VALUE
#   ids DIR                prints the ids of train.bin then val.bin on one line
#   same DIR FILE          those ids equal the whitespace-separated ids in FILE
#   text DIR EOT N FILE    those ids start with EOT, hold N EOTs, and without them are the
#                          bytes of FILE (byte tokenizer)
cat >"$TMP/shards.py" <<'PYEOF'
import array, json, os, struct, sys
def shard(p):
    b = open(p, 'rb').read()
    h = struct.unpack('<256i', b[:1024])
    assert h[0] == 20240520, '%s: magic %d' % (p, h[0])
    assert h[1] == 1, '%s: version %d' % (p, h[1])
    assert all(x == 0 for x in h[3:]), '%s: header slots 3..255 not zero' % p
    assert len(b) == 1024 + 2 * h[2], '%s: size %d for ntok %d' % (p, len(b), h[2])
    a = array.array('H', b[1024:])
    if sys.byteorder == 'big':
        a.byteswap()
    return a
def ids(d):
    return (shard(os.path.join(d, 'train.bin')) + shard(os.path.join(d, 'val.bin'))).tolist()
cmd, d = sys.argv[1], sys.argv[2]
if cmd == 'meta':
    m = json.load(open(os.path.join(d, 'meta.json')))
    nt, nv = len(shard(os.path.join(d, 'train.bin'))), len(shard(os.path.join(d, 'val.bin')))
    assert m['tokens']['train'] == nt, 'meta train %s vs header %d' % (m['tokens']['train'], nt)
    assert m['tokens']['val'] == nv, 'meta val %s vs header %d' % (m['tokens']['val'], nv)
    assert m['tokens']['total'] == nt + nv, 'meta total'
    assert nt > 0 and nv > 0, 'empty split'
    assert m['format_version'] == 1, 'format_version'
    for kv in sys.argv[3:]:
        k, v = kv.split('=', 1)
        x = m
        for part in k.split('.'):
            x = x[int(part)] if isinstance(x, list) else x[part]
        assert str(x) == v, '%s = %r, expected %s' % (k, x, v)
    left = [f for f in os.listdir(d) if '.tmp.' in f]
    assert not left, 'temporary files left: %s' % left
elif cmd == 'ids':
    print(*ids(d))
elif cmd == 'same':
    got = ids(d)
    want = [int(x) for x in open(sys.argv[3]).read().split()]
    if got != want:
        i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        sys.exit('%d ids, expected %d; first difference at index %d' % (len(got), len(want), i))
elif cmd == 'text':
    eot, n = int(sys.argv[3]), int(sys.argv[4])
    got = ids(d)
    assert got[0] == eot, 'first id %d is not EOT' % got[0]
    assert got.count(eot) == n, '%d EOTs, expected %d' % (got.count(eot), n)
    assert bytes(i for i in got if i != eot) == open(sys.argv[5], 'rb').read(), 'text differs'
PYEOF

# shards NAME SUBCOMMAND ARGS...: runs the reader; ok NAME if it succeeds.
shards() {
  local name=$1 why; shift
  if why=$("$PY" "$TMP/shards.py" "$@" 2>&1); then ok "$name"; else fail "$name" "$(printf '%s' "$why" | tail -n 1)"; fi
}
check_dir() { local name=$1; shift; shards "$name" meta "$@"; }

# expect_byte_ids NAME DIR FILE...: the ids are, for each file, 256 (EOT) then its bytes.
expect_byte_ids() {
  local name=$1 dir=$2; shift 2
  for f in "$@"; do echo 256; od -An -v -tu1 "$f"; done >"$TMP/want_ids"
  shards "$name" same "$dir" "$TMP/want_ids"
}

# no_output NAME DIR: failed runs left nothing in DIR.
no_output() {
  if [ -d "$2" ] && [ -n "$(ls -A "$2")" ]; then fail "$1" "left behind: $(ls -A "$2" | tr '\n' ' ')"; else ok "$1"; fi
}

cd "$TMP"
printf 'In the beginning was the byte.\nAnd the byte was with the token.\n' >a.txt
printf '' >empty.txt
printf 'Second document, \xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 and a tab\tthere.\r\n' >b.txt
"$PY" -c "import sys; sys.stdout.write('x' * 90)" >d90.txt
printf 'hello' >d5.txt
printf 'goodbye!' >d8.txt
"$PY" -c "import sys; sys.stdout.write('y' * 100)" >d100.txt

# ---- byte tokenizer ----
if "$LNLAB" prepare --input a.txt empty.txt b.txt --tokenizer byte --out byte1 >out.txt 2>err.txt; then
  ok byte_runs
  check_dir byte_meta byte1 tokenizer=byte vocab_size=257 eot=256 documents=3 \
    sources.0.path=a.txt sources.0.bytes="$(wc -c <a.txt)" sources.1.bytes=0 sources.2.bytes="$(wc -c <b.txt)" \
    eot_placement="before each document" val_fraction=0.1
  expect_byte_ids byte_ids byte1 a.txt empty.txt b.txt
  if [ -s err.txt ]; then fail byte_quiet_stderr "$(cat err.txt)"; else ok byte_quiet_stderr; fi
else
  fail byte_runs "$(cat err.txt)"
fi

# Split rule: 106 tokens (3 EOT + 90 + 5 + 8), target val round(0.1*106) = 11, ideal cut 95;
# the nearest document start is 97 (EOT of d8), within 25% of 11 tokens: val = EOT + d8.
"$LNLAB" prepare --input d90.txt d5.txt d8.txt --tokenizer byte --out split_doc >/dev/null 2>err.txt ||
  fail split_doc_runs "$(cat err.txt)"
check_dir split_doc split_doc tokens.train=97 tokens.val=9 split.cut=document split.val_first_document=2
# One document of 100 bytes: 101 tokens, val = round(10.1) = 10 tokens, cut inside the document.
"$LNLAB" prepare --input d100.txt --tokenizer byte --out split_tok >/dev/null 2>err.txt ||
  fail split_tok_runs "$(cat err.txt)"
check_dir split_tok split_tok tokens.train=91 tokens.val=10 split.cut=token split.val_first_document=0
# The smallest possible input still gives two non-empty splits: EOT | 'h'.
printf 'h' >one.txt
"$LNLAB" prepare --input one.txt --tokenizer byte --val-fraction 0.01 --out split_min >/dev/null 2>err.txt ||
  fail split_min_runs "$(cat err.txt)"
check_dir split_min split_min tokens.train=1 tokens.val=1
# Re-running into the same directory replaces the output.
"$LNLAB" prepare --input d5.txt d8.txt --tokenizer byte --val-fraction 0.5 --out split_doc >/dev/null 2>err.txt ||
  fail rerun_runs "$(cat err.txt)"
check_dir rerun split_doc tokens.train=6 tokens.val=9 documents=2 val_fraction=0.5

# A large input: chunked byte tokenization and the progress line (> 16 MB).
"$PY" -c "
import sys
line = b'the quick brown fox jumps over the lazy dog  \r\n'
sys.stdout.buffer.write(line * (17 * 1024 * 1024 // len(line) + 1))" >big.txt
if "$LNLAB" prepare --input big.txt --tokenizer byte --out big >/dev/null 2>err.txt; then
  check_dir big_meta big documents=1 tokens.total=$(($(wc -c <big.txt) + 1))
  if grep -q 'MB/s' err.txt; then ok big_progress; else fail big_progress "no progress line: $(cat err.txt)"; fi
else
  fail big_runs "$(cat err.txt)"
fi
rm -rf big big.txt

# ---- GPT-2 tokenizer ----
if [ $have_vocab -eq 1 ]; then
  if "$LNLAB" prepare --input a.txt b.txt --vocab "$VOCAB" --val-fraction 0.3 --out gpt1 >/dev/null 2>err.txt; then
    check_dir gpt2_meta gpt1 tokenizer=gpt2 vocab_size=50257 eot=50256 documents=2
    "$PY" shards.py ids gpt1 >gpt1.ids
    "$LNLAB" detokenize --vocab "$VOCAB" gpt1.ids >gpt1.txt 2>err.txt
    { printf '<|endoftext|>'; cat a.txt; printf '<|endoftext|>'; cat b.txt; } >gpt1.want
    if cmp -s gpt1.txt gpt1.want; then ok gpt2_decode; else fail gpt2_decode "detokenized shards differ from the inputs"; fi
  else
    fail gpt2_runs "$(cat err.txt)"
  fi
  # Chunked tokenization (1 MiB chunks, cut by lnl_text_cut) equals tokenizing the file whole.
  # The text puts runs of spaces, CRLF and blank lines at every possible cut.
  "$PY" -c "
import sys
words = ['alpha', 'Beta', 'gamma42', \"it's\", '\u00e9t\u00e9', '\u4e2d\u6587', '...', '  ', ' \t', '\u00a0x']
ends = ['\n', '  \n', '\r\n', '\n\n', ' \n\n  ', '\n ']
out, i, n = [], 0, 0
while n < 2600000:
    out.append(' '.join(words[(i * 7 + k) % len(words)] for k in range(i % 9 + 1)) + ends[i % len(ends)])
    n += len(out[-1])
    i += 1
sys.stdout.write(''.join(out))" >chunky.txt
  if "$LNLAB" prepare --input chunky.txt --vocab "$VOCAB" --out chunky >/dev/null 2>err.txt; then
    { echo 50256; "$LNLAB" tokenize --vocab "$VOCAB" chunky.txt; } >chunky.want
    shards gpt2_chunked_equals_whole same chunky chunky.want
  else
    fail gpt2_chunked_runs "$(cat err.txt)"
  fi
  rm -rf chunky chunky.*
else
  echo "skip gpt2: no vocabulary at vocab/gpt2 (run scripts/setup)"
fi

# ---- the KJV corpus: one document per book, verse texts one per line ----
if [ $have_bible -eq 1 ]; then
  bible -f Gen1:1-Rev22:21 </dev/null | sed 's/^[^ ]* //' >kjv.want
  if "$LNLAB" prepare --corpus kjv --tokenizer byte --out kjv >/dev/null 2>err.txt; then
    check_dir kjv_meta kjv documents=66 corpus=kjv sources.0.bytes="$(wc -c <kjv.want)" split.cut=document \
      tokens.total=$(($(wc -c <kjv.want) + 66))
    shards kjv_text text kjv 256 66 kjv.want
  else
    fail kjv_runs "$(cat err.txt)"
  fi
  if [ $have_vocab -eq 1 ]; then
    if "$LNLAB" prepare --corpus kjv --vocab "$VOCAB" --out kjv_gpt2 >/dev/null 2>err.txt; then
      check_dir kjv_gpt2 kjv_gpt2 documents=66 tokenizer=gpt2
    else
      fail kjv_gpt2_runs "$(cat err.txt)"
    fi
  fi
  rm -rf kjv kjv_gpt2 kjv.*
else
  echo "skip kjv: the bible program is not installed (scripts/setup installs bible-kjv)"
fi

# ---- errors: one line, the right exit code, and no output left behind ----
mkdir outdir
expect_error no_inputs 2 'no inputs' -- "$LNLAB" prepare --tokenizer byte --out outdir
expect_error no_out 2 '--out' -- "$LNLAB" prepare --input a.txt --tokenizer byte
expect_error input_and_corpus 2 'not both' -- "$LNLAB" prepare --input a.txt --corpus kjv --tokenizer byte --out outdir
expect_error frac_zero 2 '--val-fraction: 0 is out of range' -- "$LNLAB" prepare --input a.txt --tokenizer byte --val-fraction 0 --out outdir
expect_error frac_one 2 '--val-fraction: 1 is out of range' -- "$LNLAB" prepare --input a.txt --tokenizer byte --val-fraction 1 --out outdir
expect_error frac_big 2 '--val-fraction' -- "$LNLAB" prepare --input a.txt --tokenizer byte --val-fraction 1.5 --out outdir
expect_error frac_text 2 '--val-fraction' -- "$LNLAB" prepare --input a.txt --tokenizer byte --val-fraction x --out outdir
expect_error bad_tokenizer 2 '--tokenizer' -- "$LNLAB" prepare --input a.txt --tokenizer words --out outdir
expect_error bad_corpus 2 '--corpus' -- "$LNLAB" prepare --corpus shakespeare --tokenizer byte --out outdir
expect_error vocab_with_byte 2 '--vocab' -- "$LNLAB" prepare --input a.txt --tokenizer byte --vocab "$TMP" --out outdir
expect_error missing_input 1 'nope\.txt: No such file' -- "$LNLAB" prepare --input a.txt nope.txt --tokenizer byte --out outdir
expect_error dir_input 1 'is a directory' -- "$LNLAB" prepare --input a.txt outdir --tokenizer byte --out out2
expect_error empty_input 1 'empty' -- "$LNLAB" prepare --input empty.txt --tokenizer byte --out outdir
expect_error empty_inputs 1 'empty' -- "$LNLAB" prepare --input empty.txt empty.txt --tokenizer byte --out outdir
# empty only known after reading (a pipe): the output files were open when it failed
expect_error empty_pipe 1 'empty' -- "$LNLAB" prepare --input <(true) --tokenizer byte --out outdir
expect_error empty_pipe_newdir 1 'empty' -- "$LNLAB" prepare --input <(true) --tokenizer byte --out newdir
if [ -e newdir ]; then fail empty_pipe_no_dir "newdir was left behind"; else ok empty_pipe_no_dir; fi
expect_error out_is_file 1 '--out: a.txt' -- "$LNLAB" prepare --input b.txt --tokenizer byte --out a.txt
expect_error out_not_creatable 1 '--out: .*a.txt' -- "$LNLAB" prepare --input b.txt --tokenizer byte --out a.txt/sub
expect_error missing_vocab 1 'nothere' -- "$LNLAB" prepare --input a.txt --tokenizer gpt2 --vocab "$TMP/nothere" --out outdir
if [ "$(id -u)" -ne 0 ]; then
  printf 'secret' >locked.txt && chmod 000 locked.txt
  expect_error unreadable_input 1 'locked\.txt: Permission denied' -- "$LNLAB" prepare --input locked.txt --tokenizer byte --out outdir
else
  echo "skip unreadable_input: running as root, every file is readable"
fi
# without the bible program (nothing on PATH)
expect_error kjv_missing 1 'bible-kjv.*scripts/setup' -- env PATH=/nonexistent "$LNLAB" prepare --corpus kjv --tokenizer byte --out outdir
no_output no_partial_output outdir
finish
