#!/usr/bin/env bash
# restore N: exact return to a snapshot, judged by an independent listing taken
# before the snapshot; undo through the pre-restore snapshot; symlink attacks
# never reach outside the workspace.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

ws=$T/ws
make_hostile_tree "$ws" 1G
mkdir -p "$ws/bigdir/inner"
for i in $(seq 1 300); do echo "$i" >"$ws/bigdir/inner/f$i"; done
echo "log" >"$ws/keep.log"
printf '*.log\n' >"$ws/.snapboxignore"
listing "$ws" >"$T/before"
expect_status 0 "snapshot 0 of a hostile tree" sb -C "$ws" snapshot

# Heavy mutation: edit, delete, add, chmod, type swaps, renames.
(
	cd "$ws" || exit 1
	echo edited >>plain.txt
	rm -f $'new\nline' -- -rf
	echo added >added-file
	mkdir -p added-dir/x && echo y >added-dir/x/y
	chmod 600 suid
	chmod 755 noperm
	rm -r sub && echo "now a file" >sub               # dir -> file
	rm empty && mkdir empty && echo z >empty/z        # file -> dir
	rm dangling && echo "was a link" >dangling        # symlink -> file
	rm plain.txt && ln -s /etc/hostname plain.txt     # file -> symlink
	mv bigdir bigdir-renamed                          # rename a big directory
	rm fifo && echo notfifo >fifo
	chmod 755 rodir && rm rodir/f && chmod 555 rodir
	truncate -s 10M sparse
	echo "excluded and new" >new.log
	touch -d '2001-01-01' sticky
)
expect_status 0 "restore --dry-run lists changes" sb -C "$ws" restore --dry-run 0
check "dry run names a deleted path" last_out_has "-rf"
check "dry run changed nothing" test -f "$ws/added-file"

expect_status 0 "restore 0" sb -C "$ws" --json restore 0
pre=$(jq_ 'd["pre_restore"]' <"$T/.out")
check "restore reports the snapshot's root" test "$(jq_ 'd["root"]' <"$T/.out")" = "$(sb -C "$ws" --json show 0 | jq_ 'd["root"]')"
check "a big directory rename is undone by a rename" test "$(jq_ 'd["stats"]["renamed"]' <"$T/.out")" -ge 1
listing "$ws" | grep -av 'new.log' >"$T/after"
if cmp -s "$T/before" "$T/after"; then ok "workspace equals the listing taken before snapshot 0"; else
	not_ok "workspace equals the listing taken before snapshot 0"
	diag "$(diff "$T/before" "$T/after" | head -20)"
fi
expect_status 0 "status right after restore 0" sb -C "$ws" status
check "status compares with the restored snapshot: clean" last_out_has "no changes since snapshot 0"
expect_status 0 "snapshot right after restore 0" sb -C "$ws" --json snapshot
check "reuses snapshot 0 (the head), no new snapshot" test "$(jq_ 'd["id"], d["reused"]' <"$T/.out" | tr '\n' ' ')" = "0 True "
check "an excluded path is never touched" test "$(cat "$ws/new.log")" = "excluded and new"
check "excluded files that existed survive" test "$(cat "$ws/keep.log")" = log

# Undo: restoring the pre-restore snapshot brings the mutated tree back.
mutated=$(sb -C "$ws" --json show "$pre" | jq_ 'd["root"]')
expect_status 0 "restore the pre-restore snapshot" sb -C "$ws" --json restore "$pre"
check "undo gives back the mutated tree (root id)" test "$(jq_ 'd["root"]' <"$T/.out")" = "$mutated"
check "the mutated file is back" test "$(cat "$ws/sub")" = "now a file"
expect_status 0 "restore 0 again" sb -C "$ws" restore 0
expect_status 0 "restore is idempotent" sb -C "$ws" --json restore 0
check "a second restore writes nothing" test "$(jq_ 'd["stats"]["written"] + d["stats"]["removed"]' <"$T/.out")" = 0

# Symlink attacks: swap a file and a parent directory for links to outside.
mkdir -p "$T/outside/dir"
echo "precious" >"$T/outside/file"
echo "precious too" >"$T/outside/dir/f"
listing "$T/outside" >"$T/outside.before"
rm "$ws/hard1" && ln -s "$T/outside/file" "$ws/hard1"
chmod 755 "$ws/rodir" && rm -r "$ws/rodir" && ln -s "$T/outside/dir" "$ws/rodir"
rm -r "$ws/deep" && ln -s "$T/outside" "$ws/deep"
expect_status 0 "restore over planted symlinks" sb -C "$ws" restore 0
check "outside files are byte-identical" cmp -s <(listing "$T/outside") "$T/outside.before"
check "nothing was written outside" test ! -e "$T/outside/f" -a ! -e "$T/outside/d1"
listing "$ws" | grep -av 'new.log' >"$T/after2"
check "workspace is correct after the attack" cmp -s "$T/before" "$T/after2"

# Busy: a restore while another writer holds the workspace.
area=$(ls -d "$SNAPBOX_STORE"/workspaces/*)
flock "$area/lock" sleep 2 &
holder=$!
sleep 0.3
expect_status 1 "restore while the workspace is busy" sb -C "$ws" restore 0
check "says busy" last_err_has "workspace is busy"
wait $holder

expect_status 1 "restore of an unknown snapshot" sb -C "$ws" restore 99
check "names it" last_err_has "no snapshot 99"
expect_status 0 "verify after all that" sb -C "$ws" verify

done_testing
