#!/bin/sh
# Demo TST crew: checks that what BLD built follows the plan. Fails the role if not.
set -eu
out="src/$(echo "$MSO_ORDER" | tr 'A-Z' 'a-z').txt"
plan="plans/$MSO_ORDER.md"
test -f "$out" || { echo "FAIL: $out is missing" >&2; exit 1; }
want=$(grep -c '^1\. ' "$plan")
got=$(grep -c '^1\. ' "$out")
if [ "$want" != "$got" ]; then
  echo "FAIL: plan has $want steps, build covers $got" >&2
  exit 1
fi
printf '{"summary": "checked %s: %s of %s plan steps covered"}\n' "$out" "$got" "$want" > "$MSO_RESULT_FILE"
echo "ok: $out covers all $want steps"
