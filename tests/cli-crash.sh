#!/usr/bin/env bash
# kill -9 of `snapbox snapshot` at random moments: afterwards verify passes
# and the next snapshot succeeds.
. "$(dirname "$0")/lib.sh"

ws=$T/ws
mkdir -p "$ws/a" "$ws/b"
for i in $(seq 1 1500); do echo "$i $RANDOM" >"$ws/a/f$i"; done
head -c 60000000 /dev/urandom >"$ws/b/big1"
sb -C "$ws" snapshot >/dev/null

iterations=${SB_CRASH_ITERATIONS:-60}
bad=0
killed=0
for i in $(seq 1 "$iterations"); do
	# Change something so each snapshot has work to do.
	for j in $(seq 1 30); do echo "$i" >>"$ws/a/f$(((RANDOM % 1500) + 1))"; done
	# A rewritten MiB in the big file: the snapshot re-reads and re-chunks all of it.
	dd if=/dev/urandom of="$ws/b/big1" bs=1M count=1 seek=$((RANDOM % 50)) conv=notrunc status=none
	"$SNAPBOX" -C "$ws" snapshot >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 150)))"
	kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
	wait "$pid" 2>/dev/null
	if ! sb -C "$ws" verify >"$T/v.out" 2>&1; then
		bad=$((bad + 1))
		diag "iteration $i: verify failed: $(head -5 "$T/v.out")"
	fi
done
check "snapshot was killed mid-run in $killed of $iterations iterations" test "$killed" -ge $((iterations / 3))
check "verify passed after every one of $iterations kills" test "$bad" = 0
expect_status 0 "the next snapshot succeeds" sb -C "$ws" snapshot
expect_status 0 "and verifies" sb -C "$ws" verify
expect_status 0 "export of the latest snapshot" sb -C "$ws" export "$(ls "$SNAPBOX_STORE"/workspaces/*/snapshots | sed 's/.json//' | sort -n | tail -1)" "$T/out"
check "matches the workspace" same_listing "$ws" "$T/out"

done_testing
