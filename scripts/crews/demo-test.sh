#!/bin/sh
# Demo TST crew: checks each acceptance criterion against what BLD built and
# gives a verdict per criterion (result schema mso.result/1). A criterion
# without its step in the build fails, which sends the order back to BLD.
set -eu
out="src/$(echo "$MSO_ORDER" | tr 'A-Z' 'a-z').txt"
test -f "$out" || { echo "FAIL: $out is missing" >&2; exit 1; }
json() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
criteria=$(sed -n '/^## Acceptance criteria/,/^## /{/^[0-9][0-9]*\. /p}' "$MSO_BRIEF_FILE")
verdicts="" passed=0 total=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  n=${line%%.*}
  text=${line#*. }
  total=$((total + 1))
  if grep -qxF "1. Make it so: $text" "$out"; then
    verdict=pass reason="$out has its step"
    passed=$((passed + 1))
  else
    verdict=fail reason="$out has no step for it"
  fi
  echo "criterion $n: $verdict ($reason)"
  verdicts="$verdicts${verdicts:+,}{\"criterion\": $n, \"verdict\": \"$verdict\", \"reason\": \"$(json "$reason")\"}"
done <<LIST
$criteria
LIST
# Usage as a coding agent would report it; the demo estimates tokens as bytes / 4 and costs nothing.
tokens_in=$(( ($(wc -c < "$MSO_BRIEF_FILE") + $(wc -c < "$out")) / 4 )) tokens_out=$(( ${#verdicts} / 4 ))
printf '{"schema": "mso.result/1", "summary": "checked %s: %s of %s criteria pass", "criteria": [%s], "usage": {"model": "demo-sh", "tokens_in": %s, "tokens_out": %s, "turns": 1}}\n' \
  "$out" "$passed" "$total" "$verdicts" "$tokens_in" "$tokens_out" > "$MSO_RESULT_FILE"
