#!/bin/sh
# Forge adapter: open or update a GitLab merge request for a voyage with the
# GitLab CLI. Follows glab 1.4x flags (`glab mr list|create|update`). Configure once:
#   git config mso.publish.command "$(git rev-parse --show-toplevel)/scripts/crews/glab-mr.sh"
#
# git-mso has already pushed the branch; it passes everything in the environment,
# never in a command string: MSO_PR_TITLE, MSO_PR_BODY_FILE, MSO_PR_BASE (target
# branch), MSO_PR_HEAD (voyage/VOY-NNNN), MSO_REMOTE, MSO_VOYAGE. The merge
# request's URL goes to MSO_RESULT_FILE and is recorded with VOYAGE_PUBLISHED.
set -eu
command -v glab >/dev/null 2>&1 || { echo "glab is not installed or not on PATH" >&2; exit 127; }
# The branch's open merge request (glab lists open ones), if there is one.
url=$(glab mr list --source-branch "$MSO_PR_HEAD" --output json 2>/dev/null \
  | grep -o '"web_url": *"[^"]*merge_requests/[0-9]*"' | head -n 1 | sed 's/.*"\(http[^"]*\)"/\1/' || true)
if [ -n "$url" ]; then
  # Published before: bring its title and description up to date.
  glab mr update "$MSO_PR_HEAD" --title "$MSO_PR_TITLE" --description "$(cat "$MSO_PR_BODY_FILE")" >/dev/null
else
  out=$(glab mr create --source-branch "$MSO_PR_HEAD" --target-branch "$MSO_PR_BASE" \
    --title "$MSO_PR_TITLE" --description "$(cat "$MSO_PR_BODY_FILE")" --yes 2>&1) || {
    printf '%s\n' "$out" >&2
    exit 1
  }
  url=$(printf '%s\n' "$out" | grep -o 'https\?://[^ ]*merge_requests/[0-9]*' | tail -n 1 || true)
fi
if [ -z "$url" ]; then
  echo "glab did not give a merge request URL" >&2
  exit 1
fi
printf '%s\n' "$url" > "$MSO_RESULT_FILE"
