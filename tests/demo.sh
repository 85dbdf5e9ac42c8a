#!/usr/bin/env bash
# Sets up snapbox (packages + build) and walks through its main job on a small
# demo workspace in a temporary directory: a sandboxed run of an "agent" that
# edits, deletes, adds and tries to escape; review of its staged changes;
# apply; and a restore back to the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=$(bash tests/setup.sh | tail -n 1)
sb="$PWD/$builddir/cli/snapbox"
demo=$(mktemp -d "${TMPDIR:-/tmp}/snapbox-demo.XXXXXX")
trap 'rm -rf "$demo"' EXIT
export SNAPBOX_STORE="$demo/store"
ws="$demo/workspace"
mkdir -p "$ws/src"
printf 'int add(int a, int b) { return a - b; }\n' >"$ws/src/add.c"
printf '# demo\n' >"$ws/README.md"
printf 'scratch\n' >"$ws/notes.txt"

step() { printf '\n\033[1m$ %s\033[m\n' "$*"; }

agent='sed -i "s/a - b/a + b/" src/add.c
echo "fixed add()" >> README.md
rm notes.txt
mkdir tests && echo "assert(add(2, 2) == 4);" > tests/add_test.c
touch /etc/pwned 2>/dev/null || echo "agent: cannot write outside the workspace"
cat ~/.ssh/id_rsa 2>/dev/null || echo "agent: no ssh keys in here"'

step "snapbox run -- sh -c '<an agent that edits, deletes, adds and tries to escape>'"
"$sb" -C "$ws" run -- sh -c "$agent"

step "ls (the workspace is untouched until you apply)"
ls "$ws"

step snapbox diff
"$sb" -C "$ws" diff

step snapbox apply
"$sb" -C "$ws" apply

step snapbox list
"$sb" -C "$ws" list

step "snapbox restore 0 (back to the baseline)"
"$sb" -C "$ws" restore 0

step snapbox status
"$sb" -C "$ws" status
step ls
ls "$ws"
