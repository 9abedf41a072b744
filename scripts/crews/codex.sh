#!/bin/sh
# Crew adapter for the OpenAI Codex CLI (`codex exec`, flags of the 0.5x CLI), headless:
#   git config mso.crew.BLD.command "$PWD/scripts/crews/codex.sh"
#
# - the brief goes in on stdin (`codex exec -`); its JSONL events stream to the crew log;
# - MSO_MODEL deep|standard|light -> gpt-5.1-codex-max|gpt-5.1-codex|gpt-5.1-codex-mini
#   (CODEX_MODEL_DEEP/_STANDARD/_LIGHT override);
# - read-only roles run in `--sandbox read-only`; others in `--sandbox workspace-write`, which
#   lets them edit the worktree and run the project's tests there, nothing outside it;
# - limits: Codex has no turn flag, so mso.crew.maxTurns (MSO_MAX_TURNS) caps the commands
#   and edits it may make: past it, codex is stopped and the role fails;
# - `turn.failed` or `error` events, or no final message, fail the role (exit 0 is not enough).
set -eu
. "$(dirname "$0")/adapter-lib.sh"
mso_require codex
model=$(mso_model "${CODEX_MODEL_DEEP:-gpt-5.1-codex-max}" "${CODEX_MODEL_STANDARD:-gpt-5.1-codex}" "${CODEX_MODEL_LIGHT:-gpt-5.1-codex-mini}")
if mso_read_only; then sandbox=read-only; else sandbox=workspace-write; fi
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
status=0
step='"type"[[:space:]]*:[[:space:]]*"item.completed".*"type"[[:space:]]*:[[:space:]]*"(command_execution|file_change)"'
mso_stream_capped "$raw" "$step" "${MSO_MAX_TURNS:-1000000}" codex exec --json -m "$model" --sandbox "$sandbox" - || status=$?
cp "$raw" "$MSO_RESULT_FILE"
[ "$status" != 124 ] || mso_fail "codex was stopped after more than ${MSO_MAX_TURNS:-} steps (mso.crew.maxTurns)"
[ "$status" = 0 ] || mso_fail "codex exited with status $status"
if grep -Eq '"type"[[:space:]]*:[[:space:]]*"(turn.failed|error)"' "$raw"; then
  mso_fail "codex reported a failed turn"
fi
grep -q '"type"[[:space:]]*:[[:space:]]*"agent_message"' "$raw" || mso_fail "codex gave no final message"
