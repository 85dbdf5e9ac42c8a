#!/usr/bin/env bash
# The isolation layers of `snapbox run` from the outside: escape attempts
# fail (judged against the same calls made outside, by tests/try-syscall),
# real workloads still run, seccomp profiles, Landlock, the -v line and the
# manifests, `snapbox doctor`, and a rootless pass.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
TRY=$SB_BUILD/tests/try-syscall
# In a sanitizer build try-syscall is instrumented too, and LeakSanitizer's
# exit-time check needs ptrace, which the default seccomp policy refuses. The
# build directory may lie under /tmp, which the sandbox replaces: bind it.
NOLSAN=(--env ASAN_OPTIONS=detect_leaks=0 --ro "$(dirname "$TRY")")
PY=$(command -v /usr/bin/python3 python3 | head -1)

if ! [ -x "$TRY" ]; then
	skip "isolation" "tests/try-syscall is not built"
	done_testing
	exit 0
fi
ws=$T/ws
mkdir -p "$ws"
echo base >"$ws/file"
discard() { sb -C "$ws" discard >/dev/null 2>&1 || true; }
# run STATUS DESC ARGS...: snapbox ARGS in the workspace, after dropping what an earlier run staged
run() {
	discard
	expect_status "$1" "$2" sb -C "$ws" "${@:3}"
}
no_session() { ! compgen -G "$SNAPBOX_STORE/workspaces/*/session/session.json" >/dev/null; }

# Can this host run the sandbox at all? doctor says, and its exit status says it too.
expect_status 0 "doctor --json" sb --json doctor
if [ "$(jq_ 'd["can_run"]' <"$T/.out")" != True ]; then
	skip "isolation" "snapbox doctor says run cannot work here: $(jq_ 'd["missing"]' <"$T/.out")"
	done_testing
	exit 0
fi
cp "$T/.out" "$T/doctor.json"
abi=$(jq_ '[f for f in d["facts"] if f["name"]=="landlock"][0]["detail"].split()[-1] if [f for f in d["facts"] if f["name"]=="landlock"][0]["ok"] else 0' <"$T/doctor.json")
check "doctor --json lists every fact" test "$(jq_ '",".join(f["name"] for f in d["facts"])' <"$T/doctor.json")" = \
	"userns,userns_unprivileged,overlay_userns,overlay,fuse,fusermount3,seccomp,cgroup,cgroup_controllers,landlock,openat2"
expect_status 0 "doctor prints a table" sb doctor
check "the table has a header and a landlock row" bash -c "head -1 '$T/.out' | grep -q '^feature' && grep -q '^landlock ' '$T/.out'"
check "doctor says run works here" last_out_has "snapbox run works here"
out=$(sb doctor --help)
check "doctor --help" grep -q "usage: snapbox doctor" <<<"$out"

# ---- escape attempts: the same calls outside and inside ----
calls=(ptrace mount umount2 pivot_root chroot unshare unshare-newuser unshare-newns setns
	clone-newuser clone-newns keyctl add_key request_key bpf perf_event_open userfaultfd
	open_by_handle_at name_to_handle_at kexec_load kexec_file_load init_module finit_module
	delete_module io_uring_setup ioctl-tiocsti ioctl-tiocsti-high-bits ioctl-tioclinux
	reboot swapon syslog settimeofday process_vm_readv fsopen open_tree move_mount
	socket-packet socket-netlink-audit socket-netlink-route socket-inet socket-vsock
	i386-getpid x32-getpid getpid fork thread posix_spawn socket-unix)
"$TRY" "${calls[@]}" >"$T/outside" 2>&1
run 0 "try-syscall inside the sandbox" run -q "${NOLSAN[@]}" -- "$TRY" "${calls[@]}"
cp "$T/.out" "$T/inside"
want() { # want NAME RESULT: what the call gave inside
	local got
	got=$(awk -v n="$1" '$1 == n {print $2}' "$T/inside")
	if [ "$got" = "$2" ]; then ok "inside: $1 -> $2"; else
		not_ok "inside: $1 -> $2 (got '$got'; outside: $(awk -v n="$1" '$1 == n {print $2}' "$T/outside"))"
	fi
}
for c in ptrace mount umount2 pivot_root chroot unshare unshare-newuser unshare-newns setns \
	clone-newuser clone-newns keyctl add_key request_key bpf perf_event_open userfaultfd \
	open_by_handle_at name_to_handle_at kexec_load kexec_file_load init_module finit_module \
	delete_module io_uring_setup ioctl-tiocsti ioctl-tiocsti-high-bits ioctl-tioclinux \
	reboot swapon syslog settimeofday process_vm_readv; do
	want "$c" 1 # EPERM
done
for c in fsopen open_tree move_mount; do want "$c" 38; done # ENOSYS: libraries fall back to mount(2)
for c in socket-packet socket-netlink-audit socket-netlink-route socket-inet socket-vsock; do
	want "$c" 97 # EAFNOSUPPORT with --net none
done
want i386-getpid killed:31 # SIGSYS: foreign architecture
want x32-getpid killed:31
for c in getpid fork thread posix_spawn socket-unix; do want "$c" 0; done
check "outside, the same calls reach the kernel (unshare -U works, mount gets EFAULT)" \
	bash -c "grep -qx 'unshare-newuser 0' '$T/outside' && grep -qx 'mount 14' '$T/outside'"

run 0 "--net host: netlink route allowed, audit and packet not" run -q --net host "${NOLSAN[@]}" -- "$TRY" \
	socket-netlink-route socket-netlink-audit socket-packet socket-inet
check "--net host: route 0, audit 97, packet 97, inet 0" test "$(awk '{print $2}' "$T/.out" | tr '\n' ' ')" = "0 97 97 0 "

run 0 "the real tools fail too" run -q -- sh -c \
	'unshare -U true 2>/dev/null && echo ESC-U; unshare -m true 2>/dev/null && echo ESC-M;
	 chroot / true 2>/dev/null && echo ESC-CHROOT; mount -t tmpfs none /mnt 2>/dev/null && echo ESC-MOUNT;
	 echo checked'
check "unshare -U, unshare -m, chroot, mount all refused" bash -c "! grep -q ESC '$T/.out' && grep -q checked '$T/.out'"

# The supervisor is outside the pid namespace: it cannot be signalled or traced,
# and pid 1 (the reaper) cannot be traced either. SUP is the supervisor's pid:
# sh execs snapbox, keeping its own.
discard
expect_status 0 "ptrace of the supervisor and of pid 1" sh -c 'exec "$0" -C "$1" run -q --env SUP=$$ -- "$2" -c "$3"' \
	"$SNAPBOX" "$ws" "$PY" '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
sup = int(os.environ["SUP"])
r = libc.ptrace(16, sup, 0, 0)  # PTRACE_ATTACH
print("attach-supervisor", r, ctypes.get_errno())
r = libc.ptrace(16, 1, 0, 0)
print("attach-pid1", r, ctypes.get_errno())
try:
    os.kill(sup, 0); print("supervisor-signalable")
except ProcessLookupError:
    print("supervisor-invisible")
except PermissionError:
    print("supervisor-protected")
print("pid1-cmd", open("/proc/1/cmdline", "rb").read().split(b"\0")[0].decode())
'
check "PTRACE_ATTACH to the supervisor fails (EPERM)" last_out_has "attach-supervisor -1 1"
check "PTRACE_ATTACH to pid 1 fails (EPERM)" last_out_has "attach-pid1 -1 1"
check "the supervisor's pid is not a process inside" last_out_has "supervisor-invisible"

# TIOCSTI on a real terminal: script(1) gives snapbox a pty as its stdin.
if script -qec true /dev/null >/dev/null 2>&1; then
	script -qec "$SNAPBOX -C $ws run -q -- $PY -c '
import fcntl, termios
try:
    fcntl.ioctl(0, termios.TIOCSTI, b\"x\"); print(\"TIOCSTI-OK\")
except OSError as e:
    print(\"TIOCSTI-ERRNO\", e.errno)
'" /dev/null </dev/null >"$T/tty.out" 2>&1
	check "TIOCSTI on the terminal is refused (EPERM)" grep -q "TIOCSTI-ERRNO 1" "$T/tty.out"
else
	skip "TIOCSTI on a terminal" "script(1) cannot allocate a pty here"
fi
discard

# ---- real workloads under the default policy ----
cat >"$ws/prog.c" <<'EOF'
#include <stdio.h>
int main(void) { printf("compiled-and-ran %d\n", 6 * 7); return 0; }
EOF
printf 'all: out.txt\nout.txt: file\n\tcp file out.txt\n\techo made >> out.txt\n' >"$ws/Makefile"
run 0 "python3 with threads and subprocesses" run -q -- "$PY" -c '
import subprocess, threading, concurrent.futures as cf
def work(i): return subprocess.run(["sh", "-c", "echo $0", str(i)], capture_output=True, text=True).stdout.strip()
with cf.ThreadPoolExecutor(8) as ex: r = list(ex.map(work, range(16)))
with cf.ProcessPoolExecutor(2) as ex: s = sum(ex.map(abs, range(-10, 0)))
print("py-ok", len(r), r[15], s)
'
check "python: 16 subprocesses from 8 threads, a process pool" last_out_has "py-ok 16 15 55"
if command -v gcc >/dev/null; then
	run 0 "gcc compiles and runs a C program" run -q -- sh -c 'gcc -O1 -o /tmp/prog prog.c && /tmp/prog'
	check "the program printed 42" last_out_has "compiled-and-ran 42"
else
	skip "gcc" "gcc is not installed"
fi
run 0 "git init, add, commit" run -q -- sh -c 'git init -q . && git add -A && git -c user.name=t -c user.email=t@e commit -qm x && git log --oneline | wc -l'
check "one commit" bash -c "grep -qx 1 '$T/.out'"
run 0 "make" run -q -- make -s
run 0 "tar and zstd round trip" run -q -- sh -c 'tar cf - . | zstd -q >/tmp/a.tzst && mkdir /tmp/x && zstd -dq </tmp/a.tzst | tar xf - -C /tmp/x && cmp file /tmp/x/file && echo tar-ok'
check "tar | zstd | unzstd | tar gives the file back" last_out_has tar-ok
if command -v node >/dev/null; then
	run 0 "node with a worker thread and a child process" run -q -- node -e '
const { Worker } = require("worker_threads"); const cp = require("child_process");
const w = new Worker("require(\"worker_threads\").parentPort.postMessage(6*7)", { eval: true });
w.on("message", (m) => { console.log("node-ok", m, cp.execSync("echo child").toString().trim()); });'
	check "node: worker and child" last_out_has "node-ok 42 child"
else
	skip "node" "node is not installed"
fi
discard

# ---- seccomp profiles ----
prof=$SB_SRC/testdata/seccomp/deny-mkdir.json
run 1 "--seccomp deny-mkdir.json: mkdir fails" run -q --seccomp "$prof" -- mkdir newdir
check "with the profile's errno (EACCES)" last_err_has "Permission denied"
run 0 "--seccomp deny-mkdir.json: try-syscall" run -q --seccomp "$prof" "${NOLSAN[@]}" -- "$TRY" mkdir mkdirat getpid
check "mkdir 13, mkdirat 13, getpid 0" test "$(awk '{print $2}' "$T/.out" | tr '\n' ' ')" = "13 13 0 "
run 0 "--seccomp deny-mkdir.json is named in -v" -v run --seccomp "$prof" -- true
check "-v says seccomp=profile(...)" last_err_has "seccomp=profile("
discard
n_before=$(sb -C "$ws" --json list | jq_ 'len(d)')
run 125 "a malformed profile fails before the command runs" run --seccomp "$SB_SRC/testdata/seccomp/malformed.json" -- touch RAN
check "the message names the file" last_err_has "malformed.json"
check "the command did not run (no session left)" no_session
check "and no snapshot was taken" test "$(sb -C "$ws" --json list | jq_ 'len(d)')" = "$n_before"
run 125 "a missing profile" run --seccomp "$T/nope.json" -- true
check "names it" last_err_has "nope.json"
run 0 "--seccomp unconfined" -v run --seccomp unconfined "${NOLSAN[@]}" -- "$TRY" keyctl
check "says so (warning)" last_err_has "seccomp filter is off"
check "and in the isolation line" last_err_has "seccomp=off"
check "keyctl reaches the kernel" bash -c "! grep -qx 'keyctl 1' '$T/.out'"
# The profile's "flags" reach seccomp(2): strace (an independent witness) sees the call.
if command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
	discard
	strace -f -qq -e trace=seccomp -e signal=none -o "$T/strace" "$SNAPBOX" -C "$ws" run -q \
		--seccomp "$SB_SRC/testdata/seccomp/spec-allow.json" -- true >/dev/null 2>&1
	check "a profile with SECCOMP_FILTER_FLAG_SPEC_ALLOW installs its filter with that flag" \
		grep -q 'seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, {len=[0-9]*, filter=0x[0-9a-f]*}) = 0' "$T/strace"
	strace -f -qq -e trace=seccomp -e signal=none -o "$T/strace" "$SNAPBOX" -C "$ws" run -q -- true >/dev/null 2>&1
	check "the default policy installs its filter with no flags" \
		grep -q 'seccomp(SECCOMP_SET_MODE_FILTER, 0, {len=[0-9]*, filter=0x[0-9a-f]*}) = 0' "$T/strace"
else
	skip "seccomp filter flags" "strace is not installed (or cannot trace here)"
fi
run 0 "the next run is not blocked by the failed ones" run -q -- true

# ---- the -v line and the manifests ----
rm -f "$ws/prog.c"
run 0 "run -v with limits" -v run --memory 256M --pids 512 --timeout 30s -- sh -c 'echo x > made'
line=$(grep '^snapbox: isolation: ' "$T/.err" | head -1)
diag "$line"
for tok in mountns pidns ipcns utsns cgroupns netns=none overlay=kernel "seccomp=default(" rlimit=core=0 timeout=30s; do
	check "isolation line has $tok" grep -qF -- "$tok" <<<"$line"
done
if [ "$(jq_ '[f for f in d["facts"] if f["name"]=="cgroup_controllers"][0]["ok"]' <"$T/doctor.json")" = True ]; then
	check "isolation line has the cgroup limits" grep -qE 'cgroup=v[12]\(memory=256M,pids=512\)' <<<"$line"
fi
if [ "$abi" != 0 ]; then
	check "isolation line has landlock=abi$abi" grep -qF "landlock=abi$abi" <<<"$line"
else
	check "isolation line says landlock=unavailable" grep -qF "landlock=unavailable" <<<"$line"
fi
expect_status 0 "apply" sb -C "$ws" --json apply
snap=$(jq_ 'd["snapshot"]' <"$T/.out")
expect_status 0 "show the apply snapshot" sb -C "$ws" --json show "$snap"
check "the apply snapshot records the isolation line" test "$(jq_ 'd["isolation"]' <"$T/.out")" = "${line#snapbox: isolation: }"
echo changed >>"$ws/file" # a fresh baseline
run 0 "another run -v" -v run -- sh -c 'echo y > made2'
line2=$(grep '^snapbox: isolation: ' "$T/.err" | head -1)
base=$(grep -o 'baseline: snapshot [0-9]*' "$T/.err" | grep -o '[0-9]*$')
expect_status 0 "show the baseline" sb -C "$ws" --json show "$base"
check "the baseline records the run's isolation line" test "$(jq_ 'd["isolation"]' <"$T/.out")" = "${line2#snapbox: isolation: }"
check "the staged session records it too" bash -c "grep -rqF 'overlay=kernel' '$SNAPBOX_STORE'/workspaces/*/session/session.json"
discard

# ---- Landlock ----
rw=$T/rwdir
mkdir -p "$rw"
if [ "$abi" != 0 ]; then
	run 0 "writes under Landlock" run -q --rw "$rw" -- sh -c "
		echo w > ws-ok && echo ws-ok; echo t > /tmp/t && echo tmp-ok; echo s > /dev/shm/s && echo shm-ok
		echo r > '$rw/r' && echo rw-ok; echo n > /dev/null && echo null-ok; mkdir /tmp/d && mv /tmp/t /tmp/d/ && echo rename-ok
		grep -q ' /proc proc rw' /proc/self/mounts && echo proc-is-rw
		echo name > /proc/self/comm 2>/dev/null || echo comm-refused"
	for w in ws-ok tmp-ok shm-ok rw-ok null-ok rename-ok; do check "Landlock lets $w through" last_out_has "$w"; done
	check "the --rw write reached the host" test "$(cat "$rw/r")" = r
	check "/proc is a read-write mount inside" last_out_has proc-is-rw
	check "yet writing /proc/self/comm is refused (Landlock, not a read-only mount)" last_out_has comm-refused
	run 2 "EACCES, not EROFS" run -q -- sh -c 'echo name > /proc/self/comm'
	check "Permission denied" last_err_has "Permission denied"
	run 0 "/dev/stderr reopened onto a file still works" run -q -- sh -c 'echo to-stderr >/dev/stderr'
	check "the text reached stderr" last_err_has to-stderr
	discard
else
	skip "Landlock writes" "the kernel has no Landlock"
fi

# Landlock missing: a kernel that refuses landlock_create_ruleset (ENOSYS from a
# seccomp filter put on snapbox itself, as an old kernel would answer).
# refusing NR ERRNO CMD...: run CMD with system call NR failing with ERRNO.
refusing() {
	"$PY" - "$@" <<'PY'
import ctypes, os, struct, sys, platform
if platform.machine() != "x86_64":
    sys.exit(77)
nr, errno = int(sys.argv.pop(1)), int(sys.argv.pop(1))
def ins(code, jt, jf, k): return struct.pack("HBBI", code, jt, jf, k)
prog = b"".join([
    ins(0x20, 0, 0, 4), ins(0x15, 0, 3, 0xC000003E),          # arch == x86_64 ?
    ins(0x20, 0, 0, 0), ins(0x15, 0, 1, nr),                   # the call refused ?
    ins(0x06, 0, 0, 0x00050000 | errno),                       # ERRNO(errno)
    ins(0x06, 0, 0, 0x7FFF0000),                               # ALLOW
])
buf = ctypes.create_string_buffer(prog)
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fp = Fprog(len(prog) // 8, ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(fp), 0, 0):
    sys.exit(78)
os.execv(sys.argv[1], sys.argv[1:])
PY
}
nolandlock() { refusing 444 38 "$@"; } # landlock_create_ruleset: ENOSYS
nolandlock "$SNAPBOX" -C "$ws" -v run -- true >"$T/.out" 2>"$T/.err"
st=$?
if [ "$st" = 77 ] || [ "$st" = 78 ]; then
	skip "Landlock missing" "cannot simulate a kernel without Landlock here (status $st)"
else
	check "without Landlock run still works (degraded, not fatal)" test "$st" = 0
	check "it warns" last_err_has "Landlock is not available"
	check "the isolation line says landlock=unavailable" last_err_has "landlock=unavailable"
	nolandlock "$SNAPBOX" -C "$ws" run --strict -- touch STRICT-RAN >"$T/.out" 2>"$T/.err"
	check "with --strict it is fatal: 125" test $? = 125
	check "naming the layer and --allow-degraded" bash -c "grep -q 'landlock' '$T/.err' && grep -q -- '--allow-degraded' '$T/.err'"
	check "the command did not run (no session left)" no_session
fi
discard

# doctor's exit status: a host where namespaces cannot be made (unshare and
# clone refused) cannot run snapbox.
refusing 272 1 "$SNAPBOX" --json doctor >"$T/.out" 2>"$T/.err"
st=$?
if [ "$st" = 77 ] || [ "$st" = 78 ]; then
	skip "doctor on a host without namespaces" "cannot simulate it here (status $st)"
else
	check "doctor exits 1 where unshare is refused" test "$st" = 1
	check "and names the overlay as missing" test "$(jq_ 'd["can_run"], d["missing"]' <"$T/.out" | tr '\n' ' ')" = "False ['overlay'] "
fi

# ---- rootless ----
reason=""
if ! as_user test -x "$SNAPBOX" || ! as_user test -x "$TRY"; then
	reason="the build directory is not reachable by uid 65534"
elif ! as_user unshare --user --map-current-user true 2>/dev/null; then
	reason="unprivileged user namespaces are not allowed on this host"
fi
if [ -n "$reason" ]; then
	skip "rootless isolation" "$reason"
else
	rootless_workspace "$T/rootless"
	rootless_expect 0 "rootless: try-syscall" run -q "${NOLSAN[@]}" -- "$TRY" mount unshare-newuser setns bpf keyctl socket-packet ptrace getpid
	check "rootless: mount 1 unshare-newuser 1 setns 1 bpf 1 keyctl 1 packet 97 ptrace 1 getpid 0" \
		test "$(awk '{print $2}' "$T/.out" | tr '\n' ' ')" = "1 1 1 1 1 97 1 0 "
	rootless_expect 0 "rootless: -v" -v run -- sh -c 'echo y > g; echo t > /tmp/t && echo tmp-ok'
	check "rootless: userns in the isolation line" last_err_has "isolation: userns mountns"
	check "rootless: writes work" last_out_has tmp-ok
	if [ "$abi" != 0 ]; then
		check "rootless: landlock=abi$abi" last_err_has "landlock=abi$abi"
		rootless_expect 0 "rootless: Landlock refuses /proc/self/comm" run -q -- sh -c 'echo n > /proc/self/comm 2>/dev/null || echo refused'
		check "refused" last_out_has refused
	fi
	as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" discard >/dev/null 2>&1
fi

done_testing
