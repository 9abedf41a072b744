#!/usr/bin/env bash
# The whole ledger on a throwaway repository: init, file orders on voyages,
# and read the same state with git-mso and with plain git.
# Usage: scripts/demo.sh        (KEEP=1 keeps the repository and prints where)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
echo "building git-mso (release)…"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
export PATH="$root/target/release:$PATH"

work=$(mktemp -d)
if [ "${KEEP:-}" = 1 ]; then echo "demo repository kept in $work/demo"; else trap 'rm -rf "$work"' EXIT; fi
cd "$work"
git init -q -b main demo
cd demo
git config user.name "alice"
git config user.email "alice@example.com"
echo "# demo" > README.md
git add README.md
git commit -q -m "first commit"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
run() {
  # Echo the command as it would be typed: arguments with spaces quoted.
  local shown="" arg
  for arg in "$@"; do
    case "$arg" in
      *[[:space:]]*) shown+=" \"$arg\"" ;;
      *) shown+=" $arg" ;;
    esac
  done
  printf '\n%s$%s%s\n' "$bold" "$shown" "$plain"
  "$@"
}

run git mso init
run git mso order new --title "Add login page" --ac "a user can log in" --ac "bad password is refused"
run git mso order new --kind BUG --title "Login button misaligned" --voyage VOY-0001 --brief "Seen on narrow screens."
run git mso order new --kind CHR --title "Bump dependencies"
run git mso order cancel CHR-0001 --reason "done upstream"
run git mso order list
run git mso status
run git mso order show FTR-0001
run git mso log
echo
echo "# the same state with plain git:"
run git log --oneline refs/mso/ledger
run git show refs/mso/ledger:orders/FTR-00/_index.jsonl
run git log -1 --format=%B refs/mso/ledger
run git branch --list 'voyage/*'
run git mso fsck
