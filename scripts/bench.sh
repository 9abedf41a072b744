#!/usr/bin/env bash
# Print the benchmark table: git-mso vs the git CLI plumbing baseline, same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet --bench ledger
