# lnlab sample: repeatable with a seed, greedy at temperature 0, a prefilled prompt continuing as
# token-by-token decoding does, end-of-text handling (on a model edited so that greedy always
# picks end-of-text), model-flag overrides, and every error case.
# Models come from the refdump test tool (byte vocabulary, 32 positions; a large init so that
# the logits depend visibly on the config).
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
need_refdump sample
cd "$TMP" || exit 1
# tiny models: threads only add start-up cost on a busy machine
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

"$REFDUMP" --preset peri --layers 2 --heads 2 --dim 16 --seq 32 --vocab 257 --init-std 0.3 --out m >/dev/null 2>err.txt ||
  { fail setup_model "$(cat err.txt)"; finish; }
"$REFDUMP" --preset pre --layers 1 --heads 2 --dim 8 --seq 32 --vocab 100 --out small >/dev/null 2>err.txt ||
  { fail setup_small_model "$(cat err.txt)"; finish; }
M=m/model.safetensors
S() { "$LNLAB" sample --model "$M" --tokenizer byte "$@"; }

# --help: every flag with its type and default
help=$("$LNLAB" sample --help)
missing=""
for f in --model --prompt --tokens --temperature --top-k --seed --stop-at-eot --tokenizer --vocab --branch-lambda \
  --dt --preset --norm; do
  printf '%s\n' "$help" | grep -Eq -- "^  $f [^ ]+ .*\(default: " || missing="$missing $f"
done
if [ -z "$missing" ]; then ok help_flags; else fail help_flags "no type/default for:$missing"; fi

# the same seed repeats; another seed differs; the output starts with the prompt
S --prompt "The cat" --tokens 24 --seed 5 >a.txt 2>a.err || fail run "$(cat a.err)"
S --prompt "The cat" --tokens 24 --seed 5 >b.txt 2>/dev/null
S --prompt "The cat" --tokens 24 --seed 6 >c.txt 2>/dev/null
if cmp -s a.txt b.txt; then ok same_seed_same_text; else fail same_seed_same_text "outputs differ"; fi
if ! cmp -s a.txt c.txt; then ok other_seed_other_text; else fail other_seed_other_text "seeds 5 and 6 agree"; fi
if [ "$(head -c 7 a.txt)" = "The cat" ]; then ok starts_with_prompt; else fail starts_with_prompt "$(head -c 20 a.txt)"; fi
if grep -Eq '^sample: prompt 7 tokens .*generated 24 tokens .*[0-9.]+ tokens/s\)$' a.err && [ "$(wc -l <a.err)" -eq 1 ]
then ok speed_line; else fail speed_line "stderr: $(cat a.err)"; fi
# the prompt, 24 byte tokens (end-of-text prints as the 13 bytes <|endoftext|>), a newline
n=$(wc -c <a.txt)
k=$(grep -o '<|endoftext|>' a.txt | wc -l)
if [ "$n" -eq $((7 + 24 + 12 * k + 1)) ]; then ok length; else fail length "$n bytes, $k end-of-text"; fi

# temperature 0 is greedy: the seed does not matter, and top-k 1 gives the same text
S --prompt "ab" --tokens 20 --temperature 0 --seed 1 >g1.txt 2>/dev/null
S --prompt "ab" --tokens 20 --temperature 0 --seed 2 >g2.txt 2>/dev/null
S --prompt "ab" --tokens 20 --temperature 0.7 --top-k 1 --seed 3 >g3.txt 2>/dev/null
if cmp -s g1.txt g2.txt; then ok greedy_deterministic; else fail greedy_deterministic "seeds changed greedy output"; fi
if cmp -s g1.txt g3.txt; then ok top1_is_greedy; else fail top1_is_greedy "top-k 1 differs from greedy"; fi
# the prompt goes through the model in one prefill pass, generated tokens one step at a time: "ab"
# and the first 10 greedy tokens given back as a 12-token prompt continue as before
p=$(head -c 12 g1.txt)
S --prompt "$p" --tokens 10 --temperature 0 >g5.txt 2>g5.err
if [ ${#p} -eq 12 ] && cmp -s g1.txt g5.txt && grep -q '^sample: prompt 12 tokens' g5.err; then ok prefill_continues_greedy
else fail prefill_continues_greedy "'$(od -An -c g5.txt | head -2)' vs '$(od -An -c g1.txt | head -2)': $(cat g5.err)"; fi
# a model flag overrides the file's config (the residual step changes what greedy picks)
S --prompt "ab" --tokens 20 --temperature 0 --dt 0.05 >g4.txt 2>g4.err
if [ -s g4.txt ] && ! cmp -s g1.txt g4.txt; then ok dt_override; else fail dt_override "--dt 0.05 changed nothing"; fi
# ... and says so in one stderr line (before the speed line), naming the file and the change
if [ "$(head -1 g4.err)" = "lnlab: note: $M: the command line overrides the file's config: dt 1 -> 0.05" ] &&
   [ "$(wc -l <g4.err)" -eq 2 ]; then ok dt_override_noted
else fail dt_override_noted "stderr: $(cat g4.err)"; fi
# without --tokenizer the tokenizer follows the model's vocabulary: 257 tokens is the byte
# tokenizer (no GPT-2 vocabulary needed)
if LNLAB_VOCAB="$TMP/none" "$LNLAB" sample --model "$M" --prompt "ab" --tokens 20 --temperature 0 >g6.txt 2>g6.err &&
   cmp -s g1.txt g6.txt; then ok tokenizer_from_model_vocab
else fail tokenizer_from_model_vocab "$(cat g6.err)"; fi
# no prompt: starts from end-of-text, which is not printed
S --tokens 31 --temperature 0 >e.txt 2>e.err || fail no_prompt "$(cat e.err)"
if [ -s e.txt ] && ! grep -q endoftext e.txt; then ok no_prompt; else fail no_prompt "$(head -c 60 e.txt)"; fi

# A model whose greedy choice is always end-of-text: ln_f gain 0 makes the final hidden state
# the ln_f bias b at every position, and wte[256] = 10 b makes end-of-text's logit the largest.
"$PY" - "$M" eot.safetensors <<'EOF' || fail setup_eot_model "python edit failed"
import json, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
data = bytearray(b[8 + n:])
def view(name):
    t = h[name]; s, e = t['data_offsets']
    return s, list(struct.unpack('<%df' % ((e - s) // 4), data[s:e]))
def put(name, vals):
    s, _ = view(name)
    data[s:s + 4 * len(vals)] = struct.pack('<%df' % len(vals), *vals)
_, bias = view('ln_f.bias')
bias = [0.5 + abs(x) for x in bias]
put('ln_f.bias', bias)
put('ln_f.weight', [0.0] * len(bias))
s, wte = view('wte.weight')
C = len(bias)
wte[256 * C:257 * C] = [10 * x for x in bias]
put('wte.weight', wte)
# the edited tensors need new checksums (lnlab.crc32, docs/FORMATS.md)
import zlib
meta = h.get('__metadata__', {})
if 'lnlab.crc32' in meta:
    crc = json.loads(meta['lnlab.crc32'])
    for k in crc:
        s, e = h[k]['data_offsets']
        crc[k] = '%08x' % zlib.crc32(bytes(data[s:e]))
    meta['lnlab.crc32'] = json.dumps(crc, separators=(',', ':'))
hdr = json.dumps(h, separators=(',', ':')).encode()
hdr += b' ' * (-len(hdr) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + bytes(data))
EOF
"$LNLAB" sample --model eot.safetensors --tokenizer byte --prompt "xy" --tokens 3 --temperature 0 >t1.txt 2>/dev/null
if [ "$(cat t1.txt)" = "xy<|endoftext|><|endoftext|><|endoftext|>" ]; then ok eot_printed
else fail eot_printed "got '$(cat t1.txt)'"; fi
"$LNLAB" sample --model eot.safetensors --tokenizer byte --prompt "xy" --tokens 3 --stop-at-eot >t2.txt 2>t2.err
if [ "$(cat t2.txt)" = "xy" ] && grep -q 'generated 1 tokens' t2.err; then ok stop_at_eot
else fail stop_at_eot "got '$(cat t2.txt)', $(cat t2.err)"; fi

# errors: one line, no stdout, exit 1 for bad input, 2 for usage
expect_error prompt_too_long 1 "prompt \(10 tokens\) \+ --tokens 23 = 33 exceeds the model's context of 32 positions" \
  -- "$LNLAB" sample --model "$M" --tokenizer byte --prompt "0123456789" --tokens 23
expect_error no_prompt_counts_eot 1 "prompt \\(1 tokens\\) \\+ --tokens 32 = 33 exceeds" -- "$LNLAB" sample --model "$M" --tokenizer byte --tokens 32
if S --prompt "0123456789" --tokens 22 >/dev/null 2>&1; then ok fits_exactly; else fail fits_exactly "10 + 22 = 32 refused"; fi
expect_error missing_model 1 "nope\.safetensors" -- "$LNLAB" sample --model nope.safetensors --tokenizer byte
head -c 2000 "$M" >trunc.safetensors
expect_error corrupt_model 1 "trunc\.safetensors" -- "$LNLAB" sample --model trunc.safetensors --tokenizer byte
printf 'not a model at all' >junk.safetensors
expect_error junk_model 1 "junk\.safetensors" -- "$LNLAB" sample --model junk.safetensors --tokenizer byte
expect_error vocab_too_large 1 "byte tokenizer has 257 tokens .*vocabulary of 100" \
  -- "$LNLAB" sample --model small/model.safetensors --tokenizer byte
expect_error unknown_flag 2 "unknown flag '--nope'" -- "$LNLAB" sample --model "$M" --nope
expect_error no_model_flag 2 "--model is required" -- "$LNLAB" sample --tokenizer byte
expect_error bad_temperature 2 "--temperature" -- "$LNLAB" sample --model "$M" --temperature -1
expect_error bad_top_k 2 "--top-k" -- "$LNLAB" sample --model "$M" --top-k many
expect_error bad_tokens 2 "--tokens" -- "$LNLAB" sample --model "$M" --tokens -3
expect_error bad_tokenizer 2 "--tokenizer" -- "$LNLAB" sample --model "$M" --tokenizer words
finish
