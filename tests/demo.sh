#!/usr/bin/env bash
# Sets up snapbox (packages + build) and walks through its main job on a small
# demo workspace in a temporary directory: snapshot, a change, status, diff,
# list, and a restore back to the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=$(bash tests/setup.sh | tail -n 1)
sb="$PWD/$builddir/cli/snapbox"
demo=$(mktemp -d "${TMPDIR:-/tmp}/snapbox-demo.XXXXXX")
trap 'rm -rf "$demo"' EXIT
export SNAPBOX_STORE="$demo/store"
ws="$demo/workspace"
mkdir -p "$ws/src"
printf 'int main(void) { return 0; }\n' >"$ws/src/main.c"
printf '# demo\n' >"$ws/README.md"

step() { printf '\n\033[1m$ %s\033[m\n' "$*"; }

step snapbox snapshot -m baseline
"$sb" -C "$ws" snapshot -m baseline

step 'echo "// edited" >> src/main.c; rm README.md; echo new > notes.txt'
echo "// edited" >>"$ws/src/main.c"
rm "$ws/README.md"
echo new >"$ws/notes.txt"

step snapbox status
"$sb" -C "$ws" status

step snapbox diff
"$sb" -C "$ws" diff || true

step snapbox list
"$sb" -C "$ws" list

step snapbox restore 0
"$sb" -C "$ws" restore 0

step snapbox status
"$sb" -C "$ws" status
step ls
ls -A "$ws"
