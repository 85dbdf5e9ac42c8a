#!/usr/bin/env bash
# A sandboxed command as an adversary against apply and restore: mount points
# in the workspace, setuid bits, git hooks and config, a fifo where a config
# file belongs, times before 1970, absurd nesting, writes to excluded paths.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
if ! unshare --mount --pid --fork true 2>/dev/null; then
	skip "hostile commands" "this host cannot create mount and pid namespaces"
	done_testing
	exit 0
fi
ws=$T/ws
mkdir -p "$ws"
echo base >"$ws/file"
sb -C "$ws" snapshot >/dev/null

# Mount points inside the workspace: never emptied, never written into.
if [ "$(id -u)" = 0 ] && mkdir -p "$ws/data" "$ws/a/m" && mount -t tmpfs snapbox-test "$ws/data" &&
	mount -t tmpfs snapbox-test "$ws/a/m"; then
	echo precious >"$ws/data/keep"
	echo precious >"$ws/a/m/keep"
	echo y >"$ws/a/y"
	sb -C "$ws" snapshot >/dev/null
	expect_status 0 "a run writes where a mount point stands" sb -C "$ws" run -- sh -c 'echo hi > data/evil'
	expect_status 1 "apply refuses to write into another filesystem" sb -C "$ws" apply
	check "and names it" last_err_has "'data' is a mount point"
	check "the mounted filesystem is untouched" test "$(ls "$ws/data")" = keep
	sb -C "$ws" discard >/dev/null
	expect_status 0 "a run removes a directory holding a mount point" sb -C "$ws" run -- rm -rf a
	expect_status 0 "apply" sb -C "$ws" apply
	check "the mount point's contents survive" test "$(cat "$ws/a/m/keep")" = precious
	check "what the snapshot recorded is gone" test ! -e "$ws/a/y"
	umount "$ws/data" "$ws/a/m"
	rm -rf "$ws/data" "$ws/a"
	sb -C "$ws" snapshot >/dev/null
else
	skip "mount points in the workspace" "needs root to mount a tmpfs"
fi

# setuid and setgid bits set by the command are never staged.
expect_status 0 "a run makes a setuid program" sb -C "$ws" run -- sh -c 'cp /bin/true tool && chmod 6755 tool && chmod 4755 file'
check "the run warns it dropped the bits" last_err_has "dropped the setuid/setgid bits"
expect_status 0 "apply" sb -C "$ws" apply
check "the new program is not setuid" test "$(stat -c %a "$ws/tool")" = 755
check "an existing file did not become setuid" test "$(stat -c %a "$ws/file")" = 755

# git config and hooks run code on the host: refused until allowed.
if command -v git >/dev/null; then
	git -C "$ws" init -q
	sb -C "$ws" snapshot >/dev/null
	expect_status 0 "a run plants a git fsmonitor and a hook" sb -C "$ws" run -- sh -c "
		git config core.fsmonitor 'touch $T/pwned; false'
		printf '#!/bin/sh\ntouch $T/pwned2\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit
		mkdir -p sub && git -C sub init -q && echo x > sub/x
		echo normal > normal"
	expect_status 1 "apply refuses git config and hooks" sb -C "$ws" apply
	check "names the config" last_err_has ".git/config"
	check "names the hook" last_err_has ".git/hooks/pre-commit"
	check "names the nested repository's config" last_err_has "sub/.git/config"
	check "nothing was written" test ! -e "$ws/normal"
	git -C "$ws" status >/dev/null 2>&1
	check "git on the host ran nothing" test ! -e "$T/pwned"
	expect_status 0 "apply other paths by name" sb -C "$ws" apply normal
	check "the named path landed" test -e "$ws/normal"
	# git status above refreshed .git/index on the host: real drift, hence --force.
	expect_status 0 "apply --allow-git-config after review" sb -C "$ws" apply --allow-git-config --force
	check "then the hook lands" test -x "$ws/.git/hooks/pre-commit"
	rm -rf "$ws/.git" "$ws/sub"
	sb -C "$ws" snapshot >/dev/null
else
	skip "git config and hooks" "git is not installed"
fi

# A fifo or a symlink where .snapboxignore belongs: nothing hangs, nothing breaks.
expect_status 0 "a run makes .snapboxignore a fifo" sb -C "$ws" run -- mkfifo .snapboxignore
expect_status 0 "apply" sb -C "$ws" apply
expect_status 0 "status still answers (and does not hang)" timeout 20 "$SNAPBOX" -C "$ws" status
check "it warns the ignore file is not used" last_err_has "not a regular file"
expect_status 0 "snapshot still works" timeout 20 "$SNAPBOX" -C "$ws" snapshot
rm "$ws/.snapboxignore"
ln -s /etc/passwd "$ws/.snapboxignore"
expect_status 0 "a symlinked ignore file is not followed" timeout 20 "$SNAPBOX" -C "$ws" snapshot
rm "$ws/.snapboxignore"
sb -C "$ws" snapshot >/dev/null

# Times before 1970 (and fractional) land and restore exactly.
expect_status 0 "a run sets a pre-1970 mtime" sb -C "$ws" run -- sh -c 'echo 1 > m1; echo 2 > m2; touch -d "1969-12-31 23:59:59.5 UTC" m2; echo 3 > m3'
expect_status 0 "apply" sb -C "$ws" apply
check "the old time landed" test "$(stat -c %Y "$ws/m2")" = -1
check "and the files after it" test -e "$ws/m3"
expect_status 0 "restore 0" sb -C "$ws" restore 0
expect_status 0 "restore back to the pre-restore state" sb -C "$ws" --json restore "$(sb -C "$ws" --json list | jq_ 'd[-1]["id"]')"
check "the pre-1970 file is back with its time" test "$(stat -c %Y "$ws/m2")" = -1

# Absurd nesting is refused cleanly, not crashed on.
deep=$(printf 'd/%.0s' $(seq 1 1100))
expect_status 1 "a run nesting 1100 directories cannot be staged" sb -C "$ws" run -- mkdir -p "$deep"
check "the error says why" last_err_has "nests deeper than"
expect_status 0 "discard clears it" sb -C "$ws" discard
expect_status 0 "verify still works" sb -C "$ws" verify

# Excluded paths are never written by apply, nor recorded as applied.
printf 'secret/\n' >"$ws/.snapboxignore"
mkdir -p "$ws/secret" && echo mine >"$ws/secret/s"
sb -C "$ws" snapshot >/dev/null
expect_status 0 "a run writes into an excluded directory" sb -C "$ws" run -- sh -c 'echo theirs > secret/s; echo ok > visible'
expect_status 0 "apply" sb -C "$ws" apply
check "the excluded file is untouched" test "$(cat "$ws/secret/s")" = mine
check "the rest landed" test -e "$ws/visible"
expect_status 0 "status after apply" sb -C "$ws" status
check "no phantom change" last_out_has "no changes since"

done_testing
