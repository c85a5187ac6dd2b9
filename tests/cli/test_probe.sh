# lnlab probe: the JSON object of DESIGN.md (keys, layer count, finite figures, grad_norm[0] = 0,
# placement), the table form, model overrides, and every error case. The model comes from the
# refdump test tool and the data from `lnlab prepare`; JSON is read by Python, not by lnlab.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
need_refdump probe
cd "$TMP" || exit 1

L=3
"$REFDUMP" --preset post --layers $L --heads 2 --dim 16 --seq 16 --vocab 257 --out m >/dev/null 2>err.txt ||
  { fail setup_model "$(cat err.txt)"; finish; }
for i in $(seq 1 80); do echo "line $i of the probe test corpus, with some words"; done >corpus.txt
"$LNLAB" prepare --tokenizer byte --input corpus.txt --out data >/dev/null 2>err.txt ||
  { fail setup_data "$(cat err.txt)"; finish; }
M=m/model.safetensors

# check_json NAME FILE PLACEMENT LAYERS B T [SENS_ITERS]: the probe object, exactly; with
# SENS_ITERS, a sensitivity for every block (null for entry 0).
check_json() {
  local name=$1 why
  why=$("$PY" - "$2" "$3" "$4" "$5" "$6" "${7:-}" <<'EOF'
import json, math, sys
path, placement, L, B, T = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
iters = int(sys.argv[6]) if sys.argv[6] else None
text = open(path).read()
assert text.count('\n') == 1 and text.endswith('\n'), 'expected one line of JSON'
o = json.loads(text)
top = {'loss', 'placement', 'run_id', 'layers', 'norm', 'dt', 'batch', 'seq', 'sensitivity_iters', 'growth',
       'logit_max', 'log_z_mean'}
assert set(o) == top, 'top-level keys %s' % sorted(o)
per = {'layer', 'hidden_mean_abs', 'hidden_var', 'hidden_var_data', 'grad_norm', 'sensitivity', 'dx_norm',
       'attn_logit_max'}
def finite(x, what):
    assert isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x), '%s = %r' % (what, x)
finite(o['loss'], 'loss')
assert o['loss'] > 0, 'loss %r' % o['loss']
finite(o['logit_max'], 'logit_max')
finite(o['log_z_mean'], 'log_z_mean')
# per row log sum_v exp z_v <= max z + log V, and loss = mean(log Z - z_target) >= log_z_mean - logit_max
assert o['log_z_mean'] - o['logit_max'] <= min(math.log(257), o['loss']) + 1e-5, (o['log_z_mean'], o['logit_max'])
assert o['placement'] == placement, 'placement %r' % o['placement']
assert (o['batch'], o['seq']) == (B, T), 'batch/seq %r %r' % (o['batch'], o['seq'])
ls = o['layers']
assert isinstance(ls, list) and len(ls) == L + 1, '%d layer entries for L = %d' % (len(ls), L)
assert o['sensitivity_iters'] == iters, 'sensitivity_iters %r' % o['sensitivity_iters']
g = o['growth']
assert g['points'] == L + 1 and isinstance(g['within_peri_bound'], bool), 'growth %r' % g
for fig, bounded in (('hidden_mean_abs', 'linear'), ('hidden_var', 'quadratic')):
    assert set(g[fig]) == {'linear', 'quadratic', 'exponential', 'better'}, 'growth.%s %r' % (fig, g[fig])
    assert g[fig]['better'] in (bounded, 'exponential'), 'growth.%s.better %r' % (fig, g[fig]['better'])
    assert set(g[fig]['exponential']) == {'scale', 'rate', 'r2', 'r2_log'}, 'growth.%s %r' % (fig, g[fig])
for i, x in enumerate(ls):
    assert set(x) == per | ({'sensitivity_rel_change'} if iters and i > 0 else set()), \
        'layer %d keys %s' % (i, sorted(x))
    assert x['layer'] == i and isinstance(x['layer'], int), 'layer field %r at %d' % (x['layer'], i)
    for k in per - {'layer', 'sensitivity', 'attn_logit_max'}:
        finite(x[k], 'layers[%d].%s' % (i, k))
        assert x[k] >= 0, 'layers[%d].%s = %r' % (i, k, x[k])
    if i > 0: finite(x['attn_logit_max'], 'layers[%d].attn_logit_max' % i)
    else: assert x['attn_logit_max'] is None, 'layers[0].attn_logit_max %r' % x['attn_logit_max']
    if iters and i > 0: finite(x['sensitivity'], 'layers[%d].sensitivity' % i); assert x['sensitivity'] > 0
    else: assert x['sensitivity'] is None, 'sensitivity %r' % x['sensitivity']
    assert x['hidden_mean_abs'] > 0, 'layers[%d] all zero' % i
    assert (x['grad_norm'] == 0) == (i == 0), 'layers[%d].grad_norm = %r' % (i, x['grad_norm'])
EOF
  ) || { fail "$name" "$why"; return; }
  ok "$name"
}

# field FILE KEY: a top-level JSON field, repr'd by Python.
field() { "$PY" -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))[sys.argv[2]]))' "$1" "$2"; }

if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 16 --json >p.json 2>err.txt; then
  check_json probe_json p.json post $L 2 16
else fail probe_json "$(cat err.txt)"; fi

# a prepared directory means its train split
if "$LNLAB" probe --model $M --data data --batch 2 --seq 16 --json >pd.json 2>err.txt && cmp -s p.json pd.json; then
  ok probe_dir_is_train_split
else fail probe_dir_is_train_split "$(cat err.txt) $(diff p.json pd.json | head -3)"; fi

# T defaults to the model's n_positions (16 here): same batch, same figures
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --json >pt.json 2>err.txt && cmp -s p.json pt.json; then
  ok probe_default_seq
else fail probe_default_seq "$(cat err.txt)"; fi

# the table: a summary line, a header line, then L+1 rows numbered 0..L
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 16 >table.txt 2>err.txt; then
  rows=$(grep -cE '^ *[0-9]+ ' table.txt)
  nums=$(grep -E '^ *[0-9]+ ' table.txt | awk '{print $1}' | tr '\n' ' ')
  if [ "$rows" -eq $((L + 1)) ] && [ "$nums" = "0 1 2 3 " ] &&
     grep -qE '^ *layer +hidden_mean_abs +hidden_var +hidden_var_data +grad_norm +dx_norm +attn_logit_max +sensitivity$' table.txt &&
     grep -qE '^loss [0-9.]+ +placement post.* logit_max [-0-9.e]+ +log_z_mean [0-9.e]+$' table.txt && grep -q '^growth: hidden_mean_abs linear slope' table.txt &&
     grep -q 'Peri-LN bound' table.txt; then
    ok probe_table
  else fail probe_table "$rows rows: $(cat table.txt)"; fi
else fail probe_table "$(cat err.txt)"; fi

# the table and the JSON report the same loss
tl=$(awk '/^loss /{print $2}' table.txt)
if "$PY" -c 'import json,sys; assert abs(json.load(open(sys.argv[1]))["loss"] - float(sys.argv[2])) < 1e-5' p.json "$tl" 2>/dev/null
then ok probe_table_loss; else fail probe_table_loss "table $tl vs json $(field p.json loss)"; fi

# --sensitivity: a sigma for every block, the other figures unchanged, the same for a seed
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 16 --sensitivity --sensitivity-iters 8 --json \
     >psens.json 2>err.txt; then
  check_json probe_sensitivity_json psens.json post $L 2 16 8
  if "$PY" -c 'import json,sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for x, y in zip(a["layers"], b["layers"]):
    for k in x:
        if not k.startswith("sensitivity"): assert x[k] == y[k], (k, x[k], y[k])' p.json psens.json; then
    ok probe_sensitivity_leaves_figures; else fail probe_sensitivity_leaves_figures "figures changed"; fi
else fail probe_sensitivity_json "$(cat err.txt)"; fi
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 16 --sensitivity --sensitivity-iters 8 >st.txt &&
   [ "$(grep -E '^ *[1-3] ' st.txt | awk '$NF != "-"' | wc -l)" -eq 3 ] && grep -q '^sensitivity: .* 8 power' st.txt; then
  ok probe_sensitivity_table; else fail probe_sensitivity_table "$(cat st.txt)"; fi

# command-line flags override the file's config
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 16 --dt 0.5 --json >pdt.json 2>err.txt &&
   [ "$(field pdt.json dt)" = "0.5" ] && [ "$(field pdt.json loss)" != "$(field p.json loss)" ]; then
  ok probe_override_dt
else fail probe_override_dt "$(cat err.txt) dt $(field pdt.json dt 2>/dev/null)"; fi
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 8 --json >ps.json 2>err.txt; then
  check_json probe_short_seq ps.json post $L 2 8
else fail probe_short_seq "$(cat err.txt)"; fi

# an override that changes what the model computes is noted in one stderr line; stdout stays JSON
if "$LNLAB" probe --model $M --data data/train.bin --batch 2 --seq 16 --preset b2t --json >pb.json 2>note.txt &&
   [ "$(field pb.json placement)" = "'b2t'" ] &&
   [ "$(cat note.txt)" = "lnlab: note: $M: the command line overrides the file's config: preset post -> b2t" ]; then
  ok probe_note_preset
else fail probe_note_preset "stderr: $(cat note.txt)"; fi

# model and data must agree on the vocabulary (data/meta.json: byte, 257): a GPT-2 dataset is
# refused, naming both; a meta.json that cannot be read or is of a newer format is an error
mkdir -p gdata newer dirmeta/meta.json && cp data/train.bin gdata/ && cp data/train.bin newer/ && cp data/train.bin dirmeta/
"$PY" -c 'import json; m = json.load(open("data/meta.json")); m.update(tokenizer="gpt2", vocab_size=50257, eot=50256)
json.dump(m, open("gdata/meta.json", "w")); m = json.load(open("data/meta.json")); m["format_version"] = 9
json.dump(m, open("newer/meta.json", "w"))'
expect_error vocab_mismatch 1 \
  "^lnlab: error: --data: model $M has vocab 257 \\(byte\\) but data gdata/meta\\.json says gpt2, 50257\$" -- \
  "$LNLAB" probe --batch 2 --seq 16 --model $M --data gdata
expect_error meta_newer_format 1 '^lnlab: error: --data: newer/meta\.json: format_version 9 is newer' -- \
  "$LNLAB" probe --batch 2 --seq 16 --model $M --data newer/train.bin
expect_error meta_unreadable 1 '^lnlab: error: --data: dirmeta/meta\.json' -- \
  "$LNLAB" probe --batch 2 --seq 16 --model $M --data dirmeta

# error cases: one line on stderr, nothing on stdout
head -c 3000 $M >trunc.safetensors
printf 'not a model at all' >junk.safetensors
"$PY" - <<'EOF'
import struct
def shard(path, toks, version=1):
    with open(path, 'wb') as f:
        f.write(struct.pack('<256i', 20240520, version, len(toks), *([0] * 253)))
        f.write(struct.pack('<%dH' % len(toks), *toks))
shard('big_token.bin', [1] * 40 + [300] + [2] * 40)
shard('bad_version.bin', [1] * 100, version=7)
shard('tiny.bin', [1] * 20)
EOF
head -c 1100 data/train.bin >trunc_shard.bin
mkdir -p nodata
P=(probe --batch 2 --seq 16)
expect_error missing_model 1 'nope\.safetensors' -- "$LNLAB" "${P[@]}" --model nope.safetensors --data data/train.bin
expect_error truncated_model 1 'trunc\.safetensors' -- "$LNLAB" "${P[@]}" --model trunc.safetensors --data data/train.bin
expect_error junk_model 1 'junk\.safetensors' -- "$LNLAB" "${P[@]}" --model junk.safetensors --data data/train.bin
expect_error missing_shard 1 'nope\.bin' -- "$LNLAB" "${P[@]}" --model $M --data nope.bin
expect_error truncated_shard 1 'trunc_shard\.bin' -- "$LNLAB" "${P[@]}" --model $M --data trunc_shard.bin
expect_error bad_shard_version 1 'bad_version\.bin.*version' -- "$LNLAB" "${P[@]}" --model $M --data bad_version.bin
expect_error empty_dir 1 'nodata.*train' -- "$LNLAB" "${P[@]}" --model $M --data nodata
expect_error shard_too_small 1 'tiny\.bin: too few tokens: a batch needs B\*T\+1 = 33 .*found 20' -- \
  "$LNLAB" "${P[@]}" --model $M --data tiny.bin
expect_error batch_too_big 1 'needs B\*T\+1 = 160001' -- "$LNLAB" probe --batch 10000 --seq 16 --model $M --data data/train.bin
expect_error token_outside_vocab 1 'big_token\.bin: token 300 at index 40 .*vocabulary \(size 257\)' -- \
  "$LNLAB" probe --batch 4 --seq 16 --model $M --data big_token.bin
expect_error seq_too_long 2 "--seq: 17 is longer than the model's n_positions 16" -- \
  "$LNLAB" probe --batch 2 --seq 17 --model $M --data data/train.bin
expect_error bad_batch_zero 2 '--batch' -- "$LNLAB" probe --batch 0 --seq 16 --model $M --data data/train.bin
expect_error bad_batch_text 2 '--batch' -- "$LNLAB" probe --batch two --seq 16 --model $M --data data/train.bin
expect_error unknown_flag 2 "unknown flag '--nope'" -- "$LNLAB" "${P[@]}" --model $M --data data/train.bin --nope
expect_error no_model_flag 2 '--model' -- "$LNLAB" "${P[@]}" --data data/train.bin
expect_error no_data_flag 2 '--data' -- "$LNLAB" "${P[@]}" --model $M
expect_error bad_sensitivity_iters 2 '--sensitivity-iters' -- \
  "$LNLAB" "${P[@]}" --model $M --data data/train.bin --sensitivity --sensitivity-iters -1
expect_error override_missing_tensor 1 "tensor 'h\.0\.ln_1\.weight' missing" -- \
  "$LNLAB" "${P[@]}" --model $M --data data/train.bin --preset pre

if "$LNLAB" probe --help | grep -q -- '--sensitivity'; then ok probe_help; else fail probe_help "no --sensitivity line"; fi
finish
