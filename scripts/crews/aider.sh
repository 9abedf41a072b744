#!/bin/sh
# Crew adapter for Aider (`aider`, flags of the 0.8x CLI), headless:
#   git config mso.crew.BLD.command "$PWD/scripts/crews/aider.sh"
#
# - the brief is the message (--message-file); Aider's plain output streams to the crew log;
# - MSO_MODEL deep|standard|light -> opus|sonnet|haiku (AIDER_MODEL_DEEP/_STANDARD/_LIGHT override);
# - read-only roles ask without editing (--chat-mode ask --dry-run); others edit without
#   committing (git-mso commits) and run the project's tests after each edit, fixing what
#   fails (MSO_TEST_COMMAND -> --test-cmd ... --auto-test);
# - limits: Aider runs one message per run; mso.crew.maxTurns caps its exchanges with the
#   model (its test-fix rounds): past it, aider is stopped and the role fails; git-mso
#   starts no run once the order's budget is spent;
# - Aider exits 0 even when the model API failed: API errors in its output, or a building
#   builder (BLD) that changed nothing, fail the role.
set -eu
. "$(dirname "$0")/adapter-lib.sh"
mso_require aider
model=$(mso_model "${AIDER_MODEL_DEEP:-opus}" "${AIDER_MODEL_STANDARD:-sonnet}" "${AIDER_MODEL_LIGHT:-haiku}")
# --yes-always answers Aider's questions; --no-suggest-shell-commands keeps it
# from running shell commands the model proposes (only --test-cmd runs).
set -- --message-file "$MSO_BRIEF_FILE" --model "$model" --yes-always --no-suggest-shell-commands --no-auto-commits \
  --no-pretty --no-check-update --no-show-model-warnings --no-gitignore --analytics-disable
if mso_read_only; then
  set -- "$@" --chat-mode ask --dry-run
elif [ -n "${MSO_TEST_COMMAND:-}" ]; then
  set -- "$@" --test-cmd "$MSO_TEST_COMMAND" --auto-test
fi
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
status=0
mso_stream_capped "$raw" '^Tokens: ' "${MSO_MAX_TURNS:-1000000}" aider "$@" || status=$?
# git-mso reads Aider's text: its last words as the summary, "Tokens: ... Cost: ..." as usage.
cp "$raw" "$MSO_RESULT_FILE"
[ "$status" != 124 ] || mso_fail "aider was stopped after more than ${MSO_MAX_TURNS:-} exchanges (mso.crew.maxTurns)"
[ "$status" = 0 ] || mso_fail "aider exited with status $status"
if grep -Eqi 'litellm\.[A-Za-z]*Error|API Error|AuthenticationError|RateLimitError|^Error:' "$raw"; then
  mso_fail "aider reported an API error"
fi
# A builder that changed nothing did not build (other roles may rightly change nothing).
if [ "${MSO_ROLE:-}" = BLD ] && [ -z "$(git status --porcelain)" ]; then
  mso_fail "aider changed nothing"
fi
