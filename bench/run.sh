#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# snapbox benchmark: compares snapbox with git, restic, rsync, bwrap and
# fuse-overlayfs in the same run on a generated tree and prints a table of
# absolute times, ratios, targets and PASS/MISS. See bench/README.md.
#
#   bash bench/run.sh                 full scale (~80k files, ~800 MB)
#   BENCH_SCALE=0.1 bash bench/run.sh a quick run (~8k files, ~80 MB)
#
# Environment: BENCH_SCALE (1), BENCH_SEED (1), BENCH_REPS (3, median of),
# BENCH_FAST_REPS (21, for start-up figures under ~100 ms), BENCH_MID_REPS
# (7, for the find /usr workload, whose 5% target needs more), BENCH_WORK (work
# dir, default bench/work; created, must not exist or be an earlier work dir),
# BENCH_KEEP=1 (keep the work dir), BENCH_OUT (also write the report there),
# BENCH_ONLY (comma list of store,restore,gc,run,layers; default all),
# SNAPBOX (a built snapbox binary; else built with meson into
# SNAPBOX_BUILD, default build-bench at the source root, buildtype=release).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCROOT=$(dirname "$HERE")
SCALE=${BENCH_SCALE:-1}
SEED=${BENCH_SEED:-1}
REPS=${BENCH_REPS:-3}
MID_REPS=${BENCH_MID_REPS:-7}
FAST_REPS=${BENCH_FAST_REPS:-21}
WORK=${BENCH_WORK:-$HERE/work}
ONLY=${BENCH_ONLY:-store,restore,gc,run,layers}
MARKER=.snapbox-bench-workdir

want() { [[ ",$ONLY," == *",$1,"* ]]; }

# --- dependencies -----------------------------------------------------------
install_missing() {
	local pkgs=(python3 git restic rsync bubblewrap fuse-overlayfs fuse3 time procps
		build-essential meson ninja-build pkg-config libzstd-dev libcjson-dev
		libssl-dev libseccomp-dev libfuse3-dev)
	local missing=() p
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "bench: not root (or no apt-get): not installing ${missing[*]}" >&2
		return 0
	fi
	echo "bench: installing ${missing[*]}" >&2
	apt-get update -qq || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		echo "bench: apt-get could not install everything; missing peers will SKIP" >&2
}
if command -v dpkg-query >/dev/null; then install_missing; fi
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }

if [ -z "${SNAPBOX:-}" ]; then
	build=${SNAPBOX_BUILD:-$SRCROOT/build-bench}
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$SRCROOT" --buildtype=release >/dev/null
	fi
	ninja -C "$build" cli/snapbox >/dev/null
	SNAPBOX=$build/cli/snapbox
fi
SNAPBOX=$(cd "$(dirname "$SNAPBOX")" && pwd)/$(basename "$SNAPBOX")
[ -x "$SNAPBOX" ] || { echo "bench: $SNAPBOX is not executable" >&2; exit 1; }

# --- work dir ---------------------------------------------------------------
if [ -e "$WORK" ]; then
	if [ -f "$WORK/$MARKER" ]; then
		rm -rf "$WORK"
	elif [ -n "$(ls -A "$WORK")" ]; then
		echo "bench: $WORK exists, is not empty and is not a bench work dir; refusing" >&2
		exit 1
	fi
fi
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
touch "$WORK/$MARKER"
SAMPLES=$WORK/samples
LOG=$WORK/bench.log
TREE=$WORK/tree
PRISTINE=$WORK/pristine
TINY=$WORK/tiny
LIST=$WORK/files.list
STORE=$WORK/snapbox-store
GITDIR=$WORK/git
RESTIC_REPO=$WORK/restic
SCRIPTS=$WORK/scripts
mkdir -p "$SAMPLES" "$SCRIPTS" "$TINY"
: >"$LOG"

# shellcheck source=lib.sh
. "$HERE/lib.sh"
HAVE_GIT=0
if has git; then HAVE_GIT=1; else skip git "not installed (apt-get install git)"; fi
HAVE_RSYNC=0
if has rsync; then HAVE_RSYNC=1; else skip rsync "not installed (apt-get install rsync)"; fi

FUSE_MNT=""
cleanup() {
	local rc=$?
	if [ -n "$FUSE_MNT" ] && mountpoint -q "$FUSE_MNT"; then
		fusermount3 -u "$FUSE_MNT" 2>/dev/null || umount "$FUSE_MNT" 2>/dev/null || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $WORK" >&2
	elif [ -f "$WORK/$MARKER" ]; then
		# Staged sessions may hold overlay work dirs the kernel left 0000.
		chmod -R u+rwx "$WORK" 2>/dev/null || true
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export RESTIC_PASSWORD=bench
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
drops() { awk '/^drop_pagecache/ {print $2}' /proc/vmstat; }
DROPS_START=$(drops)

# The source commit, read-only (no index refresh, nothing written).
src_version() {
	local v
	v=$(git -C "$SRCROOT" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return 0; }
	git -C "$SRCROOT" diff-index --quiet HEAD -- 2>/dev/null || v="$v + uncommitted changes"
	echo "$v"
}
SRC_VERSION=$(src_version)
SBW() { SNAPBOX_STORE=$STORE "$SNAPBOX" -C "$1" -q "${@:2}"; }
SB() { SBW "$TREE" "$@"; }
# git always gets an explicit repository and work tree: it must never find
# the repository this script lives in (git clean -x there would be a disaster).
G() {
	[ "$HAVE_GIT" = 1 ] || return 0
	[ -f "$GITDIR/HEAD" ] || [ "$1" = init ] || { echo "bench: no $GITDIR/HEAD" >&2; return 1; }
	git -C "$TREE" --git-dir="$GITDIR" --work-tree="$TREE" "$@"
}
git_fresh() {
	rm -rf "$GITDIR"
	G init -q
	G config user.name bench
	G config user.email bench@example.invalid
	G config gc.auto 0
	G config commit.gpgsign false
}
git_commit() { G add -A && G commit -q --no-verify -m "bench $1"; }
# gtimed KEY CMD...: timed, when git is there to time.
gtimed() { if [ "$HAVE_GIT" = 1 ]; then timed "$@"; fi; }
git_restore() { G checkout -q -- . && G clean -q -fdx; }
R() { restic -r "$RESTIC_REPO" --cache-dir "$WORK/restic-cache" "$@"; }
restic_fresh() {
	rm -rf "$RESTIC_REPO" "$WORK/restic-cache"
	R init -q --repository-version 2 >/dev/null
}
mutate() { python3 "$HERE/mutate.py" --root "$TREE" --list "$LIST" --count "$1" --seed "$2"; }
reset_tree() {
	if [ "$HAVE_RSYNC" = 1 ]; then
		rsync -a --delete "$PRISTINE/" "$TREE/"
	else
		rm -rf "$TREE" && cp -a "$PRISTINE" "$TREE"
	fi
}
snap_root() { SNAPBOX_STORE=$STORE "$SNAPBOX" -C "$TREE" --json show "$1" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["root"])'; }
# Snapshot the (reset) tree; warn if it is not byte-for-byte snapshot 0.
snap_pristine() {
	local out
	out=$(SNAPBOX_STORE=$STORE "$SNAPBOX" -C "$TREE" snapshot 2>>"$LOG")
	[[ $out == *"(root ${ROOT0:0:12})"* ]] ||
		note "warning: reset tree is not snapshot 0 (got: $out)"
}
snap_number() { sed -n 's/^snapshot \([0-9]*\) (root.*/\1/p'; }
discard() { SNAPBOX_STORE=$STORE "$SNAPBOX" -C "$1" -q discard >/dev/null 2>&1 || true; }

# Workloads run the same way inside `snapbox run` and outside; each prints
# its own wall and CPU (user+sys, itself and its children) microseconds, so
# sandbox start-up is not in the figure. Their exit status is ignored (inside
# the sandbox find may meet a directory it cannot read).
cat >"$SCRIPTS/measure.sh" <<'EOF'
measure() {
	local TIMEFORMAT='%3R %3U %3S' r
	r=$( { time "$@" >/dev/null 2>&1; } 2>&1)
	set -- $r
	echo "$((10#${1/./} * 1000)) $(((10#${2/./} + 10#${3/./}) * 1000))"
}
EOF
cat >"$SCRIPTS/cat.sh" <<'EOF'
. "${0%/*}/measure.sh"
cd "$1" || exit 1
measure find . -type f -exec cat {} +
echo BENCH_END >&2
EOF
cat >"$SCRIPTS/gitstatus.sh" <<'EOF'
. "${0%/*}/measure.sh"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_OPTIONAL_LOCKS=0
measure git -C "$2" --git-dir="$1" --work-tree="$2" status
EOF
cat >"$SCRIPTS/writes.sh" <<'EOF'
. "${0%/*}/measure.sh"
mkdir -p "$1" && cd "$1" || exit 1
writes() { for ((i = 0; i < $1; i++)); do printf 'small file %d\n' "$i" >"f$i"; done; }
measure writes "$2"
echo BENCH_END >&2
EOF
cat >"$SCRIPTS/find.sh" <<'EOF'
. "${0%/*}/measure.sh"
measure find /usr -xdev
EOF

# --- the tree ---------------------------------------------------------------
note "snapbox: $SNAPBOX; scale $SCALE, seed $SEED, $REPS reps ($FAST_REPS for start-up)"
note "generating the tree in $TREE"
python3 "$HERE/gentree.py" --root "$TREE" --scale "$SCALE" --seed "$SEED" --list "$LIST" \
	>>"$LOG"
cp -a "$TREE" "$PRISTINE"
echo tiny >"$TINY/file"
TREE_FILES=$(find "$TREE" -type f | wc -l)
TREE_DIRS=$(find "$TREE" -type d | wc -l)
TREE_BYTES=$(du -sb "$TREE" | cut -f1)
TREE_MEDIAN=$(find "$TREE" -type f -printf '%s\n' | sort -n |
	awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
TREE_BIG=$(find "$TREE" -type f -size +100M | wc -l)
note "tree: $TREE_FILES files, $TREE_DIRS dirs, $TREE_BYTES bytes, median file $TREE_MEDIAN B"
# Warm page cache for every measurement. Other jobs on a shared machine may
# drop the caches (the report counts drop_caches writes seen during the run),
# so every measurement that reads file contents warms the tree right before.
# Each measurement also starts with no other tool's writes pending: the
# kernel writes dirty pages back up to 30 s later, so the last of git's
# loose objects would otherwise be written during the next tool's run.
warm() {
	settle
	sync
	find "$TREE" -type f -exec cat {} + >/dev/null 2>&1 || true
}
# snapbox leaves an overlay's teardown and the trash's deletion to detached
# background processes: wait for them before the next measurement, so that
# their CPU time lands in no other figure (at most 60 s).
settle() {
	local i
	for ((i = 0; i < 1200; i++)); do
		# (pgrep takes no pattern longer than a process name's 15 bytes)
		pgrep -x snapbox-umount >/dev/null || pgrep -x snapbox-trash >/dev/null || return 0
		sleep 0.05
	done
}
find "$TREE" "$PRISTINE" -type f -exec cat {} + >/dev/null

# Snapshot 0 is the pristine tree; the git commit and the restic snapshot
# made in the last first-snapshot repetition are of the same tree.
first_snapshot_all() {
	local r
	for ((r = 1; r <= REPS; r++)); do
		note "first snapshot, repetition $r/$REPS"
		rm -rf "$STORE"
		warm
		timed_rss s2.snap_first env SNAPBOX_STORE="$STORE" "$SNAPBOX" -C "$TREE" -q snapshot
		if has restic; then
			restic_fresh
			warm
			timed_rss s2.restic_first restic -r "$RESTIC_REPO" --cache-dir "$WORK/restic-cache" \
				backup -q --host bench "$TREE"
		fi
		if [ "$HAVE_GIT" = 1 ]; then
			git_fresh
			warm
			# /usr/bin/time needs a program, not a function: the same two commands.
			# shellcheck disable=SC2016
			timed_rss s2.git_first bash -c 't=$0 d=$1
				g() { git -C "$t" --git-dir="$d" --work-tree="$t" "$@"; }
				g add -A && g commit -q --no-verify -m first' "$TREE" "$GITDIR"
		fi
		if has tar && has zstd; then
			# the issue's yardstick: an archive compressed on both cores, no hashing
			warm
			# shellcheck disable=SC2016
			timed_rss s2.tarzstd_first bash -c \
				'tar -C "$0" -cf - . | zstd -1 -T0 -q -f -o "$1"' "$TREE" "$WORK/tree.tar.zst"
			rm -f "$WORK/tree.tar.zst"
		fi
	done
	# The repository proper: packs and manifests. The stat cache is a cache, like
	# restic's --cache-dir (left out of its figure too): reported on its own.
	local cache_bytes
	cache_bytes=$(find "$STORE/workspaces" -name index -type f -printf '%s\n' |
		awk '{t += $1} END {print t + 0}')
	sample s2.snap_size "$(($(du -sb "$STORE" | cut -f1) - cache_bytes))"
	sample s2.snap_cache_size "$cache_bytes"
	if [ "$HAVE_GIT" = 1 ]; then sample s2.git_size "$(du -sb "$GITDIR" | cut -f1)"; fi
	if has restic; then
		sample s2.restic_size "$(du -sb "$RESTIC_REPO" | cut -f1)"
		rm -rf "$RESTIC_REPO" "$WORK/restic-cache"
	fi
}

# --- issue 2: the store -----------------------------------------------------
has restic || skip restic "not installed (apt-get install restic)"
first_snapshot_all
ROOT0=$(snap_root 0)
GIT0=$(G rev-parse HEAD)

if want store; then
	note "re-snapshot of the unchanged tree vs git status"
	warm
	SB snapshot >/dev/null 2>&1
	G status >/dev/null
	for ((r = 1; r <= REPS; r++)); do
		timed s2.snap_rescan SB snapshot
		gtimed s2.git_status G status
	done
	note "re-snapshot after 100 changed files vs git add -A && git commit"
	for ((r = 1; r <= REPS; r++)); do
		mutate 100 $((200 + r))
		timed s2.snap_100 SB snapshot
		gtimed s2.git_100 git_commit "100 changes $r"
	done
	reset_tree
	snap_pristine
	git_commit pristine
	GIT0=$(G rev-parse HEAD)
fi

# --- issue 3: restore and diff ----------------------------------------------
if want restore; then
	for n in 100 1000; do
		note "restore after $n changed files: snapbox restore 0 vs git vs rsync"
		for ((r = 1; r <= REPS; r++)); do
			seed=$((n * 10 + r))
			mutate "$n" "$seed"
			timed "s3.snap_restore$n" SB restore 0
			mutate "$n" "$seed"
			if [ "$HAVE_GIT" = 1 ]; then
				timed "s3.git_restore$n" git_restore
				mutate "$n" "$seed"
			fi
			if [ "$HAVE_RSYNC" = 1 ]; then
				timed "s3.rsync_restore$n" rsync -a --delete "$PRISTINE/" "$TREE/"
			else
				reset_tree
			fi
		done
	done
	snap_pristine
	note "diff --stat between two snapshots vs git diff --stat between two commits"
	declare -A SNAPN GITC
	for n in 100 1000; do
		mutate "$n" $((7000 + n))
		SNAPN[$n]=$(SNAPBOX_STORE=$STORE "$SNAPBOX" -C "$TREE" snapshot 2>>"$LOG" | snap_number)
		git_commit "diff $n"
		GITC[$n]=$(G rev-parse HEAD)
		reset_tree
	done
	for n in 100 1000; do
		SB diff --stat 0 "${SNAPN[$n]}" >/dev/null
		G diff --stat "$GIT0" "${GITC[$n]}" >/dev/null
		for ((r = 1; r <= REPS; r++)); do
			timed "s3.snap_diff$n" SB diff --stat 0 "${SNAPN[$n]}"
			gtimed "s3.git_diff$n" G diff --stat "$GIT0" "${GITC[$n]}"
		done
	done
	snap_pristine
	git_commit pristine
	GIT0=$(G rev-parse HEAD)
fi

# --- gc -----------------------------------------------------------------------
# The same history for snapbox and restic, each in a store of its own: the
# pristine tree, three rounds of 1000 changed files, the pristine tree again.
# Each then forgets all but the newest snapshot and drops what that frees.
# gc is destructive, so each repetition builds the history anew.
if want gc; then
	GC_STORE=$WORK/gc-store
	SBG() { SNAPBOX_STORE=$GC_STORE "$SNAPBOX" -C "$TREE" -q "$@"; }
	for ((r = 1; r <= REPS; r++)); do
		note "gc vs restic forget --prune, repetition $r/$REPS: building the history"
		rm -rf "$GC_STORE"
		if has restic; then restic_fresh; fi
		for k in 0 1 2 3 4; do
			if [ "$k" = 4 ]; then reset_tree; elif [ "$k" -gt 0 ]; then mutate 1000 $((9000 + 10 * r + k)); fi
			SBG snapshot >>"$LOG" 2>&1
			if has restic; then R backup -q --host bench "$TREE" >>"$LOG" 2>&1; fi
		done
		settle
		sync
		# (/usr/bin/time needs programs, not the SBG and R functions)
		timed_rss s5.snap_gc env SNAPBOX_STORE="$GC_STORE" "$SNAPBOX" -C "$TREE" -q gc --keep 1
		sample s5.snap_gc_size "$(du -sb "$GC_STORE/packs" | cut -f1)"
		if has restic; then
			timed_rss s5.restic_prune restic -r "$RESTIC_REPO" --cache-dir "$WORK/restic-cache" \
				forget -q --keep-last 1 --prune
			sample s5.restic_prune_size "$(du -sb "$RESTIC_REPO" | cut -f1)"
		fi
	done
	rm -rf "$GC_STORE" "$RESTIC_REPO" "$WORK/restic-cache"
fi

# --- issue 4: run -----------------------------------------------------------
# A command prefix: what follows runs in a private mount namespace with the
# tree behind a fresh kernel overlay, mounted with the options snapbox uses
# (overlay/kernel.c). Root only. An array, not a function: phases.py execs it.
BARE_OVL=(unshare -m --propagation private sh -c
	'rm -rf "$2" && mkdir -p "$2/upper" "$2/work" &&
	mount -t overlay -o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work,redirect_dir=off,metacopy=off,index=off,volatile" none "$1" &&
	shift 2 && exec "$@"' sh "$TREE" "$WORK/ovl")
RUN() { SNAPBOX_STORE=$STORE "$SNAPBOX" -C "$1" -v run "${@:2}"; }
MARK_SCAN=(--mark 'scan=baseline: snapshot')
if want run; then
	note "snapbox run -- true on the tree (total, scan, after the scan)"
	RUN "$TREE" -- true >/dev/null 2>&1 || true
	RUN "$TINY" -- true >/dev/null 2>&1 || true
	for ((r = 1; r <= REPS; r++)); do
		phases s4.run_tree "${MARK_SCAN[@]}" -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" \
			-C "$TREE" -v run -- true
	done
	note "snapbox run -- true on a one-file workspace vs bwrap"
	# The same one-file workspace with a store of its own: opening the shared
	# store (which holds the big tree) is part of every command's cost.
	TINY_STORE=$WORK/tiny-store
	SNAPBOX_STORE=$TINY_STORE "$SNAPBOX" -C "$TINY" -q run -- true >/dev/null 2>&1 || true
	for ((r = 1; r <= FAST_REPS; r++)); do
		phases s4.run_tiny "${MARK_SCAN[@]}" -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" \
			-C "$TINY" -v run -- true
		phases s4.run_tiny_own "${MARK_SCAN[@]}" -- env SNAPBOX_STORE="$TINY_STORE" \
			"$SNAPBOX" -C "$TINY" -v run -- true
		timed s4.status_tiny SBW "$TINY" status
		timed s4.status_tiny_own env SNAPBOX_STORE="$TINY_STORE" "$SNAPBOX" -C "$TINY" -q status
		if has bwrap; then
			timed s4.bwrap bwrap --unshare-all --ro-bind / / true
		fi
	done
	has bwrap || skip bwrap "not installed (apt-get install bubblewrap)"

	note "I/O inside snapbox run vs outside: cat every file"
	for ((r = 1; r <= REPS; r++)); do
		warm
		phases s4.cat_in --mark end=BENCH_END -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" \
			-C "$TREE" -q run -- \
			bash "$SCRIPTS/cat.sh" "$TREE"
		warm
		phases s4.cat_out -- bash "$SCRIPTS/cat.sh" "$TREE"
	done
	# The floor: the same reads through a bare kernel overlay mounted as
	# snapbox mounts it (no sandbox, no Landlock, no seccomp), so the report
	# can tell the overlay's own cost from what snapbox adds.
	if [ "$(id -u)" = 0 ] && has unshare; then
		for ((r = 1; r <= REPS; r++)); do
			warm
			phases s4.cat_ovl -- "${BARE_OVL[@]}" bash "$SCRIPTS/cat.sh" "$TREE"
		done
	else
		skip "bare kernel overlay" "needs root and unshare (util-linux)"
	fi
	if has fuse-overlayfs && [ -c /dev/fuse ]; then
		FUSE_MNT=$WORK/fo/mnt
		mkdir -p "$WORK/fo/upper" "$WORK/fo/work" "$FUSE_MNT"
		if fuse-overlayfs -o "lowerdir=$TREE,upperdir=$WORK/fo/upper,workdir=$WORK/fo/work" \
			"$FUSE_MNT" 2>>"$LOG"; then
			for ((r = 1; r <= REPS; r++)); do
				warm
				phases s4.cat_fuse -- bash "$SCRIPTS/cat.sh" "$FUSE_MNT"
			done
			fusermount3 -u "$FUSE_MNT" 2>>"$LOG" || umount "$FUSE_MNT"
		else
			skip fuse-overlayfs "mount failed (see $LOG)"
		fi
		FUSE_MNT=""
	else
		skip fuse-overlayfs "not installed or no /dev/fuse"
	fi

	note "I/O inside snapbox run vs outside: git status"
	[ "$HAVE_GIT" = 1 ] && bash "$SCRIPTS/gitstatus.sh" "$GITDIR" "$TREE" >/dev/null
	for ((r = 1; r <= REPS * HAVE_GIT; r++)); do
		settle
		phases s4.gitst_in -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" -C "$TREE" -q run -- \
			bash "$SCRIPTS/gitstatus.sh" "$GITDIR" "$TREE"
		settle
		phases s4.gitst_out -- bash "$SCRIPTS/gitstatus.sh" "$GITDIR" "$TREE"
		if [ "$(id -u)" = 0 ] && has unshare; then
			settle
			phases s4.gitst_ovl -- "${BARE_OVL[@]}" bash "$SCRIPTS/gitstatus.sh" "$GITDIR" "$TREE"
		fi
	done

	note "I/O inside snapbox run vs outside: write 10k small files; change-list time"
	for ((r = 1; r <= REPS; r++)); do
		settle
		phases s4.write_in --mark end=BENCH_END -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" \
			-C "$TREE" -v run -- bash "$SCRIPTS/writes.sh" "$TREE/bench-writes" 10000
		discard "$TREE"
		settle
		phases s4.write_none --mark end=BENCH_END -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" \
			-C "$TREE" -v run -- bash "$SCRIPTS/writes.sh" "$TREE/bench-writes" 0
		discard "$TREE"
		rm -rf "$WORK/native-writes"
		settle
		phases s4.write_out -- bash "$SCRIPTS/writes.sh" "$WORK/native-writes" 10000
		timed s4.rm_out rm -rf "$WORK/native-writes"
	done
	# The writes.sh with 0 files still creates the directory: the "no writes"
	# run stages one new directory, a constant the subtraction removes.
fi

# --- issue 5: isolation layers ----------------------------------------------
if want layers; then
	BPF=""
	if has cc && has bwrap && cc -O2 -o "$WORK/bpf-filter" "$HERE/bpf-filter.c" -lseccomp \
		2>>"$LOG"; then
		BPF=$WORK/filter.bpf
		"$WORK/bpf-filter" >"$BPF"
	else
		skip "bwrap+seccomp" "cannot build bench/bpf-filter.c (cc, libseccomp-dev)"
	fi
	LIMITS=(--memory 4G --pids 4096 --cpus 2)
	note "start-up: all layers (+limits) vs default vs --seccomp unconfined vs bwrap"
	RUN "$TINY" "${LIMITS[@]}" -- true >/dev/null 2>&1 || true
	for ((r = 1; r <= FAST_REPS; r++)); do
		timed s5.run_all SBW "$TINY" run "${LIMITS[@]}" -- true
		timed s5.run_default SBW "$TINY" run -- true
		timed s5.run_unconf SBW "$TINY" run --seccomp unconfined -- true
		if has bwrap; then
			timed s5.bwrap bwrap --unshare-all --ro-bind / / true
			if [ -n "$BPF" ]; then
				timed s5.bwrap_seccomp bwrap --unshare-all --ro-bind / / \
					--seccomp 9 true 9<"$BPF"
			fi
		fi
	done
	note "syscall-heavy workload (find /usr -xdev) inside vs outside"
	bash "$SCRIPTS/find.sh" >/dev/null
	for ((r = 1; r <= MID_REPS; r++)); do
		phases s5.find_out -- bash "$SCRIPTS/find.sh"
		phases s5.find_all -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" -C "$TINY" -q run \
			"${LIMITS[@]}" -- bash "$SCRIPTS/find.sh"
		phases s5.find_unconf -- env SNAPBOX_STORE="$STORE" "$SNAPBOX" -C "$TINY" -q run \
			--seccomp unconfined -- bash "$SCRIPTS/find.sh"
		if has bwrap; then
			phases s5.find_bwrap -- bwrap --unshare-all --ro-bind / / --dev /dev \
				bash "$SCRIPTS/find.sh"
		fi
	done
fi

# --- report -----------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
DROPS_END=$(drops)
{
	for f in "$SAMPLES"/*; do
		printf '%s\t%s\t%s\n' "$(basename "$f")" "$(median "$(basename "$f")")" \
			"$(paste -sd, "$f")"
	done
} >"$WORK/medians.tsv"
ver() { { "$@" 2>/dev/null || echo "not installed"; } | sed -n 1p; }
META=(
	"date=$(date -u +%Y-%m-%dT%H:%MZ)"
	"host=$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GB RAM, kernel $(uname -r)"
	"fs=$(df -T "$WORK" | awk 'NR == 2 {print $2}') ($(df "$WORK" | awk 'NR == 2 {print $1}'))"
	"load_start=$LOAD_START"
	"load_end=$LOAD_END"
	"cache_drops=$((${DROPS_END:-0} - ${DROPS_START:-0})) writes to /proc/sys/vm/drop_caches by other jobs during the run"
	"scale=$SCALE"
	"seed=$SEED"
	"reps=$REPS"
	"mid_reps=$MID_REPS"
	"fast_reps=$FAST_REPS"
	"source=$SRC_VERSION (the source tree when the run started)"
	"tree=$TREE_FILES files, $TREE_DIRS dirs, $((TREE_BYTES / 1000000)) MB, median file $TREE_MEDIAN B, $TREE_BIG files over 100 MB"
	"snapbox=$(ver "$SNAPBOX" --version)"
	"git=$(ver git --version)"
	"restic=$(ver restic version)"
	"rsync=$(ver rsync --version)"
	"bwrap=$(ver bwrap --version)"
	"peer settings=restic: repository format 2 (zstd, compression auto), with its local cache (restic's default; kept in the work dir), RESTIC_PASSWORD set; git: fresh repository, gc.auto=0, --git-dir outside the tree; page cache warm"
	"fuse-overlayfs=$(fuse-overlayfs --version 2>&1 | grep -m1 -i 'fuse-overlayfs' || echo "not installed")"
)
touch "$WORK/skipped"
printf '%s\n' "${META[@]}" >"$WORK/meta.txt"
python3 "$HERE/report.py" "$WORK/medians.tsv" "$WORK/skipped" "${META[@]}" >"$WORK/report.md"
cat "$WORK/report.md"
if [ -n "${BENCH_OUT:-}" ]; then
	cp "$WORK/report.md" "$BENCH_OUT"
	echo "bench: report written to $BENCH_OUT" >&2
fi
