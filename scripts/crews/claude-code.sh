#!/bin/sh
# Crew adapter for Claude Code (`claude`, flags of the 2.x CLI), headless:
#   git config mso.crew.BLD.command "$PWD/scripts/crews/claude-code.sh"
#
# - the brief goes in on stdin; progress streams to the crew log (stream-json);
# - MSO_MODEL deep|standard|light -> opus|sonnet|haiku (CLAUDE_MODEL_DEEP/_STANDARD/_LIGHT override);
# - read-only roles get read-only tools; others may edit in the worktree and run the
#   project's tests (mso.crew.testCommand -> MSO_TEST_COMMAND -> --allowedTools "Bash(<cmd>:*)");
# - limits: mso.crew.maxTurns -> --max-turns, the order's budget left -> --max-budget-usd;
# - is_error, an error subtype or an empty result fail the role, whatever the exit status.
set -eu
. "$(dirname "$0")/adapter-lib.sh"
mso_require claude
model=$(mso_model "${CLAUDE_MODEL_DEEP:-opus}" "${CLAUDE_MODEL_STANDARD:-sonnet}" "${CLAUDE_MODEL_LIGHT:-haiku}")
set -- -p --model "$model" --output-format stream-json --verbose
if mso_read_only; then
  set -- "$@" --permission-mode dontAsk --allowedTools "Read,Grep,Glob"
elif [ -n "${MSO_TEST_COMMAND:-}" ]; then
  set -- "$@" --permission-mode acceptEdits --allowedTools "Read,Grep,Glob,Edit,Write,Bash(${MSO_TEST_COMMAND}:*)"
else
  set -- "$@" --permission-mode acceptEdits
fi
[ -n "${MSO_MAX_TURNS:-}" ] && set -- "$@" --max-turns "$MSO_MAX_TURNS"
[ -n "${MSO_BUDGET_USD:-}" ] && set -- "$@" --max-budget-usd "$MSO_BUDGET_USD"
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
status=0
mso_stream "$raw" claude "$@" || status=$?
# git-mso reads the stream's result event: the message, tokens, cost, turns.
cp "$raw" "$MSO_RESULT_FILE"
[ "$status" = 0 ] || mso_fail "claude exited with status $status"
result=$(grep '"type"[[:space:]]*:[[:space:]]*"result"' "$raw" | tail -n 1)
[ -n "$result" ] || mso_fail "claude printed no result event"
if printf '%s' "$result" | grep -Eq '"is_error"[[:space:]]*:[[:space:]]*true|"subtype"[[:space:]]*:[[:space:]]*"error'; then
  mso_fail "claude reported an error"
fi
printf '%s' "$result" | grep -q '"result"[[:space:]]*:[[:space:]]*"[^"]' || mso_fail "claude returned an empty result"
