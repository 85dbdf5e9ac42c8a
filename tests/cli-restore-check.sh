#!/usr/bin/env bash
# The check that ends a restore: it re-reads what the restore touched, so a
# change made there between the writes and the check fails the restore, naming
# the path; and one made between the pre-restore snapshot and the writes is
# never overwritten or removed. SNAPBOX_TEST_PAUSE_BEFORE_CHECK=1 (and
# ..._BEFORE_WRITE=1) make snapbox stop itself (SIGSTOP) at that point, so the
# test can change the workspace the way a concurrent writer would, then let it
# go on (SIGCONT).
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

ws=$T/ws
mkdir -p "$ws/src" "$ws/quiet" "$ws/deep/a/b"
for i in $(seq 1 20); do
	echo "src $i" >"$ws/src/f$i"
	echo "quiet $i" >"$ws/quiet/q$i"
done
echo deep >"$ws/deep/a/b/file"
expect_status 0 "snapshot 0" sb -C "$ws" snapshot

mutate() {
	echo edited >>"$ws/src/f1"
	echo edited >>"$ws/src/f2"
	rm "$ws/src/f3"
	echo added >"$ws/src/new"
	echo edited >>"$ws/deep/a/b/file"
}

# state_of PID: the process state letter (T when stopped).
state_of() { sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null; }

# paused_restore CMD [WHEN]: runs 'restore 0' until it stops before its check
# (or WHEN: WRITE, before its writes), runs CMD (a shell snippet, in the
# workspace), lets it go on; status in $rc.
paused_restore() {
	env "SNAPBOX_TEST_PAUSE_BEFORE_${2:-CHECK}=1" "$SNAPBOX" -C "$ws" restore 0 \
		>"$T/.out" 2>"$T/.err" &
	local pid=$! i
	for i in $(seq 1 200); do
		[ "$(state_of $pid)" = T ] && break
		sleep 0.05
	done
	if [ "$(state_of $pid)" != T ]; then
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		rc=99
		return
	fi
	(cd "$ws" && eval "$1")
	kill -CONT $pid
	wait $pid
	rc=$?
}

mutate
# shellcheck disable=SC2016 # expanded by the snippet's own shell
paused_restore 'm=$(stat -c %y src/f1) && echo "src X" >src/f1 && touch -d "$m" src/f1'
check "a file rewritten between the writes and the check fails the restore" test "$rc" = 1
check "the error names the file" last_err_has "'src/f1' has other content"
check "and says what to do" last_err_has "run 'snapbox restore 0' again"
expect_status 0 "restore 0 again finishes the job" sb -C "$ws" --json restore 0
check "with snapshot 0's root" test "$(jq_ 'd["root"]' <"$T/.out")" = "$(sb -C "$ws" --json show 0 | jq_ 'd["root"]')"
check "the file is back" test "$(cat "$ws/src/f1")" = "src 1"

mutate
paused_restore 'rm src/f3'
check "a write undone before the check fails the restore" test "$rc" = 1
check "naming the missing file" last_err_has "'src/f3' is missing"
expect_status 0 "restore 0 again" sb -C "$ws" restore 0

mutate
paused_restore 'echo stray >src/new'
check "a removal undone before the check fails the restore" test "$rc" = 1
check "naming the file" last_err_has "'src/new' is a file the target does not have"
expect_status 0 "restore 0 again" sb -C "$ws" restore 0

# Outside the check's reach: a directory the restore did not change. The
# restore succeeds; the next scan (status) sees the change.
mutate
paused_restore 'echo changed >quiet/q5'
check "a change where the restore did nothing is not the check's to see" test "$rc" = 0
expect_status 0 "status" sb -C "$ws" status
check "status sees it" last_out_has "quiet/q5"
expect_status 0 "restore 0 puts it back" sb -C "$ws" restore 0

# The work of the check follows the changes. (The pause: a file the last
# restore wrote in the clock tick this one starts in would be racily clean,
# rightly hashed again by the status below.)
mutate
sleep 0.05
expect_status 0 "restore 0 --json" sb -C "$ws" --json restore 0
check "the check listed the two changed directories" test "$(jq_ 'd["check"]["dirs_listed"]' <"$T/.out")" = 2
check "and re-hashed the four written files" test "$(jq_ 'd["check"]["files_hashed"]' <"$T/.out")" = 4
expect_status 0 "status --json after the restore" sb -C "$ws" --json status
check "the stat cache trusts what restore wrote: nothing is hashed again" \
	test "$(jq_ 'd["scan"]["files_hashed"]' <"$T/.out")" = 0
echo "edit" >>"$ws/src/f1"
expect_status 0 "status after an edit of a restored file" sb -C "$ws" status
check "the edit shows" last_out_has "src/f1"
expect_status 0 "restore 0 puts it back" sb -C "$ws" restore 0
mutate
expect_status 0 "restore 0 -v" sb -C "$ws" -v restore 0
check "-v says how long each step took" last_err_has "checked in"
expect_status 0 "verify" sb -C "$ws" verify

# Before the writes: an edit made after the pre-restore snapshot, at a path
# the restore rewrites or removes, is left alone, and the restore stops
# naming it. raced PATH CMD HOW: from snapshot 0 + mutate, CMD changes PATH
# while the restore waits before its writes.
raced() {
	expect_status 0 "restore 0" sb -C "$ws" restore 0
	mutate
	paused_restore "$2" WRITE
	check "an edit to $1 made before the writes stops the restore" test "$rc" = 1
	check "naming it" last_err_has "'$1': is not what the scan recorded"
	check "saying it was $3" last_err_has "$3"
	check "no temp file is left" test -z "$(find "$ws" -name '.sb-tmp-*')"
}

raced src/f1 'echo mine >src/f1' "not overwritten"
check "the edit is still there" test "$(cat "$ws/src/f1")" = mine
# Run again, the restore's own pre-restore snapshot holds the edit.
expect_status 0 "restore 0 again" sb -C "$ws" restore 0
saved=$(sed -n 's/^saved current state as snapshot \([0-9]*\).*/\1/p' "$T/.out")
check "the file is back" test "$(cat "$ws/src/f1")" = "src 1"
expect_status 0 "restore of the snapshot the second restore saved" sb -C "$ws" restore "$saved"
check "gives the edit back" test "$(cat "$ws/src/f1")" = mine

raced src/new 'echo mine >>src/new' "not removed"
check "the edit is still there" grep -q mine "$ws/src/new"

done_testing
