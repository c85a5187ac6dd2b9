# The command dispatcher and the flag parser: help, unknown commands and flags, bad values.
. "$(dirname "$0")/lib.sh"

if "$LNLAB" --help | grep -q '^  tokenize'; then ok help_lists_commands; else fail help_lists_commands "no tokenize in --help"; fi
expect_error unknown_command 2 "unknown command 'frobnicate'" -- "$LNLAB" frobnicate
expect_error unknown_flag 2 "unknown flag '--nope'" -- "$LNLAB" tokenize --nope
expect_error bad_choice 2 "--tokenizer: 'x' is not one of" -- "$LNLAB" tokenize --tokenizer x
"$LNLAB" >/dev/null 2>&1; rc=$?
if [ $rc -eq 2 ]; then ok no_command_exit2; else fail no_command_exit2 "exit $rc"; fi
for c in tokenize detokenize prepare; do
  if "$LNLAB" $c --help | grep -q -- '(default: '; then ok "help_$c"; else fail "help_$c" "no flag table"; fi
done
finish
