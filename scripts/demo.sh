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
      *\"*) shown+=" '$arg'" ;;
      *[[:space:]]*) shown+=" \"$arg\"" ;;
      *) shown+=" $arg" ;;
    esac
  done
  printf '\n%s$%s%s\n' "$bold" "$shown" "$plain"
  "$@"
}

crews="$root/scripts/crews"
run git mso init
# What each role runs comes from this clone's git config, never from the ledger.
run git config mso.crew.PLN.command "$crews/demo-plan.sh"
run git config mso.crew.BLD.command "$crews/demo-build.sh"
run git config mso.crew.TST.command "$crews/demo-test.sh"
# A quality gate: BLD only hands off if its output file exists (the gate sees the crew's environment).
run git config mso.gate.BLD.command 'test -s "src/$(echo "$MSO_ORDER" | tr A-Z a-z).txt"'

run git mso order new --title "Add login page" --ac "a user can log in" --ac "bad password is refused"
run git mso order new --kind BUG --title "Login button misaligned" --voyage VOY-0001 --ac "the button lines up on narrow screens"
# The demo builder skips the last step once when a brief asks it to: the tester's verdict sends it back.
run git mso order new --kind CHR --title "Bump dependencies" --brief "The demo builder will skip the last step once." \
  --ac "the lock file is current" --ac "the changelog names the bumps"
run git mso status
# FTR-0001's plan waits for review and holds VOY-0001 meanwhile: BUG-0001, on the
# same voyage, waits too, so nothing builds on a plan nobody has read.
run git mso dispatch --max-parallel 2
run git mso review list
# What approving accepts: the plan's commits, with the note saying who made them, and the diff.
run git mso review show FTR-0001 --stat
run git mso review approve FTR-0001 --comment "plan looks right"
run git mso dispatch --max-parallel 2
run git mso review reject BUG-0001 --reason "also cover the settings page"
run git mso dispatch --max-parallel 2
run git mso review approve BUG-0001
run git mso dispatch --max-parallel 2
run git mso status
run git mso order show FTR-0001
# CHR-0001's tester failed one criterion and sent it back to the builder, who fixed it.
run git mso order show CHR-0001
run git mso order show CHR-0001 --brief --role BLD
echo
echo "# the voyage branches carry the work, with notes saying who made each commit:"
run git log --notes=mso --format='%h %s%n%N' voyage/VOY-0001
echo "# the pipeline's whole history, with plain git:"
run git log --oneline refs/mso/ledger
run git show refs/mso/ledger:orders/FTR-00/_index.jsonl
run git mso fsck

echo
echo "# publish VOY-0001 as a pull request to a remote, then merge it there:"
git init -q --bare ../origin.git
run git remote add origin ../origin.git
run git push -q origin main
run git mso voyage publish VOY-0001
run git merge -q --no-ff -m "Merge voyage/VOY-0001" voyage/VOY-0001
run git push -q origin main
# sync notices that the voyage's head reached main, and records the landing.
run git mso sync
run git mso voyage show VOY-0001
run git mso voyage list
echo
echo "# what every run took, from the run reports in the ledger:"
run git mso cost --by role
run git mso cost
