# Shared by the coding-agent adapters in this directory (sourced, not run).
# Order text never passes through a shell string here: prompts are read from
# MSO_BRIEF_FILE by the tool itself, on stdin or from the file.

# The tool's model for MSO_MODEL's tier: mso_model DEEP STANDARD LIGHT
# (an adapter passes its defaults, already overridden from its own env).
mso_model() {
  case "${MSO_MODEL:-standard}" in
    deep) printf '%s' "$1" ;;
    light) printf '%s' "$3" ;;
    *) printf '%s' "$2" ;;
  esac
}

# Whether this role must not change files (SEC, or any role the ledger marks read-only).
mso_read_only() {
  [ "${MSO_READ_ONLY:-0}" = 1 ] || [ "${MSO_ROLE:-}" = SEC ]
}

# Fail the role with a message on stderr (the crew log).
mso_fail() {
  echo "$*" >&2
  exit 1
}

# mso_stream OUT CMD...: run CMD with the brief on stdin; what it prints goes
# to the crew log as it happens and into OUT; returns CMD's exit status.
mso_stream() {
  out=$1
  shift
  status_file=$(mktemp)
  { "$@" < "$MSO_BRIEF_FILE"; echo $? > "$status_file"; } | tee "$out"
  status=$(cat "$status_file")
  rm -f "$status_file"
  return "${status:-1}"
}

# mso_stream_capped OUT PATTERN MAX CMD...: like mso_stream, but stops CMD
# once more than MAX lines of its output match PATTERN (an extended regex:
# its turns or steps), and then returns 124.
mso_stream_capped() {
  out=$1 pattern=$2 max=$3
  shift 3
  status_file=$(mktemp)
  pid_file=$(mktemp)
  { "$@" < "$MSO_BRIEF_FILE" & echo $! > "$pid_file"; wait $!; echo $? > "$status_file"; } | tee "$out" &
  pipe=$!
  while kill -0 "$pipe" 2>/dev/null; do
    if [ "$(grep -Ec "$pattern" "$out" || true)" -gt "$max" ]; then
      # Stop the tool and stop listening; whatever it left running is
      # stopped with the crew's process group when this script exits.
      kill "$(cat "$pid_file")" "$pipe" 2>/dev/null || true
      rm -f "$status_file" "$pid_file"
      return 124
    fi
    sleep 0.2
  done
  wait "$pipe" || true
  status=$(cat "$status_file")
  rm -f "$status_file" "$pid_file"
  return "${status:-1}"
}

# The tool must exist before anything else is tried: a missing tool is a
# failure that running again cannot fix (exit 127 fails the role for good).
mso_require() {
  command -v "$1" >/dev/null 2>&1 || { echo "$1 is not installed or not on PATH" >&2; exit 127; }
}
