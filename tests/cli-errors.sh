#!/usr/bin/env bash
# Bad input: one clear line naming the thing at fault, a non-zero exit, and
# nothing modified.
. "$(dirname "$0")/lib.sh"

ws=$T/ws
mkdir -p "$ws"
echo one >"$ws/a"
sb -C "$ws" snapshot >/dev/null
before=$(listing "$ws"; listing "$SNAPBOX_STORE")

expect_status 1 "a workspace that does not exist" sb -C "$T/nope" snapshot
check "names the missing workspace" last_err_has "$T/nope"
check "is one line" test "$(wc -l <"$T/.err")" = 1

expect_status 1 "a store under a regular file" sb --store "$ws/a/store" -C "$ws" snapshot
check "names the store path" last_err_has "$ws/a/store"

expect_status 1 "an unknown snapshot id" sb -C "$ws" show 42
check "names the id" last_err_has "no snapshot 42"
expect_status 2 "a snapshot id that is not a number" sb -C "$ws" show 1x
check "names the bad value" last_err_has "'1x' is not a snapshot number"
expect_status 1 "export of an unknown snapshot" sb -C "$ws" export 7 "$T/out7"
check "no export directory left for an unknown snapshot" test ! -e "$T/out7"

mkdir -p "$T/fresh"
expect_status 1 "a workspace never snapshotted" sb -C "$T/fresh" list
check "says there are no snapshots yet" last_err_has "no snapshots of"

after=$(listing "$ws"; listing "$SNAPBOX_STORE")
check "nothing was modified by the failures" test "$before" = "$after"

# A corrupt manifest is named, and the other snapshots stay readable.
echo two >"$ws/b"
sb -C "$ws" snapshot >/dev/null
man=$(ls "$SNAPBOX_STORE"/workspaces/*/snapshots/0.json)
cp "$man" "$T/saved.json"
printf '{"version":1, "id": 0, "root": "zz' >"$man"
expect_status 1 "show of a corrupt manifest" sb -C "$ws" show 0
check "names the manifest file" last_err_has "$man"
check "says it is corrupt" last_err_has "corrupt"
expect_status 1 "list reports the corrupt manifest" sb -C "$ws" list
check "list still shows the good snapshot" last_out_has "   1  "
expect_status 1 "verify reports the corrupt manifest" sb -C "$ws" verify
cp "$T/saved.json" "$man"
expect_status 0 "verify passes again once repaired" sb -C "$ws" verify

if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	# An unwritable store, for a user to whom it really is unwritable.
	mkdir -p "$T/ro-store" "$T/ws2" && echo x >"$T/ws2/f"
	chmod 555 "$T/ro-store"
	chmod 777 "$T/ws2"
	out=$(cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
		"$SNAPBOX" --store "$T/ro-store/s" -C "$T/ws2" snapshot 2>&1)
	st=$?
	check "unwritable store fails (as nobody)" test "$st" = 1
	check "unwritable store is named" grep -qF "$T/ro-store/s" <<<"$out"
	check "nothing created in the unwritable store" test -z "$(ls -A "$T/ro-store")"
else
	skip "unwritable store as an unprivileged user" "needs root to switch to nobody"
fi

done_testing
