#!/bin/sh
# Demo PLN crew: turns the brief into a plan file on the voyage branch and
# hands the plan to the later roles. Needs nothing installed, no network.
set -eu
plan="plans/$MSO_ORDER.md"
mkdir -p plans
{
  echo "# Plan for $MSO_ORDER (by $MSO_PERSONA, model tier $MSO_MODEL, attempt $MSO_ATTEMPT)"
  echo
  echo "## Steps"
  # One step per acceptance criterion ("1. text" in the brief), read from the
  # brief file (never from a command line).
  sed -n '/^## Acceptance criteria/,/^## /{/^[0-9][0-9]*\. /p}' "$MSO_BRIEF_FILE" | sed 's/^[0-9][0-9]*\. /1. Make it so: /'
  echo "1. Cover each step with a check."
  if grep -q '^## Review feedback' "$MSO_BRIEF_FILE"; then
    echo
    echo "## Addressing review feedback"
    sed -n '/^## Review feedback/,$p' "$MSO_BRIEF_FILE" | sed -n '/^- /p'
  fi
} > "$plan"
steps=$(grep -c '^1\. ' "$plan")
# Usage as a coding agent would report it; the demo estimates tokens as bytes / 4 and costs nothing.
tokens_in=$(( $(wc -c < "$MSO_BRIEF_FILE") / 4 )) tokens_out=$(( $(wc -c < "$plan") / 4 ))
printf '{"summary": "wrote %s with %s steps", "plan": "see %s on the voyage branch", "usage": {"model": "demo-sh", "tokens_in": %s, "tokens_out": %s, "turns": 1}}\n' \
  "$plan" "$steps" "$plan" "$tokens_in" "$tokens_out" > "$MSO_RESULT_FILE"
echo "planned $MSO_ORDER: $plan"
