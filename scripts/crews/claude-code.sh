#!/bin/sh
# Crew adapter for Claude Code (`claude`), headless. Configure per role, e.g.
#   git config mso.crew.BLD.command "$PWD/scripts/crews/claude-code.sh"
#
# - the prompt is the brief file on stdin: order text never passes through a shell string;
# - MSO_MODEL (deep|standard|light) maps to a model name; override with CLAUDE_MODEL_<TIER>;
# - read-only roles (MSO_READ_ONLY=1, or SEC) get read-only tools, others may edit in the worktree;
# - claude's JSON goes to MSO_RESULT_FILE (git-mso takes its `result`); `is_error: true` or an
#   empty result fails the role.
set -eu
command -v claude >/dev/null 2>&1 || { echo "claude is not installed or not on PATH" >&2; exit 127; }
case "${MSO_MODEL:-standard}" in
  deep) model="${CLAUDE_MODEL_DEEP:-opus}" ;;
  light) model="${CLAUDE_MODEL_LIGHT:-haiku}" ;;
  *) model="${CLAUDE_MODEL_STANDARD:-sonnet}" ;;
esac
if [ "${MSO_READ_ONLY:-0}" = 1 ] || [ "$MSO_ROLE" = SEC ]; then
  set -- --permission-mode dontAsk --allowedTools "Read,Grep,Glob"
else
  set -- --permission-mode acceptEdits
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
claude -p --model "$model" --output-format json "$@" < "$MSO_BRIEF_FILE" > "$out"
# Turn "looked fine but failed" into a failure.
if grep -q '"is_error"[[:space:]]*:[[:space:]]*true' "$out"; then
  echo "claude reported an error:" >&2
  cat "$out" >&2
  exit 1
fi
if ! grep -q '"result"[[:space:]]*:[[:space:]]*"[^"]' "$out"; then
  echo "claude returned an empty result" >&2
  exit 1
fi
# git-mso reads the JSON's "result" field as the hand-off (no jq needed).
cp "$out" "$MSO_RESULT_FILE"
