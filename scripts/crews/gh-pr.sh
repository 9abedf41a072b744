#!/bin/sh
# Forge adapter: open (or update) a GitHub pull request for a voyage with the
# GitHub CLI. Follows gh 2.x flags (`gh pr list|create|edit`). Configure once:
#   git config mso.publish.command "$(git rev-parse --show-toplevel)/scripts/crews/gh-pr.sh"
#
# git-mso has already pushed the branch; it passes everything in the environment,
# never in a command string: MSO_PR_TITLE, MSO_PR_BODY_FILE, MSO_PR_BASE (target
# branch), MSO_PR_HEAD (voyage/VOY-NNNN), MSO_REMOTE, MSO_VOYAGE. The pull
# request's URL goes to MSO_RESULT_FILE and is recorded with VOYAGE_PUBLISHED.
set -eu
command -v gh >/dev/null 2>&1 || { echo "gh is not installed or not on PATH" >&2; exit 127; }
# An open pull request of this branch (never a closed or merged one) is updated.
url=$(gh pr list --head "$MSO_PR_HEAD" --state open --json url --jq '.[0].url // empty')
if [ -n "$url" ]; then
  gh pr edit "$url" --title "$MSO_PR_TITLE" --body-file "$MSO_PR_BODY_FILE" >/dev/null
else
  url=$(gh pr create --base "$MSO_PR_BASE" --head "$MSO_PR_HEAD" --title "$MSO_PR_TITLE" \
    --body-file "$MSO_PR_BODY_FILE" | tail -n 1)
fi
case "$url" in
  http*) printf '%s\n' "$url" > "$MSO_RESULT_FILE" ;;
  *) echo "gh did not print a pull request URL: $url" >&2; exit 1 ;;
esac
