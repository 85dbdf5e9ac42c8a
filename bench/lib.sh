# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers for bench/run.sh (sourced): timing, samples, peers.
# Times are microseconds from bash's $EPOCHREALTIME (no fork to read the clock).

# note MSG: progress on stderr, also kept in the log.
note() {
	printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >>"$LOG"
}

# sample KEY VALUE: one measurement (us, bytes or KiB) of KEY.
sample() {
	printf '%s\n' "$2" >>"$SAMPLES/$1"
}

# timed KEY CMD...: run CMD (stdout to /dev/null, stderr to the log) and
# add its wall time as a sample of KEY. A failing CMD records "ERR".
timed() {
	local key=$1 a b rc=0
	shift
	a=${EPOCHREALTIME/./}
	"$@" >/dev/null 2>>"$LOG" || rc=$?
	b=${EPOCHREALTIME/./}
	if [ "$rc" -ne 0 ]; then
		note "FAILED (exit $rc) while measuring $key: $*"
		sample "$key" ERR
		return 0
	fi
	sample "$key" $((b - a))
}

# timed_rss KEY CMD...: as timed, plus from /usr/bin/time the peak RSS
# (KiB) as KEY.rss and the CPU time (user+sys of CMD and its children, us;
# 10 ms resolution) as KEY.cpu.
timed_rss() {
	local key=$1 m u s
	shift
	if [ -x /usr/bin/time ]; then
		timed "$key" /usr/bin/time -f '%M %U %S' -o "$WORK/rss.tmp" "$@"
		if [ -s "$WORK/rss.tmp" ]; then
			read -r m u s < <(tail -n 1 "$WORK/rss.tmp")
			sample "$key.rss" "$m"
			sample "$key.cpu" $((10#${u/./} * 10000 + 10#${s/./} * 10000))
		fi
		rm -f "$WORK/rss.tmp"
	else
		timed "$key" "$@"
	fi
}

# phases KEY [--mark NAME=REGEX]... -- CMD...: wall time of CMD as KEY, the
# arrival time of each mark line on stderr as KEY.NAME and the rest of the
# run after it as KEY.after_NAME, and the number CMD prints last on stdout
# as "WALL CPU" (an in-sandbox timing) as KEY.inner and KEY.cpu.
phases() {
	local key=$1 out rc=0 k v total=0
	shift
	out=$(python3 "$HERE/phases.py" "$@" 2>>"$LOG") || rc=$?
	if [ "$rc" -ne 0 ]; then
		note "FAILED (exit $rc) while measuring $key"
		sample "$key" ERR
		return 0
	fi
	while read -r k v; do
		case $k in
		total)
			total=$v
			sample "$key" "$v"
			;;
		stdout)
			if [[ $v =~ ^([0-9]+)\ ([0-9]+)$ ]]; then
				sample "$key.inner" "${BASH_REMATCH[1]}"
				sample "$key.cpu" "${BASH_REMATCH[2]}"
			fi
			;;
		*)
			if [ "$v" -ge 0 ]; then
				sample "$key.$k" "$v"
				sample "$key.after_$k" $((total - v))
			fi
			;;
		esac
	done <<<"$out"
}

# median KEY: the median sample of KEY ("ERR" if any sample failed, "" if none).
median() {
	local f=$SAMPLES/$1
	[ -s "$f" ] || return 0
	if grep -q ERR "$f"; then
		echo ERR
		return 0
	fi
	sort -n "$f" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# has CMD: is CMD installed?
has() {
	command -v "$1" >/dev/null 2>&1
}

# skip PEER REASON: say SKIP for a peer that cannot be measured.
skip() {
	note "SKIP $1: $2"
	printf '%s\t%s\n' "$1" "$2" >>"$WORK/skipped"
}
