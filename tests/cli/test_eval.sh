# lnlab eval: the output line and JSON object, perplexity = exp(loss), the val split of a prepared
# directory, --batches, agreement with probe's loss on the same single batch, and every error case.
# The model comes from the refdump test tool, the data from `lnlab prepare`.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
need_refdump eval
cd "$TMP" || exit 1

"$REFDUMP" --preset post --layers 3 --heads 2 --dim 16 --seq 16 --vocab 257 --out m >/dev/null 2>err.txt ||
  { fail setup_model "$(cat err.txt)"; finish; }
for i in $(seq 1 80); do echo "line $i of the eval test corpus, with some words"; done >corpus.txt
"$LNLAB" prepare --tokenizer byte --input corpus.txt --out data >/dev/null 2>err.txt ||
  { fail setup_data "$(cat err.txt)"; finish; }
M=m/model.safetensors
NVAL=$("$PY" -c 'import json; print(json.load(open("data/meta.json"))["tokens"]["val"])')

# check_line NAME FILE TOKENS: "val_loss X perplexity Y tokens N", finite, Y = exp(X), N = TOKENS
check_line() {
  local why
  why=$("$PY" - "$2" "$3" <<'EOF'
import math, re, sys
text = open(sys.argv[1]).read()
m = re.fullmatch(r'val_loss (\S+) perplexity (\S+) tokens (\d+)\n', text)
assert m, 'unexpected output %r' % text
loss, ppl, n = float(m.group(1)), float(m.group(2)), int(m.group(3))
assert math.isfinite(loss) and loss > 0, 'loss %r' % loss
assert abs(ppl - math.exp(loss)) <= 1e-5 * math.exp(loss), 'perplexity %r vs exp(loss) %r' % (ppl, math.exp(loss))
assert n == int(sys.argv[2]), 'tokens %d, expected %s' % (n, sys.argv[2])
EOF
  ) || { fail "$1" "$why"; return; }
  ok "$1"
}

# every full batch of the val split: floor((NVAL - 1) / (B*T)) batches of B*T targets
B=2; T=16
want=$(( (NVAL - 1) / (B * T) * B * T ))
if "$LNLAB" eval --model $M --data data --batch $B --seq $T >e.txt 2>err.txt; then
  check_line eval_dir_all_batches e.txt $want
else fail eval_dir_all_batches "$(cat err.txt)"; fi

# a directory means its val split; a shard is used as is
if "$LNLAB" eval --model $M --data data/val.bin --batch $B --seq $T >ev.txt 2>err.txt && cmp -s e.txt ev.txt; then
  ok eval_dir_is_val_split
else fail eval_dir_is_val_split "$(cat err.txt) $(cat e.txt ev.txt)"; fi

if "$LNLAB" eval --model $M --data data --batch $B --seq $T --batches 2 >e2.txt 2>err.txt; then
  check_line eval_batches_cap e2.txt $((2 * B * T))
else fail eval_batches_cap "$(cat err.txt)"; fi
# a cap above the number of batches evaluates each batch once
if "$LNLAB" eval --model $M --data data --batch $B --seq $T --batches 100000 >e3.txt 2>err.txt && cmp -s e.txt e3.txt; then
  ok eval_batches_cap_above
else fail eval_batches_cap_above "$(cat err.txt) $(cat e3.txt)"; fi

# JSON: the same figures, full precision
if "$LNLAB" eval --model $M --data data --batch $B --seq $T --json >e.json 2>err.txt &&
   why=$("$PY" - e.json e.txt $want <<'EOF'
import json, math, sys
text = open(sys.argv[1]).read()
assert text.count('\n') == 1, 'expected one line'
o = json.loads(text)
want = {'val_loss', 'perplexity', 'tokens', 'batches', 'batch', 'seq', 'placement', 'run_id'}
assert set(o) == want, 'keys %s' % sorted(o)
assert math.isfinite(o['val_loss']), 'val_loss %r' % o['val_loss']
assert abs(o['perplexity'] - math.exp(o['val_loss'])) <= 1e-12 * o['perplexity'], 'perplexity'
assert o['tokens'] == int(sys.argv[3]) == o['batches'] * o['batch'] * o['seq'], 'tokens %r' % o['tokens']
assert o['placement'] == 'post', 'placement %r' % o['placement']
line = open(sys.argv[2]).read().split()
assert abs(float(line[1]) - o['val_loss']) <= 1e-6, 'line %s vs json %r' % (line[1], o['val_loss'])
EOF
   ); then ok eval_json
else fail eval_json "$(cat err.txt) $why"; fi

# probe's loss is eval's loss on the same single batch (the first B*T+1 tokens of a shard)
if "$LNLAB" eval --model $M --data data/train.bin --batch $B --seq $T --batches 1 --json >one.json 2>err.txt &&
   "$LNLAB" probe --model $M --data data/train.bin --batch $B --seq $T --json >probe.json 2>>err.txt &&
   "$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); assert a["val_loss"] == b["loss"], (a, b["loss"])' one.json probe.json 2>>err.txt
then ok eval_equals_probe_loss
else fail eval_equals_probe_loss "$(cat err.txt)"; fi

# T defaults to the model's n_positions
if "$LNLAB" eval --model $M --data data --batch $B >ed.txt 2>err.txt && cmp -s e.txt ed.txt; then
  ok eval_default_seq
else fail eval_default_seq "$(cat err.txt)"; fi

# overrides apply: a smaller residual step changes the loss
if "$LNLAB" eval --model $M --data data --batch $B --seq $T --dt 0.5 >edt.txt 2>err.txt && ! cmp -s e.txt edt.txt; then
  check_line eval_override_dt edt.txt $want
else fail eval_override_dt "$(cat err.txt) $(cat edt.txt)"; fi

# What is loaded is what the files say. An override that changes what the model computes is
# noted in one stderr line naming the file (here Post-LN evaluated as B2T: same tensors); one
# that changes nothing is not.
NOTE="lnlab: note: $M: the command line overrides the file's config:"
if "$LNLAB" eval --model $M --data data --batch $B --seq $T --preset b2t >eb.txt 2>note.txt &&
   [ "$(cat note.txt)" = "$NOTE preset post -> b2t" ] && ! cmp -s e.txt eb.txt; then ok eval_note_preset
else fail eval_note_preset "stderr: $(cat note.txt)"; fi
if "$LNLAB" eval --model $M --data data --batch $B --seq $T --dt 0.5 >/dev/null 2>note.txt &&
   [ "$(cat note.txt)" = "$NOTE dt 1 -> 0.5" ]; then ok eval_note_dt
else fail eval_note_dt "stderr: $(cat note.txt)"; fi
if "$LNLAB" eval --model $M --data data --batch $B --seq $T --preset post --dt 1 >en.txt 2>note.txt &&
   [ ! -s note.txt ] && cmp -s e.txt en.txt; then ok eval_no_note_without_change
else fail eval_no_note_without_change "stderr: $(cat note.txt)"; fi

# The model config is covered by a checksum in the file's metadata: an edited config is refused;
# a file without the checksum (older lnlab) loads and is read as its config says.
"$PY" - $M <<'EOF2' || fail setup_edited_config "python edit failed"
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
cfg = json.loads(h['__metadata__']['lnlab.config'])
cfg['dt'] = 2.0  # the model's dt and, as --dt sets them, every sub-layer's
for lay in cfg['layers']:
    for sub in ('attn', 'mlp'):
        lay[sub]['dt'] = 2.0
def save(path, h):
    hdr = json.dumps(h, separators=(',', ':')).encode()
    hdr += b' ' * (-len(hdr) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(hdr)) + hdr + b[8 + n:])
h['__metadata__']['lnlab.config'] = json.dumps(cfg, separators=(',', ':'))
save('edited.safetensors', h)
h['__metadata__'].pop('lnlab.config.crc32', None)
save('nocrc.safetensors', h)
EOF2
expect_error config_checksum 1 '^lnlab: error: --model: edited\.safetensors: the model config in __metadata__ does not match its checksum \(edited\?\)' \
  -- "$LNLAB" eval --batch $B --seq $T --model edited.safetensors --data data
if "$LNLAB" eval --model nocrc.safetensors --data data --batch $B --seq $T >e_old.txt 2>err.txt &&
   "$LNLAB" eval --model $M --data data --batch $B --seq $T --dt 2 >e_dt2.txt 2>/dev/null && cmp -s e_old.txt e_dt2.txt &&
   [ ! -s err.txt ]; then ok config_without_checksum_loads
else fail config_without_checksum_loads "$(cat err.txt) $(cat e_old.txt e_dt2.txt)"; fi

# Model and data must agree: a vocabulary other than meta.json's is refused, naming both (for a
# prepared directory and for a shard beside its meta.json); a malformed meta.json is an error
# naming it; a directory without meta.json (llm.c data) is fine.
mkdir -p gdata bad1 bad2 nometa && cp data/train.bin data/val.bin gdata/ && cp data/val.bin bad1/ &&
  cp data/val.bin bad2/ && cp data/val.bin nometa/
"$PY" -c 'import json; m = json.load(open("data/meta.json")); m.update(tokenizer="gpt2", vocab_size=50257, eot=50256)
json.dump(m, open("gdata/meta.json", "w"))'
printf '{"vocab_size": "abc",' >bad1/meta.json
printf '{"format": "lnlab prepared dataset", "vocab_size": "abc"}' >bad2/meta.json
V="model $M has vocab 257 \\(byte\\) but data gdata/meta\\.json says gpt2, 50257"
expect_error vocab_mismatch_dir 1 "^lnlab: error: --data: $V\$" -- "$LNLAB" eval --batch $B --seq $T --model $M --data gdata
expect_error vocab_mismatch_shard 1 "^lnlab: error: --data: $V\$" -- \
  "$LNLAB" eval --batch $B --seq $T --model $M --data gdata/val.bin
expect_error meta_not_json 1 '^lnlab: error: --data: bad1/meta\.json: not valid JSON' -- \
  "$LNLAB" eval --batch $B --seq $T --model $M --data bad1
expect_error meta_bad_vocab 1 "^lnlab: error: --data: bad2/meta\\.json: field 'vocab_size' is \"abc\", expected an integer" -- \
  "$LNLAB" eval --batch $B --seq $T --model $M --data bad2
if "$LNLAB" eval --model $M --data nometa --batch $B --seq $T >enm.txt 2>err.txt && cmp -s e.txt enm.txt; then
  ok no_meta_json_is_fine
else fail no_meta_json_is_fine "$(cat err.txt)"; fi

# train --init-from loads through the same path: the same refusal, and the note even with --quiet.
TR=(train --batch 2 --seq 16 --steps 1 --eval-batches 1 --quiet --init-from "$M")
expect_error train_init_vocab_mismatch 1 "^lnlab: error: --data: model /.*/$M has vocab 257 \\(byte\\) but data /.*/gdata/meta\\.json says gpt2, 50257\$" \
  -- "$LNLAB" "${TR[@]}" --data gdata --out run_bad
if "$LNLAB" "${TR[@]}" --data data --out run_dt --dt 0.5 >/dev/null 2>note.txt &&
   grep -Eq "^lnlab: note: /.*/$M: the command line overrides the file's config: dt 1 -> 0\.5\$" note.txt &&
   [ "$(wc -l <note.txt)" -eq 1 ]; then ok train_init_note_despite_quiet
else fail train_init_note_despite_quiet "stderr: $(cat note.txt)"; fi

# error cases: one line on stderr, nothing on stdout
head -c 3000 $M >trunc.safetensors
"$PY" - <<'EOF'
import struct
def shard(path, toks):
    with open(path, 'wb') as f:
        f.write(struct.pack('<256i', 20240520, 1, len(toks), *([0] * 253)))
        f.write(struct.pack('<%dH' % len(toks), *toks))
shard('big_token.bin', [1] * 40 + [300] + [2] * 40)
shard('tiny.bin', [1] * 20)
EOF
mkdir -p trainonly && cp data/train.bin trainonly/
E=(eval --batch 2 --seq 16)
expect_error missing_model 1 'nope\.safetensors' -- "$LNLAB" "${E[@]}" --model nope.safetensors --data data
expect_error truncated_model 1 'trunc\.safetensors' -- "$LNLAB" "${E[@]}" --model trunc.safetensors --data data
expect_error missing_data 1 'nope' -- "$LNLAB" "${E[@]}" --model $M --data nope
expect_error no_val_split 1 'trainonly: no val split' -- "$LNLAB" "${E[@]}" --model $M --data trainonly
expect_error shard_too_small 1 'tiny\.bin: too few tokens: a batch needs B\*T\+1 = 33 .*found 20' -- \
  "$LNLAB" "${E[@]}" --model $M --data tiny.bin
expect_error token_outside_vocab 1 'big_token\.bin: token 300 .*vocabulary \(size 257\)' -- \
  "$LNLAB" "${E[@]}" --model $M --data big_token.bin
expect_error seq_too_long 2 "--seq: 32 is longer than the model's n_positions 16" -- \
  "$LNLAB" eval --batch 2 --seq 32 --model $M --data data
expect_error bad_batch 2 '--batch' -- "$LNLAB" eval --batch 0 --model $M --data data
expect_error zero_batches 2 '--batches: 0' -- "$LNLAB" "${E[@]}" --batches 0 --model $M --data data
expect_error unknown_flag 2 "unknown flag '--nope'" -- "$LNLAB" "${E[@]}" --model $M --data data --nope
expect_error no_model_flag 2 '--model' -- "$LNLAB" "${E[@]}" --data data
expect_error no_data_flag 2 '--data' -- "$LNLAB" "${E[@]}" --model $M

if "$LNLAB" eval --help | grep -q -- '--batches'; then ok eval_help; else fail eval_help "no --batches line"; fi
finish
