#!/usr/bin/env bash
# Print the benchmark tables: git-mso vs the git CLI plumbing baseline, same
# run; then N runner clones racing for work through one bare repository.
set -euo pipefail
cd "$(dirname "$0")/.."
# git-issue, the baseline for filing an order on a new voyage: fetched into a
# temporary directory when the network allows (it is GPL; nothing of it is kept).
if [ -z "${MSO_GIT_ISSUE:-}" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if git clone -q --depth 1 https://github.com/dspinellis/git-issue "$tmp/git-issue" 2>/dev/null; then
    export MSO_GIT_ISSUE="$tmp/git-issue/git-issue.sh"
  else
    echo "git-issue could not be fetched; its row is left out (set MSO_GIT_ISSUE)" >&2
  fi
fi
cargo bench --quiet --bench ledger
echo
cargo bench --quiet --bench runners
