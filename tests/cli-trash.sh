#!/usr/bin/env bash
# The layers of a run leave its session directory as soon as they are
# staged, into the workspace's trash in the store, which a detached cleaner
# empties; discard goes the same way; what a killed cleaner leaves is
# cleaned by the next command that takes the workspace lock.
. "$(dirname "$0")/lib.sh"

if ! unshare --mount --pid --fork true 2>/dev/null; then
	skip "run's layer cleanup" "this host cannot create mount and pid namespaces"
	done_testing
	exit 0
fi

# area STORE: the one workspace area in STORE.
area() { echo "$1"/workspaces/*; }
trash_locked() { ! flock -n "$1/trash" true 2>/dev/null; }
trash_empty() { [ -z "$(ls -A "$1/trash" 2>/dev/null)" ] && ! trash_locked "$1"; }
# wait_clean AREA: the trash emptied and no cleaner left, within 120 s.
wait_clean() {
	local i
	for ((i = 0; i < 1200; i++)); do
		trash_empty "$1" && return 0
		sleep 0.1
	done
	diag "left in the trash: $(ls -A "$1/trash" | head -5)"
	return 1
}
# cleaner_of AREA: the pid of the snapbox-trash working on AREA's trash, if any.
cleaner_of() {
	local p c
	for p in /proc/[0-9]*; do
		read -r c <"$p/comm" 2>/dev/null || continue
		[ "$c" = snapbox-trash ] && [ "$(readlink "$p/fd/3" 2>/dev/null)" = "$1/trash" ] &&
			echo "${p#/proc/}" && return 0
	done
	return 1
}

ws=$T/ws
mkdir -p "$ws"
echo a >"$ws/a"

expect_status 0 "a run that writes 3000 files" sb -C "$ws" run -- \
	sh -c 'mkdir d && cd d && seq 1 3000 | xargs touch && mkdir locked && chmod 000 locked'
A=$(area "$SNAPBOX_STORE")
check "the summary counts them" last_err_has "3000 added"
check "right after the run, the changes wait in the session's upper" \
	test "$(ls -A "$A/session" | tr '\n' ' ')" = "session.json upper work "
expect_status 0 "diff stages them" sb -C "$ws" diff --name-status
check "diff lists them" last_out_has "d/2999"
check "once staged, the session keeps only its record" \
	test "$(ls -A "$A/session")" = session.json
check "the layers are emptied from the trash" wait_clean "$A"
expect_status 0 "the staged changes survive the cleanup" sb -C "$ws" diff --name-status
check "diff still lists them" last_out_has "d/2999"

expect_status 0 "discard" sb -C "$ws" discard
check "discard removes the session at once" test ! -e "$A/session"
check "and its trash is emptied" wait_clean "$A"

# The cleaner keeps no fd of snapbox's: the workspace lock ends with the command.
fails=0
for ((i = 0; i < 10; i++)); do
	sb -C "$ws" run -- sh -c 'mkdir x && touch x/a x/b' >/dev/null 2>"$T/.err" || fails=$((fails + 1))
	sb -C "$ws" discard >/dev/null 2>>"$T/.err" || fails=$((fails + 1))
done
check "back-to-back runs and discards never find the workspace busy" test "$fails" = 0
check "their trash is emptied" wait_clean "$A"

# A cleaner killed half way leaves its entry, unlocked; the next command cleans it.
expect_status 0 "a run that writes 20000 files" sb -C "$ws" run -- \
	sh -c 'mkdir big && cd big && seq 1 20000 | xargs touch'
expect_status 0 "discard them" sb -C "$ws" discard
if pid=$(cleaner_of "$A"); then
	kill -KILL "$pid"
	for ((i = 0; i < 100 && $(trash_locked "$A" && echo 1 || echo 0); i++)); do sleep 0.05; done
	check "a killed cleaner leaves its entries" test -n "$(ls -A "$A/trash")"
	check "and no lock" bash -c "! { $(declare -f trash_locked); trash_locked '$A'; }"
else
	skip "a killed cleaner leaves its entries" "the cleaner finished before it could be killed"
	skip "and no lock" "same"
fi
# Leftovers as a killed cleaner leaves them, whether or not one was caught.
mkdir -p "$A/trash/leftover-1/sub" && touch "$A/trash/leftover-1/sub/f"
chmod 000 "$A/trash/leftover-1/sub"
expect_status 0 "a run that writes a file" sb -C "$ws" run -- touch y
expect_status 0 "discard, the next command removing something" sb -C "$ws" discard
check "cleans the leftovers too" wait_clean "$A"
mkdir -p "$A/trash/leftover-2" && touch "$A/trash/leftover-2/f"
expect_status 0 "a run with nothing to drop" sb -C "$ws" run -- true
check "also cleans leftovers" wait_clean "$A"

# Nothing outside the store is touched: links planted in the upper.
echo keep >"$T/outside"
expect_status 0 "a run that plants links to outside" sb -C "$ws" run -- \
	sh -c "ln -s '$T/outside' sl && ln -s '$T' dl && mkdir e && ln -s ../.. e/up"
expect_status 0 "discard them" sb -C "$ws" discard
check "the trash is emptied" wait_clean "$A"
check "the link targets are untouched" grep -qx keep "$T/outside"

# Rootless: the command may chmod its view of the workspace root, which the
# upper directory then carries.
if as_user test -x "$SNAPBOX" && as_user unshare --user --map-current-user true 2>/dev/null; then
	rootless_workspace "$T/rl"
	rootless_expect 0 "a rootless run that chmods the root and writes files" run -- \
		sh -c 'mkdir d && touch d/f1 d/f2 && chmod 500 d . '
	RA=$(area "$RL_STORE")
	expect_status 0 "rootless: diff stages them" \
		as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" diff --name-status
	check "rootless: diff lists them" last_out_has "d/f2"
	check "rootless: the session keeps only its record" \
		test "$(ls -A "$RA/session")" = session.json
	check "rootless: the trash is emptied" wait_clean "$RA"
else
	skip "rootless layer cleanup" "no unprivileged user namespaces or unreachable binary"
fi

done_testing
