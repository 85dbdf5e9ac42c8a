#!/usr/bin/env bash
# Two writers on one workspace: one waits or fails with the busy error; the
# store stays consistent.
. "$(dirname "$0")/lib.sh"

ws=$T/ws
mkdir -p "$ws"
for i in $(seq 1 2000); do echo "$i" >"$ws/f$i"; done
head -c 30000000 /dev/urandom >"$ws/big"
sb -C "$ws" snapshot >/dev/null

area=$(ls -d "$SNAPBOX_STORE"/workspaces/*)
# Hold the workspace lock the way another snapbox would.
flock "$area/lock" sleep 3 &
holder=$!
sleep 0.5
expect_status 1 "snapshot while the workspace is locked" sb -C "$ws" snapshot
check "says the workspace is busy" last_err_has "workspace is busy"
wait $holder

# Two real snapshots racing.
echo change >>"$ws/big"
for i in $(seq 1 200); do echo x >>"$ws/f$i"; done
sb -C "$ws" snapshot >"$T/a.out" 2>"$T/a.err" &
pa=$!
sb -C "$ws" snapshot >"$T/b.out" 2>"$T/b.err" &
pb=$!
wait $pa; sa=$?
wait $pb; sb_=$?
if [ $sa = 0 ] && [ $sb_ = 0 ]; then
	ok "both racing snapshots succeeded one after the other"
elif { [ $sa = 0 ] && grep -q "workspace is busy" "$T/b.err"; } || { [ $sb_ = 0 ] && grep -q "workspace is busy" "$T/a.err"; }; then
	ok "one racing snapshot succeeded, the other reported busy"
else
	not_ok "racing snapshots: exits $sa/$sb_"
	diag "$(cat "$T/a.err" "$T/b.err")"
fi
expect_status 0 "the store verifies after the race" sb -C "$ws" verify
expect_status 0 "status is clean after the race" sb -C "$ws" status
check "no changes pending" last_out_has "no changes since"

done_testing
