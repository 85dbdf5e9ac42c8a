#!/usr/bin/env bash
# snapbox run: the command sees a copy-on-write workspace and a sealed-off
# host; its edits are staged, reviewed, applied or discarded. Judged by
# independent listings (find, sha256) and by the same script run on a copy.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

if ! unshare --mount --pid --fork true 2>/dev/null; then
	skip "snapbox run" "this host cannot create mount and pid namespaces"
	done_testing
	exit 0
fi

script='echo new > a; rm b; mkdir d; mv c d/; chmod 755 e'
ws=$T/ws
mkdir -p "$ws"
for f in a b c e; do echo "$f" >"$ws/$f"; done
touch -d '2021-01-01' "$ws"/*
listing "$ws" >"$T/orig"
cp -a "$ws" "$T/expect"
(cd "$T/expect" && sh -c "$script")

expect_status 0 "run the edit script" sb -C "$ws" run -- sh -c "$script"
check "the workspace is byte-identical after the run" cmp -s <(listing "$ws") "$T/orig"
check "the summary names the edit" last_err_has "M a"
expect_status 0 "diff --name-status of the staged changes" sb -C "$ws" diff --name-status
want=$(printf 'A d/\nA d/c\nD b\nD c\nM a\nM e\n')
got=$(LC_ALL=C sort "$T/.out")
if [ "$got" = "$want" ]; then ok "diff shows exactly those changes"; else not_ok "diff shows exactly those changes"; diag "$got"; fi
expect_status 0 "status reports the staged session" sb -C "$ws" status
check "status says changes are staged" last_out_has "staged"
expect_status 125 "run with a session pending" sb -C "$ws" run -- true
check "says to apply or discard" last_err_has "snapbox discard"
expect_status 0 "apply" sb -C "$ws" apply
expect_status 0 "show the apply snapshot" sb -C "$ws" --json show 1
check "the apply snapshot counts +1 ~2 -2 against its parent" test "$(jq_ 'd["reason"], d["stats"]["added"], d["stats"]["modified"], d["stats"]["deleted"], d["stats"]["files"]' <"$T/.out" | tr '\n' ' ')" = "apply 1 2 2 3 "
check "apply lands exactly what the script does on a copy" cmp -s <(listing_notime "$ws") <(listing_notime "$T/expect")
expect_status 0 "restore the baseline" sb -C "$ws" restore 0
check "restore reverses the run exactly" cmp -s <(listing "$ws") "$T/orig"

# The sandbox from inside.
home=$T/home
mkdir -p "$home/.ssh"
echo "PRIVATE KEY" >"$home/.ssh/id_rsa"
echo "aws secret" >"$home/.aws" 2>/dev/null || true
export HOME=$home
marker=$T/host-marker-$$
sleep 300 &
host_pid=$!
expect_status 0 "probe the inside" sb -C "$ws" --json run -- sh -c "
	touch /etc/snapbox-escape 2>/dev/null && echo ESCAPED-ETC
	touch '$T/outside-file' 2>/dev/null && echo ESCAPED-T
	echo in-tmp > /tmp/private-$$ && echo TMP-OK
	cat '$home/.ssh/id_rsa' 2>/dev/null && echo SSH-READABLE
	ls '$SNAPBOX_STORE' 2>/dev/null | grep -q . && echo STORE-VISIBLE
	test -e /proc/$host_pid && echo HOST-PID-VISIBLE
	echo procs=\$(ls /proc | grep -c '^[0-9]')
	echo uid=\$(id -u)
"
out=$(cat "$T/.out")
err=$(cat "$T/.err")
check "cannot write to /etc (read-only root)" bash -c "! grep -q ESCAPED-ETC <<<'$err$out'"
check "cannot write outside the workspace" test ! -e "$T/outside-file"
check "/tmp is writable inside" grep -q TMP-OK <<<"$err$out"
check "/tmp inside is private and gone afterwards" test ! -e "/tmp/private-$$"
check "masked ~/.ssh is unreadable" bash -c "! grep -q 'PRIVATE KEY' <<<'$err$out'"
check "the store is masked" bash -c "! grep -q STORE-VISIBLE <<<'$err$out'"
check "host processes are invisible" bash -c "! grep -q HOST-PID-VISIBLE <<<'$err$out'"
procs=$(grep -o 'procs=[0-9]*' <<<"$err$out" | cut -d= -f2)
check "/proc shows only the sandbox's few processes ($procs)" test "${procs:-99}" -le 5
kill $host_pid 2>/dev/null
wait $host_pid 2>/dev/null
sb -C "$ws" discard >/dev/null

# Network: a listener on the host's loopback.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(8); s.settimeout(30)
end = time.time() + 30
while time.time() < end:
    try: c, _ = s.accept(); c.close()
    except OSError: break
" &
listener=$!
sleep 0.5
connect="python3 -c \"import socket; socket.create_connection(('127.0.0.1', $port), timeout=3); print('CONNECTED')\""
expect_status 1 "--net none: TCP to the host's 127.0.0.1 fails" sb -C "$ws" run -- sh -c "$connect"
check "no connection with --net none" bash -c "! grep -q CONNECTED '$T/.out'"
expect_status 0 "--net host: TCP to the host's 127.0.0.1 works" sb -C "$ws" run --net host -- sh -c "$connect"
check "connected with --net host" last_out_has CONNECTED
expect_status 1 "--net none without seccomp: the host listener is still unreachable" sb -C "$ws" run --seccomp unconfined -- sh -c "$connect"
check "another network namespace: refused" bash -c "! grep -q CONNECTED '$T/.out'"
# The default seccomp policy allows only AF_UNIX sockets without network; the
# loopback device itself is up, as a run without the filter shows.
expect_status 0 "--net none: loopback inside is up" sb -C "$ws" run --seccomp unconfined -- python3 -c "
import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
c = socket.create_connection(s.getsockname(), timeout=3); print('LOOPBACK-UP')"
check "loopback works inside" last_out_has LOOPBACK-UP
kill $listener 2>/dev/null
wait $listener 2>/dev/null

# Nothing outlives the run: a double-forked daemon.
expect_status 0 "a command that daemonizes" sb -C "$ws" run -- sh -c 'setsid sh -c "sleep 7777.25 & exit" & sleep 0.3; pgrep -f "sleep 7777[.]25" >/dev/null && echo DAEMON-RUNNING'
check "the daemon was running inside" last_out_has DAEMON-RUNNING
sleep 0.3
check "the daemon is gone once run returns" bash -c "! pgrep -f 'sleep 7777[.]25' >/dev/null"

# Exit codes.
expect_status 1 "false gives 1" sb -C "$ws" run -- false
expect_status 137 "kill -9 \$\$ gives 137" sb -C "$ws" run -- sh -c 'kill -9 $$'
expect_status 127 "a missing command gives 127" sb -C "$ws" run -- no-such-command-xyz
check "and names it" last_err_has "no-such-command-xyz"
printf '#!/bin/sh\necho hi\n' >"$ws/noexec" && chmod 644 "$ws/noexec"
expect_status 126 "a non-executable file gives 126" sb -C "$ws" run -- ./noexec
expect_status 125 "a usage error before the command gives 125" sb -C "$ws" run --net bogus -- true
expect_status 7 "the command's own status passes through" sb -C "$ws" run -- sh -c 'exit 7'
rm "$ws/noexec"

# Environment: an allow-list, plus --env.
export SNAPBOX_TEST_SECRET=hunter2 SNAPBOX_TEST_PASS=passed
expect_status 0 "environment is reduced" sb -C "$ws" run --env SNAPBOX_TEST_PASS --env K=V -- sh -c 'echo "s=$SNAPBOX_TEST_SECRET p=$SNAPBOX_TEST_PASS k=$K"'
check "a secret env var is not visible, --env K and K=V are" last_out_has "s= p=passed k=V"
unset SNAPBOX_TEST_SECRET SNAPBOX_TEST_PASS

# Apply refuses drift, --force overrides.
expect_status 0 "run edits a" sb -C "$ws" run -- sh -c 'echo from-sandbox > a; echo other > newfile'
echo "edited by hand" >"$ws/a"
expect_status 1 "apply refuses when the workspace changed the same file" sb -C "$ws" apply
check "the conflict is named" last_err_has "snapbox: a: changed in the workspace too"
check "nothing was applied" test ! -e "$ws/newfile" -a "$(cat "$ws/a")" = "edited by hand"
expect_status 0 "apply --force" sb -C "$ws" apply --force
check "--force lands the staged version" test "$(cat "$ws/a")" = from-sandbox -a -e "$ws/newfile"
check "--force first saved the hand edit as a snapshot" last_out_has "before --force"
pre=$(grep -o 'snapshot [0-9]* before' "$T/.out" | cut -d' ' -f2)
mkdir "$T/pre-force" && sb -C "$ws" export "$pre" "$T/pre-force/x" >/dev/null
check "the overridden hand edit is recoverable from it" test "$(cat "$T/pre-force/x/a")" = "edited by hand"

# apply PATH: only some changes land, the rest stay staged.
expect_status 0 "run touches two paths" sb -C "$ws" run -- sh -c 'echo one > p1; echo two > p2'
expect_status 0 "apply one path" sb -C "$ws" apply p1
check "the named path landed, the other did not" test -e "$ws/p1" -a ! -e "$ws/p2"
expect_status 0 "diff shows what is still staged" sb -C "$ws" diff --name-status
check "p2 still staged" test "$(cat "$T/.out")" = "A p2"
expect_status 0 "discard the rest" sb -C "$ws" discard
check "discarded changes never land" test ! -e "$ws/p2"
expect_status 0 "status is clean after discard" sb -C "$ws" status
check "no session pending" bash -c "! grep -q staged '$T/.out'"

# The run previews its changes; the first diff or apply stores them.
# blob_id FILE: the store's id of FILE's content (DESIGN.md: SHA-256 over
# "sbobj", the type byte 1, the length as le64, then the bytes).
blob_id() { python3 -c 'import hashlib, struct, sys
d = open(sys.argv[1], "rb").read()
print(hashlib.sha256(b"sbobj\x01" + struct.pack("<Q", len(d)) + d).hexdigest())' "$1"; }
expect_status 0 "a run whose only write opens a file for appending" sb -C "$ws" run -- sh -c 'exec 3>>a'
check "a copy-up that changed nothing is no change" last_err_has "no changes to the workspace"
check "and leaves no session" bash -c "! compgen -G '$SNAPBOX_STORE/workspaces/*/session' >/dev/null"
expect_status 0 "a run that edits a file in place, same size" sb -C "$ws" --json run -- sh -c 'tr a-z A-Z <a >a.new && cat a.new >a && rm a.new && echo z >zz'
tr a-z A-Z <"$ws/a" >"$T/a.upper"
check "the preview reports both: the same-size edit read, the new file not" test "$(jq_ '" ".join("%s:%s:%s" % (c["status"], c["path"], c["new"]["id"]) for c in d["changes"]), d["staged"]' <"$T/.out" | tr '\n' ' ')" = "M:a:$(blob_id "$T/a.upper") A:zz:None True "
check "the changes wait in the session's upper" bash -c "compgen -G '$SNAPBOX_STORE/workspaces/*/session/upper/zz' >/dev/null"
flock "$(echo "$SNAPBOX_STORE"/workspaces/*)/lock" sleep 3 &
holder=$!
sleep 0.5
expect_status 1 "diff while another command holds the lock" sb -C "$ws" diff
check "says the workspace is busy" last_err_has "workspace is busy"
check "and stages nothing: the upper stays" bash -c "compgen -G '$SNAPBOX_STORE/workspaces/*/session/upper/zz' >/dev/null"
wait $holder
expect_status 0 "diff stores them" sb -C "$ws" --json diff
check "diff knows every id" test "$(jq_ '[c["new"]["id"] is None for c in d["changes"]]' <"$T/.out")" = "[False, False]"
check "and the upper is gone" bash -c "! compgen -G '$SNAPBOX_STORE/workspaces/*/session/upper' >/dev/null"
expect_status 0 "discard them" sb -C "$ws" discard
expect_status 0 "a run that writes a file" sb -C "$ws" run -- sh -c 'echo w >w'
rm -rf "$SNAPBOX_STORE"/workspaces/*/session/upper
expect_status 1 "diff of changes whose upper vanished" sb -C "$ws" diff
check "says what is missing and what to do" last_err_has "missing from"
expect_status 0 "discard clears it" sb -C "$ws" discard
# The upper is volatile: after a restart its files may be cut short.
expect_status 0 "a run that writes another file" sb -C "$ws" run -- sh -c 'echo w >w'
sed -i 's/"boot_id":.*"/"boot_id": "00000000-0000-0000-0000-000000000000"/' "$SNAPBOX_STORE"/workspaces/*/session/session.json
expect_status 1 "apply of changes written before a restart (a forged boot id)" sb -C "$ws" apply
check "refused: they were never durable" last_err_has "machine restarted"
check "nothing landed" test ! -e "$ws/w"
expect_status 0 "discard drops them" sb -C "$ws" discard

# Hostile names and symlinks made by the command land correctly, never written through.
mkdir -p "$T/outside" && echo precious >"$T/outside/f"
mkdir -p "$ws/dir" && echo x >"$ws/dir/x"
sb -C "$ws" snapshot >/dev/null
hostile='printf a > "$(printf "new\nline")"; printf b > "$(printf "caf\351")"; printf c > -rf
	ln -s /etc/passwd pw-link; rm -r dir; ln -s '"$T"'/outside dir; mkfifo ff; mkdir -p em/p/t/y'
cp -a "$ws" "$T/expect2"
(cd "$T/expect2" && sh -c "$hostile")
expect_status 0 "run creates hostile names and symlinks" sb -C "$ws" run -- sh -c "$hostile"
expect_status 0 "apply them" sb -C "$ws" apply
check "the workspace equals the script run on a copy" cmp -s <(listing_notime "$ws") <(listing_notime "$T/expect2")
check "the outside target is untouched" test "$(cat "$T/outside/f")" = precious -a "$(ls "$T/outside")" = f

# run --apply lands at once and records a snapshot.
expect_status 0 "run --apply" sb -C "$ws" run --apply -- sh -c 'echo applied > via-run'
check "landed" test "$(cat "$ws/via-run")" = applied
check "recorded as an apply snapshot" bash -c "'$SNAPBOX' -C '$ws' list | tail -1 | grep -q apply"

# A workspace under /tmp stays visible inside (mounted after the fresh /tmp).
tws=$(mktemp -d /tmp/sbws.XXXXXX)
echo t >"$tws/t"
expect_status 0 "run in a workspace under /tmp" sb -C "$tws" run -- sh -c 'cat t && echo more >> t'
check "the workspace under /tmp is visible and writable inside" last_out_has t
sb -C "$tws" discard >/dev/null
rm -rf "$tws"

done_testing
