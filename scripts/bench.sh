#!/usr/bin/env bash
# Print the benchmark tables: git-mso vs the git CLI plumbing baseline, same
# run; then N runner clones racing for work through one bare repository.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench ledger
echo
cargo bench --quiet --bench runners
