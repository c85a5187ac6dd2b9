# lnlab prepare: shards and meta.json from files and from the KJV and Brown corpora, the split
# rules, chunked = whole tokenization, every error case, and no partial output after a failure.
# Shards are read back by an independent Python reader, not by lnlab; the Brown text is checked
# against an independent Python reading of the tagged files.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
VOCAB="$ROOT/vocab/gpt2"
have_vocab=0
[ -f "$VOCAB/encoder.json" ] && [ -f "$VOCAB/vocab.bpe" ] && have_vocab=1
have_bible=0
command -v bible >/dev/null 2>&1 && have_bible=1
CORPORA="$ROOT/corpora"
have_brown=0
[ -f "$CORPORA/brown/cats.txt" ] && have_brown=1

# The shard reader, with subcommands:
#   meta DIR KEY=VALUE...  meta.json agrees with the shard headers, both splits are non-empty,
#                          no temporary file is left, and each meta field KEY (a dotted path)
#                          equals VALUE
#   ids DIR                prints the ids of train.bin then val.bin on one line
#   same DIR FILE          those ids equal the whitespace-separated ids in FILE
#   text DIR EOT N FILE    those ids start with EOT, hold N EOTs, and without them are the
#                          bytes of FILE (byte tokenizer)
#   range DIR KEY LO HI    meta field KEY (a dotted path) is a number in [LO, HI]
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
    sys.stdout.write(' '.join(map(str, ids(d))) + '\n')
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
elif cmd == 'range':
    x = json.load(open(os.path.join(d, 'meta.json')))
    for part in sys.argv[3].split('.'):
        x = x[part]
    assert float(sys.argv[4]) <= x <= float(sys.argv[5]), '%s = %s, expected in [%s, %s]' % (sys.argv[3], x, sys.argv[4], sys.argv[5])
else:
    sys.exit('shards.py: unknown command %s' % cmd)
PYEOF

# The Brown corpus read independently of lnlab (the rules of docs/DATA.md), with subcommands:
#   check CORPUS DIR   DIR's byte-tokenizer shards are, in train.bin, EOT + text of each genre's
#                      first files and, in val.bin, EOT + text of each genre's last 10% (at least
#                      one) files; every genre is in both; no WORD/TAG residue is left in the text
#   gpt2 CORPUS        prints the text of all files in stream order, each after <|endoftext|>
cat >"$TMP/brown.py" <<'PYEOF'
import array, os, re, sys
def split(d, frac=0.1):
    files = [l.split() for l in open(os.path.join(d, 'cats.txt')) if l.strip()]
    genres = list(dict.fromkeys(g for _, g in files))
    val = set()
    for g in genres:
        mine = [f for f, h in files if h == g]
        k = min(max(int(frac * len(mine) + 0.5), 1), len(mine) - 1)
        val.update(mine[len(mine) - k:])
    return [f for f, _ in files if f not in val], [f for f, _ in files if f in val], dict(files)
def text(path):
    out, para, st = [], [], {'glue': False, 'sq': False}
    def end():
        if para:
            out.append(''.join(para) + '\n')
        del para[:]
        st['glue'] = st['sq'] = False
    for line in open(path, encoding='ascii').read().split('\n'):
        toks = [t.rpartition('/') for t in line.split()]
        if not toks:
            end()
            continue
        assert all(w and tag for w, _, tag in toks), '%s: a token is not WORD/TAG' % path
        if len(toks) >= 2 and toks[-1] == toks[-2] and toks[-1][2].startswith('.'):
            toks.pop()  # "?/. ?/." at the end of a sentence
        if len(toks) >= 2 and toks[-1][0] == '.' and len(toks[-2][0]) > 1 and toks[-2][0].endswith('.'):
            toks.pop()  # "Jr./np ./."
        heading = 2 * sum('-hl' in tag for _, _, tag in toks) >= len(toks)
        if heading:
            end()
        for w, _, _ in toks:
            opening = closing = False
            if w == '``':
                w, opening = '"', True
            elif w == "''":
                w, closing = '"', True
            elif w == "'":
                opening, closing, st['sq'] = not st['sq'], st['sq'], not st['sq']
            if para and not st['glue'] and not closing and w not in (',', '.', ';', ':', '?', '!', ')', ']'):
                para.append(' ')
            para.append(w)
            st['glue'] = opening or w in ('(', '[')
        if heading:
            end()
    end()
    return ''.join(out)
def shard(p):
    a = array.array('H', open(p, 'rb').read()[1024:])
    if sys.byteorder == 'big':
        a.byteswap()
    return a.tolist()
cmd, corpus = sys.argv[1], sys.argv[2]
train, val, genre = split(corpus)
if cmd == 'check':
    d = sys.argv[3]
    assert set(genre[f] for f in train) == set(genre.values()) == set(genre[f] for f in val), 'a genre is missing'
    for name, files in (('train', train), ('val', val)):
        want = [t for f in files for t in [256] + list(text(os.path.join(corpus, f)).encode())]
        got = shard(os.path.join(d, name + '.bin'))
        if got != want:
            i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            sys.exit('%s.bin: %d tokens, expected %d; first difference at token %d' % (name, len(got), len(want), i))
    t = bytes(i for i in shard(os.path.join(d, 'train.bin')) + shard(os.path.join(d, 'val.bin')) if i != 256)
    slashes = sum(w.count('/') for f in genre for l in open(os.path.join(corpus, f)) for w in
                  (t.rpartition('/')[0] for t in l.split()))
    assert t.count(b'/') == slashes, "%d '/' in the text, %d in the words" % (t.count(b'/'), slashes)
    tag = re.search(rb"[A-Za-z0-9]/(at|nn|nns|np|in|jj|vbd|vbn|vbz|vb|cc|rb|cs|dt|pps|md|cd)(-tl|-hl)?(\s|$)", t)
    assert not tag, 'tag residue: %r' % t[max(tag.start() - 30, 0):tag.end() + 30]
elif cmd == 'gpt2':
    sys.stdout.write(''.join('<|endoftext|>' + text(os.path.join(corpus, f)) for f in train + val))
else:
    sys.exit('brown.py: unknown command %s' % cmd)
PYEOF
# brown NAME SUBCOMMAND ARGS...: runs the Brown reader; ok NAME if it succeeds.
brown() {
  local name=$1 why; shift
  if why=$("$PY" "$TMP/brown.py" "$@" 2>&1); then ok "$name"; else fail "$name" "$(printf '%s' "$why" | tail -n 1)"; fi
}

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

# ---- the Brown corpus: rules on a small tagged corpus, then the installed one ----
# Two genres of two files: each genre's last file goes to val (round(0.1 * 2) = 0, at least 1).
mkdir -p fake/brown
printf 'ca01 news\nca02 news\ncb01 editorial\ncb02 editorial\n' >fake/brown/cats.txt
printf '\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at evidence/nn '"''/''"' ./.\nWhy/wrb ?/. ?/.\n\n\n' >fake/brown/ca01
printf 'Merger/nn-hl proposed/vbn-hl \nHe/pps met/vbd Ivan/np Allen/np Jr./np ./.\n' >>fake/brown/ca01
printf "\t(/( a/at ,/, b/nn )/) ;/. ;/.\n'/' Met/np '/' is/bez 1/2/cd and/or/cc //in x/nn ./.\n" >fake/brown/ca02
printf '\tHello/uh ./.\n' >fake/brown/cb01
printf '\tBye/uh !/. !/.\n\n\n\tAgain/rb ./.\n' >fake/brown/cb02
printf 'The Fulton jury said "no evidence". Why?\nMerger proposed\nHe met Ivan Allen Jr.\n' >ca01.want
printf "(a, b); 'Met' is 1/2 and/or / x.\n" >ca02.want
printf 'Hello.\n' >cb01.want
printf 'Bye!\nAgain.\n' >cb02.want
if "$LNLAB" prepare --corpus brown --corpora fake --tokenizer byte --out brown_fake >/dev/null 2>err.txt; then
  check_dir brown_fake_meta brown_fake corpus=brown documents=4 split.cut=document split.val_first_document=2 \
    tokens.train=$(($(cat ca01.want cb01.want | wc -c) + 2)) sources.0.files=4 sources.0.genres=2 \
    sources.0.val_files=2 sources.0.bytes=$(cat ca0?.want cb0?.want | wc -c)
  expect_byte_ids brown_fake_text brown_fake ca01.want cb01.want ca02.want cb02.want
  brown brown_fake_reference check fake/brown brown_fake
else
  fail brown_fake_runs "$(cat err.txt)"
fi
rm -rf brown_fake ./*.want

if [ $have_brown -eq 1 ]; then
  if "$LNLAB" prepare --corpus brown --corpora "$CORPORA" --tokenizer byte --out brown >out.txt 2>err.txt; then
    check_dir brown_meta brown corpus=brown documents=500 split.cut=document split.val_first_document=448 \
      sources.0.files=500 sources.0.genres=15 sources.0.val_files=52 tokenizer=byte
    # measured: 5,959,748 tokens (5,334,517 train, 625,231 val)
    shards brown_byte_total range brown tokens.total 5.8e6 6.1e6
    shards brown_byte_val range brown tokens.val 5.5e5 7.0e5
    brown brown_text check "$CORPORA/brown" brown
    # deterministic: a second run (the corpora named by LNLAB_CORPORA this time) writes the same bytes
    if LNLAB_CORPORA="$CORPORA" "$LNLAB" prepare --corpus brown --tokenizer byte --out brown2 >/dev/null 2>err.txt; then
      if cmp -s brown/train.bin brown2/train.bin && cmp -s brown/val.bin brown2/val.bin &&
        cmp -s brown/meta.json brown2/meta.json; then
        ok brown_deterministic
      else
        fail brown_deterministic "two runs wrote different files"
      fi
    else
      fail brown_rerun "$(cat err.txt)"
    fi
  else
    fail brown_runs "$(cat err.txt)"
  fi
  if [ $have_vocab -eq 1 ]; then
    if "$LNLAB" prepare --corpus brown --corpora "$CORPORA" --vocab "$VOCAB" --out brown_gpt2 >/dev/null 2>err.txt; then
      check_dir brown_gpt2_meta brown_gpt2 corpus=brown documents=500 tokenizer=gpt2 split.val_first_document=448
      # measured: 1,286,122 tokens (1,151,581 train, 134,541 val)
      shards brown_gpt2_total range brown_gpt2 tokens.total 1.2e6 1.4e6
      shards brown_gpt2_val range brown_gpt2 tokens.val 1.1e5 1.6e5
      "$PY" "$TMP/brown.py" gpt2 "$CORPORA/brown" >brown_gpt2.want
      if "$PY" shards.py ids brown_gpt2 | "$LNLAB" detokenize --vocab "$VOCAB" >brown_gpt2.txt 2>err.txt &&
        cmp -s brown_gpt2.txt brown_gpt2.want; then
        ok brown_gpt2_decode
      else
        fail brown_gpt2_decode "detokenized shards differ from the Brown text $(head -c 200 err.txt)"
      fi
    else
      fail brown_gpt2_runs "$(cat err.txt)"
    fi
  fi
  rm -rf brown brown2 brown_gpt2 brown_gpt2.*
else
  echo "skip brown: no Brown corpus at corpora/brown (run scripts/setup)"
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
# the Brown corpus not installed, or broken; --corpora only with brown
mkdir -p nocorpora empty/brown
expect_error brown_missing 1 '^lnlab: error: --corpus brown: .*nocorpora/brown is missing; run scripts/setup' -- \
  "$LNLAB" prepare --corpus brown --corpora nocorpora --tokenizer byte --out outdir
expect_error brown_missing_env 1 'nocorpora/brown is missing; run scripts/setup' -- \
  env LNLAB_CORPORA="$TMP/nocorpora" "$LNLAB" prepare --corpus brown --tokenizer byte --out outdir
expect_error brown_no_list 1 'empty/brown/cats.txt is missing; run scripts/setup' -- \
  "$LNLAB" prepare --corpus brown --corpora empty --tokenizer byte --out outdir
cp -r fake broken
rm broken/brown/cb02
expect_error brown_missing_file 1 'broken/brown/cb02 \(listed in cats.txt\) cannot be read: No such file.*scripts/setup' -- \
  "$LNLAB" prepare --corpus brown --corpora broken --tokenizer byte --out outdir
printf 'cb03\n' >>broken/brown/cats.txt
expect_error brown_bad_list 1 'cats.txt: line 5: expected "FILE GENRE"' -- \
  "$LNLAB" prepare --corpus brown --corpora broken --tokenizer byte --out outdir
cp -r fake badtag
printf 'Hello/uh there ./.\n' >>badtag/brown/cb02
expect_error brown_bad_token 1 'badtag/brown/cb02: line 5: token .there. is not WORD/TAG' -- \
  "$LNLAB" prepare --corpus brown --corpora badtag --tokenizer byte --out outdir
printf 'ca01 news\nca02 news\ncb01 editorial\n' >badtag/brown/cats.txt
expect_error brown_one_file_genre 1 'genre editorial has 1 file' -- \
  "$LNLAB" prepare --corpus brown --corpora badtag --tokenizer byte --out outdir
expect_error corpora_with_kjv 2 '--corpora: only used with --corpus brown' -- \
  "$LNLAB" prepare --corpus kjv --corpora fake --tokenizer byte --out outdir
no_output no_partial_output outdir
finish
