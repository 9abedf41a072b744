#!/bin/sh
# Demo BLD crew: "implements" the plan by writing a file per step.
set -eu
plan="plans/$MSO_ORDER.md"
mkdir -p src plans
if [ ! -f "$plan" ]; then
  # No planning role in this order's sequence: build straight from the acceptance criteria.
  sed -n '/^## Acceptance criteria/,/^## /{/^- /p}' "$MSO_BRIEF_FILE" | sed 's/^- /1. Make it so: /' > "$plan"
  echo "1. Cover each step with a check." >> "$plan"
fi
out="src/$(echo "$MSO_ORDER" | tr 'A-Z' 'a-z').txt"
{
  echo "Built for $MSO_ORDER by $MSO_PERSONA following $plan:"
  grep '^1\. ' "$plan"
} > "$out"
# What the planner handed over is in the brief too.
handoff=$(sed -n '/^## Hand-offs from earlier roles/,$p' "$MSO_BRIEF_FILE" | grep -c '^### PLN' || true)
printf '{"summary": "built %s from the plan (%s PLN hand-off in the brief)"}\n' "$out" "$handoff" > "$MSO_RESULT_FILE"
echo "built $out"
