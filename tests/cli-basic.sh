#!/usr/bin/env bash
# snapshot, list, show, status: the everyday verbs, judged by find/sha256sum
# and by parsing --json with python.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Every verb answers --help with its usage on stdout and exit 0.
verbs=$("$SNAPBOX" --help | awk '/^Verbs:/{on=1; next} /^$/{on=0} on{print $1}')
check "--help lists at least the 12 verbs of the contract" test "$(wc -w <<<"$verbs")" -ge 12
for v in $verbs; do
	out=$(sb "$v" --help 2>&1)
	if [ $? = 0 ] && grep -q "usage: snapbox $v" <<<"$out"; then ok "$v --help"; else not_ok "$v --help"; fi
done
# The man page renders cleanly and documents every verb the binary lists.
if command -v groff >/dev/null; then
	check "the man page renders without warnings" test -z "$(groff -man -Tutf8 -ww -z "$SB_SRC/cli/snapbox.1" 2>&1)"
else
	skip "the man page renders without warnings" "groff is not installed"
fi
missing=""
for v in $verbs; do
	grep -qE "^[.](B|BR|BI) $v( |\$)" "$SB_SRC/cli/snapbox.1" || missing="$missing $v"
done
check "the man page documents every verb (missing:${missing:- none})" test -z "$missing"
check "--version prints the version" bash -c "'$SNAPBOX' --version | grep -q '^snapbox [0-9]'"
expect_status 2 "unknown verb is a usage error" sb frobnicate
check "unknown verb is named" last_err_has "'frobnicate' is not a snapbox verb"
expect_status 2 "unknown option is a usage error" sb snapshot --bogus
expect_status 2 "no verb prints usage with status 2" sb

ws=$T/ws
mkdir -p "$ws/src" "$ws/docs"
for i in $(seq 1 50); do echo "file $i" >"$ws/src/f$i.c"; done
echo "readme" >"$ws/docs/README"
touch -d '2020-01-01 00:00:00' "$ws"/src/* "$ws/docs/README"
# The touch set every ctime to now: a snapshot in the same clock tick would
# (rightly) find them racily clean and hash them again next time.
sleep 0.05

expect_status 0 "first snapshot" sb -C "$ws" --json snapshot -m "first one"
id=$(jq_ 'd["id"]' <"$T/.out")
check "first snapshot is number 0" test "$id" = 0
hashed=$(jq_ 'd["scan"]["files_hashed"]' <"$T/.out")
check "first snapshot hashed all 51 files" test "$hashed" = 51

expect_status 0 "unchanged re-snapshot" sb -C "$ws" --json snapshot
check "unchanged re-snapshot reuses snapshot 0" test "$(jq_ 'd["id"], d["reused"]' <"$T/.out" | tr '\n' ' ')" = "0 True "
check "unchanged re-scan hashes zero files" test "$(jq_ 'd["scan"]["files_hashed"]' <"$T/.out")" = 0
idx=$(ls "$SNAPBOX_STORE"/workspaces/*/index)
before=$(stat -c %y "$idx")
sleep 0.05
expect_status 0 "another unchanged re-snapshot" sb -C "$ws" snapshot
check "an unchanged re-scan does not rewrite the stat cache" test "$(stat -c %y "$idx")" = "$before"
expect_status 0 "-v reports the hash counter" sb -C "$ws" -v snapshot
check "-v line says hashed 0 files" last_err_has "hashed 0 files"

echo "changed" >>"$ws/src/f7.c"
rm "$ws/src/f9.c"
echo new >"$ws/docs/new.txt"
mkdir "$ws/empty"
chmod 600 "$ws/src/f1.c"
expect_status 0 "status after edits" sb -C "$ws" status
want=$(printf 'A docs/new.txt\nA empty/\nD src/f9.c\nM src/f1.c\nM src/f7.c\n')
got=$(LC_ALL=C sort "$T/.out")
if [ "$got" = "$want" ]; then ok "status lists exactly the edits"; else
	not_ok "status lists exactly the edits"
	diag "$got"
fi
expect_status 0 "status --json" sb -C "$ws" --json status
check "status --json has 5 changes" test "$(jq_ 'len(d["changes"])' <"$T/.out")" = 5

expect_status 0 "second snapshot" sb -C "$ws" --json snapshot
check "second snapshot is number 1" test "$(jq_ 'd["id"]' <"$T/.out")" = 1
check "only the changed files were hashed" test "$(jq_ 'd["scan"]["files_hashed"]' <"$T/.out")" -le 3
check "file counts +1 ~2 -1" test "$(jq_ 'd["changes"]["added"], d["changes"]["modified"], d["changes"]["deleted"]' <"$T/.out" | tr '\n' ' ')" = "1 2 1 "

expect_status 0 "status after snapshot" sb -C "$ws" status
check "status is clean" last_out_has "no changes since snapshot 1"

expect_status 0 "list" sb -C "$ws" list
check "list shows both snapshots" test "$(grep -cE '^ +[01] ' "$T/.out")" = 2
check "list shows the message" last_out_has "first one"
expect_status 0 "list --json" sb -C "$ws" list --json
check "list --json has two entries with reason manual" test "$(jq_ '[s["reason"] for s in d]' <"$T/.out")" = "['manual', 'manual']"

expect_status 0 "show 0 --json" sb -C "$ws" show 0 --json
root0=$(jq_ 'd["root"]' <"$T/.out")
check "show gives a 64-hex root" bash -c "[[ '$root0' =~ ^[0-9a-f]{64}$ ]]"
check "show 0 has the message" test "$(jq_ 'd["message"]' <"$T/.out")" = "first one"
check "show 0 records 51 files" test "$(jq_ 'd["stats"]["files"]' <"$T/.out")" = 51

# Options before or after the verb.
expect_status 0 "-C after the verb" sb list -C "$ws"
expect_status 0 "--store after the verb" sb list --store "$SNAPBOX_STORE" -C "$ws"

# Exclusions: --exclude and .snapboxignore, recorded in the manifest.
printf 'build/\n*.tmp\n!keep.tmp\n' >"$ws/.snapboxignore"
mkdir -p "$ws/build" && echo obj >"$ws/build/out.o"
echo t >"$ws/x.tmp"
echo k >"$ws/keep.tmp"
echo l >"$ws/debug.log"
expect_status 0 "snapshot with exclusions" sb -C "$ws" --json snapshot --exclude '*.log'
n=$(jq_ 'd["id"]' <"$T/.out")
expect_status 0 "export the snapshot with exclusions" sb -C "$ws" export "$n" "$T/ex"
check "excluded paths are not in the snapshot" bash -c "! test -e '$T/ex/build' && ! test -e '$T/ex/x.tmp' && ! test -e '$T/ex/debug.log'"
check "negated pattern is kept" test -f "$T/ex/keep.tmp"
check ".snapboxignore itself is recorded" test -f "$T/ex/.snapboxignore"
expect_status 0 "show --json of it" sb -C "$ws" --json show "$n"
check "manifest records the patterns" test "$(jq_ 'sorted(d["exclusions"])' <"$T/.out")" = "['!keep.tmp', '*.log', '*.tmp', 'build/']"

# Colour only on terminals: a pipe gets none, even without NO_COLOR.
out=$(env -u NO_COLOR "$SNAPBOX" -C "$ws" status | od -c | grep -c '033' || true)
check "no colour escapes in a pipe" test "$out" = 0
out=$(env -u NO_COLOR "$SNAPBOX" --color=always -C "$ws" list | od -c | grep -c '033' || true)
check "--color=always forces colour" test "$out" -gt 0

done_testing
