# shellcheck shell=bash
# TAP helpers for integration scripts that drive the built binary ($SNAPBOX).
# Each script: source lib.sh, call tests, end with `done_testing`.
set -u
: "${SNAPBOX:?set SNAPBOX to the snapbox binary}"
SB_SRC=${SB_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SB_BUILD=${SB_BUILD:-$(dirname "$(dirname "$SNAPBOX")")}
export NO_COLOR=1

_n=0
_failed=0
T=$(mktemp -d "${SB_TEST_TMPDIR:-/var/tmp}/sbit.XXXXXX")
chmod 755 "$T"
export SNAPBOX_STORE="$T/store"
_cleanup() {
	local st=$?
	if [ -z "${SB_TEST_KEEP:-}" ]; then
		chmod -R u+rwx "$T" 2>/dev/null
		rm -rf "$T"
	else
		echo "# kept $T"
	fi
	exit $st
}
trap _cleanup EXIT

ok() {
	_n=$((_n + 1))
	echo "ok $_n - $*"
}
not_ok() {
	_n=$((_n + 1))
	_failed=$((_failed + 1))
	echo "not ok $_n - $*"
}
skip() {
	_n=$((_n + 1))
	echo "ok $_n - $1 # SKIP $2"
}
diag() {
	sed 's/^/# /' <<<"$*" >&2
}

# check "description" command args...   (passes when the command succeeds)
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
# expect_status N "description" command args...
expect_status() {
	local want=$1 desc=$2
	shift 2
	"$@" >"$T/.out" 2>"$T/.err"
	local got=$?
	if [ "$got" = "$want" ]; then
		ok "$desc"
	else
		not_ok "$desc (exit $got, wanted $want)"
		diag "$(head -c 2000 "$T/.err")"
	fi
}
# last_err_has TEXT: the stderr of the last expect_status contains TEXT
last_err_has() {
	grep -qF -- "$1" "$T/.err"
}
last_out_has() {
	grep -qF -- "$1" "$T/.out"
}
sb() {
	"$SNAPBOX" "$@"
}

# as_user CMD...: CMD as an unprivileged user: nobody (65534) when we are
# root, else ourselves. For the rootless passes.
if [ "$(id -u)" = 0 ]; then
	as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all env HOME=/nonexistent "$@"; }
else
	as_user() { "$@"; }
fi

# rootless_workspace DIR: a workspace ($RL_WS, one file) and a store
# ($RL_STORE) under DIR, owned by as_user's user. rootless_expect STATUS
# DESC ARGS...: snapbox ARGS there as that user, after dropping what an
# earlier run staged.
rootless_workspace() {
	RL=$1
	RL_WS=$RL/ws
	RL_STORE=$RL/store
	mkdir -p "$RL_WS"
	echo x >"$RL_WS/f"
	chown -R "$(as_user id -u):$(as_user id -g)" "$RL"
}
rootless_expect() {
	as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" discard >/dev/null 2>&1
	expect_status "$1" "$2" as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" "${@:3}"
}

# An independent listing of a tree: type, mode, size (not for dirs, whose
# size depends on the filesystem's history), mtime, link target and path of
# every entry, then sha256sum of every regular file. NUL-separated find output
# sorted bytewise, so odd names cannot confuse it.
listing() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 ! -type d -printf '%y %m %s %T@ %l|%P\0' | LC_ALL=C sort -z | tr '\0' '\n'
		find . -mindepth 1 -type d -printf '%y %m %T@|%P\0' | LC_ALL=C sort -z | tr '\0' '\n'
	)
	content_hashes "$1"
}
# sha256 of every regular file, opened by directory fd (paths may exceed
# PATH_MAX, which sha256sum cannot open).
content_hashes() {
	python3 - "$1" <<'PY'
import hashlib, os, stat, sys
out = []
for root, dirs, files, rfd in os.fwalk(sys.argv[1]):
    for f in files:
        st = os.stat(f, dir_fd=rfd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            continue
        h = hashlib.sha256()
        fd = os.open(f, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=rfd)
        with os.fdopen(fd, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        rel = os.path.relpath(os.path.join(root, f), sys.argv[1])
        out.append((os.fsencode(rel), h.hexdigest()))
for rel, hx in sorted(out):
    print(hx, repr(rel))
PY
}
# Same without mtimes (for comparisons where times legitimately differ).
listing_notime() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 ! -type d -printf '%y %m %s %l|%P\0' | LC_ALL=C sort -z | tr '\0' '\n'
		find . -mindepth 1 -type d -printf '%y %m|%P\0' | LC_ALL=C sort -z | tr '\0' '\n'
	)
	content_hashes "$1"
}
same_listing() {
	if cmp -s <(listing "$1") <(listing "$2"); then return 0; fi
	diag "$(diff <(listing "$1") <(listing "$2") | head -20)"
	return 1
}

# A hostile tree at $1: odd names, symlinks, modes, fifos, hard links,
# sparse file, deep nesting, a path longer than PATH_MAX.
make_hostile_tree() {
	local d=$1 big=${2:-1G}
	mkdir -p "$d"
	(
		cd "$d" || exit 1
		printf 'plain\n' >plain.txt
		printf 'with newline\n' >$'new\nline'
		printf 'spaces\n' >'  two  spaces  '
		printf 'dash\n' >-rf
		printf 'latin1\n' >$'caf\xe9'
		printf 'high bytes\n' >$'\x01\x7f\xff'
		printf 'quote\n' >'a"b\c'
		long=$(printf 'n%.0s' $(seq 1 255))
		printf 'long name\n' >"$long"
		: >empty
		mkdir emptydir
		mkdir -p sub/deeper
		printf 'x%.0s' $(seq 1 5000) >sub/deeper/file
		ln -s ../plain.txt sub/rel-link
		ln -s /etc/passwd abs-link
		ln -s does/not/exist dangling
		ln -s "$d/.." outside-link
		mkfifo fifo
		printf 'hard\n' >hard1
		ln hard1 hard2
		printf 'suid\n' >suid && chmod 4755 suid
		printf 'secret\n' >noperm && chmod 0000 noperm
		mkdir rodir && printf 'ro\n' >rodir/f && chmod 0555 rodir
		printf 'sticky\n' >sticky && chmod 1644 sticky
		truncate -s "$big" sparse
		printf 'tail' >>sparse
		p=deep
		for i in $(seq 1 40); do p="$p/d$i"; done
		mkdir -p "$p" && printf 'deep\n' >"$p/leaf"
		# A path longer than PATH_MAX (4096): 20 levels of 220-byte names.
		q=longpath
		c=$(printf 'L%.0s' $(seq 1 220))
		mkdir longpath
		cd longpath || exit 1
		for i in $(seq 1 20); do mkdir "$c$i" && cd "$c$i" || exit 1; done
		printf 'far\n' >leaf
	)
}

done_testing() {
	echo "1..$_n"
	[ "$_failed" = 0 ]
}
