#!/bin/sh
# Crew adapter for the Gemini CLI (`gemini`, flags of the 0.1x CLI), headless:
#   git config mso.crew.BLD.command "$PWD/scripts/crews/gemini.sh"
#
# - the brief goes in on stdin with a one-line prompt pointing at it; stream-json events
#   stream to the crew log;
# - MSO_MODEL deep|standard|light -> gemini-2.5-pro|gemini-2.5-pro|gemini-2.5-flash
#   (GEMINI_MODEL_DEEP/_STANDARD/_LIGHT override);
# - read-only roles keep the default approval mode, in which a headless run may not use tools
#   that write or run commands; others may edit (auto_edit) and run the project's tests
#   (MSO_TEST_COMMAND -> --allowed-tools "run_shell_command(<cmd>)");
# - limits: mso.crew.maxTurns -> model.maxSessionTurns in a settings file of its own
#   (GEMINI_CLI_SYSTEM_SETTINGS_PATH); exit 53 is "turn limit reached";
# - a non-success result event or an error event fails the role; exit 42 (bad input) and
#   55 (untrusted folder) are explained in the log.
set -eu
. "$(dirname "$0")/adapter-lib.sh"
mso_require gemini
model=$(mso_model "${GEMINI_MODEL_DEEP:-gemini-2.5-pro}" "${GEMINI_MODEL_STANDARD:-gemini-2.5-pro}" "${GEMINI_MODEL_LIGHT:-gemini-2.5-flash}")
set -- -m "$model" --output-format stream-json -p "Follow the brief given on standard input."
if mso_read_only; then
  set -- "$@" --approval-mode default
elif [ -n "${MSO_TEST_COMMAND:-}" ]; then
  set -- "$@" --approval-mode auto_edit --allowed-tools "run_shell_command(${MSO_TEST_COMMAND})"
else
  set -- "$@" --approval-mode auto_edit
fi
raw=$(mktemp)
settings=$(mktemp)
trap 'rm -f "$raw" "$settings"' EXIT
if [ -n "${MSO_MAX_TURNS:-}" ]; then
  printf '{"model": {"maxSessionTurns": %s}}\n' "$MSO_MAX_TURNS" > "$settings"
  export GEMINI_CLI_SYSTEM_SETTINGS_PATH="$settings"
fi
# The crew's worktree is the only folder it works in: trust it for this run.
export GEMINI_CLI_TRUST_WORKSPACE=true
status=0
mso_stream "$raw" gemini "$@" || status=$?
cp "$raw" "$MSO_RESULT_FILE"
case "$status" in
  0) ;;
  42) mso_fail "gemini refused its input (exit 42)" ;;
  53) mso_fail "gemini reached its turn limit (exit 53, mso.crew.maxTurns)" ;;
  55) mso_fail "gemini does not trust the folder (exit 55)" ;;
  *) mso_fail "gemini exited with status $status" ;;
esac
if grep -q '"type"[[:space:]]*:[[:space:]]*"error"' "$raw"; then mso_fail "gemini reported an error"; fi
result=$(grep '"type"[[:space:]]*:[[:space:]]*"result"' "$raw" | tail -n 1)
[ -n "$result" ] || mso_fail "gemini printed no result event"
printf '%s' "$result" | grep -q '"status"[[:space:]]*:[[:space:]]*"success"' || mso_fail "gemini's run did not succeed"
