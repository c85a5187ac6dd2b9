# lnlab tokenize / detokenize: fixture parity, round trips, stdin, the default vocabulary
# location, and every error case (missing or corrupt vocabulary, bad ids, unreadable input).
. "$(dirname "$0")/lib.sh"

FIX=tests/fixtures/tokenizer
export LNLAB_VOCAB="${LNLAB_VOCAB:-$PWD/vocab/gpt2}"
if [ ! -f "$LNLAB_VOCAB/encoder.json" ] || [ ! -f "$LNLAB_VOCAB/vocab.bpe" ]; then
  fail vocabulary_present "no GPT-2 vocabulary in $LNLAB_VOCAB; run scripts/setup"
  finish
fi

# check NAME CMD...: the command must succeed.
check() {
  local name=$1; shift
  if "$@" 2>"$TMP/err"; then ok "$name"; else fail "$name" "$(head -c 300 "$TMP/err")"; fi
}

check tokenize_corpus_matches_reference cmp -s <("$LNLAB" tokenize "$FIX/corpus.txt") "$FIX/corpus.ids"
check tokenize_stdin cmp -s <("$LNLAB" tokenize <"$FIX/corpus.txt") "$FIX/corpus.ids"
check tokenize_dash_stdin cmp -s <("$LNLAB" tokenize - <"$FIX/corpus.txt") "$FIX/corpus.ids"
check detokenize_corpus cmp -s <("$LNLAB" detokenize "$FIX/corpus.ids") "$FIX/corpus.txt"
check detokenize_stdin cmp -s <("$LNLAB" detokenize <"$FIX/corpus.ids") "$FIX/corpus.txt"

# Output format: one line, ids separated by single spaces.
out=$("$LNLAB" tokenize <<<"Hello world")
if [ "$out" = "15496 995 198" ]; then ok tokenize_format; else fail tokenize_format "got '$out'"; fi
n=$("$LNLAB" tokenize "$FIX/corpus.txt" | wc -l)
if [ "$n" -eq 1 ]; then ok tokenize_one_line; else fail tokenize_one_line "$n lines"; fi
# Empty input prints an empty line; detokenizing nothing writes nothing.
if [ "$("$LNLAB" tokenize </dev/null | od -An -c | tr -d ' ')" = '\n' ]; then ok tokenize_empty_line
else fail tokenize_empty_line "expected a single newline"; fi
if [ "$(printf ' \n\t' | "$LNLAB" detokenize | wc -c)" -eq 0 ]; then ok detokenize_empty; else fail detokenize_empty "wrote bytes"; fi
# Ids may be separated by any whitespace.
out=$(printf '15496\t995\n\n 0 ' | "$LNLAB" detokenize)
if [ "$out" = "Hello world!" ]; then ok detokenize_whitespace; else fail detokenize_whitespace "got '$out'"; fi

# Any bytes round-trip, invalid UTF-8 included, through both tokenizers.
printf 'caf\xe9 \xff\xfe\x80 ok\r\n\x00\xc3 \xed\xa0\x80 \xf0\x9f\x99\x82 end' >"$TMP/bin"
for r in 1 7 13; do for i in $(seq 0 255); do printf "\\x$(printf %02x $(( (i * r + r) % 256 )))"; done; done >>"$TMP/bin"
cat "$FIX/corpus.txt" >>"$TMP/bin"
for k in gpt2 byte; do
  "$LNLAB" tokenize --tokenizer $k "$TMP/bin" >"$TMP/bin.$k" 2>"$TMP/err" &&
    "$LNLAB" detokenize --tokenizer $k "$TMP/bin.$k" >"$TMP/bin.back" 2>>"$TMP/err"
  if cmp -s "$TMP/bin" "$TMP/bin.back"; then ok "roundtrip_binary_$k"; else fail "roundtrip_binary_$k" "$(head -c 300 "$TMP/err")"; fi
done
out=$(printf 'A\xff' | "$LNLAB" tokenize --tokenizer byte)
if [ "$out" = "65 255" ]; then ok byte_ids; else fail byte_ids "got '$out'"; fi
out=$(echo "104 105 256" | "$LNLAB" detokenize --tokenizer byte)
if [ "$out" = "hi<|endoftext|>" ]; then ok byte_eot_decodes_as_text; else fail byte_eot_decodes_as_text "got '$out'"; fi

# The default vocabulary is vocab/gpt2 beside the executable when LNLAB_VOCAB is unset.
mkdir -p "$TMP/inst/vocab"
cp "$LNLAB" "$TMP/inst/lnlab"
ln -s "$(cd "$LNLAB_VOCAB" && pwd)" "$TMP/inst/vocab/gpt2"
out=$(env -u LNLAB_VOCAB "$TMP/inst/lnlab" tokenize <<<"Hello world" 2>&1)
if [ "$out" = "15496 995 198" ]; then ok default_vocab_beside_executable; else fail default_vocab_beside_executable "$out"; fi
if "$LNLAB" tokenize --help | grep -q -- "--vocab string .*(default: $LNLAB_VOCAB)"; then ok help_vocab_default
else fail help_vocab_default "--help does not show the vocabulary default"; fi
for c in tokenize detokenize; do
  if "$LNLAB" $c --help | grep -q -- '--tokenizer gpt2|byte .*(default: gpt2)'; then ok "help_tokenizer_$c"
  else fail "help_tokenizer_$c" "no --tokenizer line"; fi
done

# Errors: one line on stderr, nothing on stdout, exit 1 (bad input) or 2 (bad flags).
expect_error missing_vocab_dir 1 "$TMP/nope.*does not exist; run scripts/setup" -- \
  "$LNLAB" tokenize --vocab "$TMP/nope" "$FIX/corpus.txt"
mkdir -p "$TMP/empty"
expect_error missing_vocab_files 1 "no GPT-2 vocabulary in .*run scripts/setup" -- \
  "$LNLAB" tokenize --vocab "$TMP/empty" "$FIX/corpus.txt"
expect_error missing_vocab_env 1 "nope.*does not exist; run scripts/setup" -- \
  env LNLAB_VOCAB="$TMP/nope" "$LNLAB" detokenize "$FIX/corpus.ids"
mkdir -p "$TMP/badjson" "$TMP/badbpe" "$TMP/nobpe"
head -c 100000 "$LNLAB_VOCAB/encoder.json" >"$TMP/badjson/encoder.json"
cp "$LNLAB_VOCAB/vocab.bpe" "$TMP/badjson/"
expect_error corrupt_encoder_json 1 "badjson/encoder.json: invalid JSON at byte" -- \
  "$LNLAB" tokenize --vocab "$TMP/badjson" "$FIX/corpus.txt"
cp "$LNLAB_VOCAB/encoder.json" "$TMP/badbpe/"
{ head -n 10 "$LNLAB_VOCAB/vocab.bpe"; echo "just-one-token"; } >"$TMP/badbpe/vocab.bpe"
expect_error corrupt_vocab_bpe 1 "badbpe/vocab.bpe: line 11: expected two tokens" -- \
  "$LNLAB" tokenize --vocab "$TMP/badbpe" "$FIX/corpus.txt"
cp "$LNLAB_VOCAB/encoder.json" "$TMP/nobpe/"
expect_error missing_vocab_bpe 1 "nobpe/vocab.bpe is missing.*run scripts/setup" -- \
  "$LNLAB" detokenize --vocab "$TMP/nobpe" "$FIX/corpus.ids"
expect_error unreadable_path 1 "$TMP/missing.txt: No such file or directory" -- \
  "$LNLAB" tokenize "$TMP/missing.txt"
expect_error unreadable_path_detokenize 1 "$TMP/missing.ids: No such file or directory" -- \
  "$LNLAB" detokenize "$TMP/missing.ids"
expect_error directory_input 1 "$TMP/empty: read error: Is a directory" -- "$LNLAB" tokenize "$TMP/empty"
echo "15496 abc 995" >"$TMP/bad.ids"
expect_error bad_id_text 1 "bad.ids: token 2 \(byte 6\): 'abc' is not a token id" -- "$LNLAB" detokenize "$TMP/bad.ids"
echo "1 2 50257" >"$TMP/big.ids"
expect_error bad_id_range 1 "big.ids: token 3 \(byte 4\): id 50257 is out of range \[0, 50256\]" -- \
  "$LNLAB" detokenize "$TMP/big.ids"
echo "1 -5" >"$TMP/neg.ids"
expect_error bad_id_negative 1 "token 2 \(byte 2\): '-5' is not a token id" -- "$LNLAB" detokenize "$TMP/neg.ids"
echo "65 257" >"$TMP/byte.ids"
expect_error bad_id_byte_range 1 "token 2 \(byte 3\): id 257 is out of range \[0, 256\]" -- \
  "$LNLAB" detokenize --tokenizer byte "$TMP/byte.ids"
echo "99999999999999999999999" >"$TMP/huge.ids"
expect_error bad_id_huge 1 "token 1 \(byte 0\): id 9999.* is out of range" -- "$LNLAB" detokenize "$TMP/huge.ids"
expect_error bad_tokenizer_value 2 "--tokenizer: 'bpe' is not one of gpt2\|byte" -- "$LNLAB" tokenize --tokenizer bpe
expect_error empty_vocab_value 2 "--vocab: empty value" -- "$LNLAB" detokenize --vocab=
expect_error missing_flag_value 2 "--vocab: missing value" -- "$LNLAB" tokenize --vocab
expect_error unknown_flag_detokenize 2 "unknown flag '--bogus'" -- "$LNLAB" detokenize --bogus 1
expect_error two_inputs 2 "unexpected argument 'b'" -- "$LNLAB" tokenize a b
finish
