#!/usr/bin/env bash
# snapbox run as an unprivileged user: a user namespace maps the caller to
# itself, the overlay uses user xattrs, and the whole run/diff/apply/restore
# cycle works — judged by the same script run on a copy.
. "$(dirname "$0")/lib.sh"

user=$(as_user id -un)
uid=$(as_user id -u)

reason=""
if ! as_user test -x "$SNAPBOX"; then
	reason="the snapbox binary is not reachable by $user (build directory permissions)"
elif ! as_user unshare --user --map-current-user true 2>/dev/null; then
	reason="unprivileged user namespaces are not allowed on this host"
fi
if [ -n "$reason" ]; then
	skip "rootless run" "$reason"
	done_testing
	exit 0
fi

base=$T/rootless
mkdir -p "$base"
chown "$user" "$base" 2>/dev/null || true
export SNAPBOX_STORE=$base/store
rsb() { as_user "$SNAPBOX" "$@"; }
rexpect() { local want=$1 desc=$2; shift 2; expect_status "$want" "$desc" as_user "$SNAPBOX" "$@"; }

ws=$base/ws
as_user mkdir -p "$ws"
for f in a b c e; do as_user sh -c "echo $f > '$ws/$f'"; done
as_user touch -d '2021-01-01' "$ws/a" "$ws/b" "$ws/c" "$ws/e"
listing "$ws" >"$T/orig"
script='echo new > a; rm b; mkdir d; mv c d/; chmod 755 e'
cp -a "$ws" "$T/expect"
(cd "$T/expect" && sh -c "$script")

rexpect 0 "rootless run of the edit script" -C "$ws" run -- sh -c "$script; id -u; id -g"
check "the command's uid inside is the caller's ($uid), not root" bash -c "head -1 '$T/.out' | grep -qx '$uid'"
check "the workspace is unchanged" cmp -s <(listing "$ws") "$T/orig"
check "the session says the upper carries user.overlay.* xattrs" bash -c "grep -q '\"upper_xattr\":[[:space:]]*\"user\"' '$SNAPBOX_STORE'/workspaces/*/session/session.json"
rexpect 0 "rootless diff" -C "$ws" diff --name-status
check "diff lists the six changes" test "$(wc -l <"$T/.out")" = 6
rexpect 0 "rootless apply" -C "$ws" apply
check "apply lands what the script does on a copy" cmp -s <(listing_notime "$ws") <(listing_notime "$T/expect")
rexpect 0 "rootless restore 0" -C "$ws" restore 0
check "restore reverses it" cmp -s <(listing "$ws") "$T/orig"

rexpect 0 "rootless: the host is read-only inside" -C "$ws" run -- sh -c "touch /etc/x 2>/dev/null && echo ESCAPED; touch '$base/outside' 2>/dev/null && echo ESCAPED2; echo done"
check "no write outside the workspace" bash -c "! grep -q ESCAPED '$T/.out' && test ! -e '$base/outside'"
rexpect 0 "rootless: a daemon" -C "$ws" run -- sh -c 'setsid sh -c "sleep 7778.5 & exit" & sleep 0.3; pgrep -f "sleep 7778[.]5" >/dev/null && echo DAEMON-RUNNING'
check "the daemon ran" last_out_has DAEMON-RUNNING
sleep 0.3
check "and is gone afterwards" bash -c "! pgrep -f 'sleep 7778[.]5' >/dev/null"
rexpect 137 "rootless: kill -9 gives 137" -C "$ws" run -- sh -c 'kill -9 $$'
# A directory removed and made again is opaque in the upper (user xattrs here):
# its old contents must be staged as deleted.
as_user mkdir "$ws/dir"
as_user sh -c "echo old > '$ws/dir/old'"
rsb -C "$ws" snapshot >/dev/null
rexpect 0 "rootless: replace a directory" -C "$ws" run -- sh -c 'rm -r dir && mkdir dir && echo new > dir/new'
rexpect 0 "rootless: diff of the replaced directory" -C "$ws" diff --name-status
check "the old file is staged as deleted" last_out_has "D dir/old"
check "the new file is staged as added" last_out_has "A dir/new"
rsb -C "$ws" discard >/dev/null
rexpect 0 "verify the rootless store" -C "$ws" verify

done_testing
