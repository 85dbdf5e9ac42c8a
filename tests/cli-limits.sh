#!/usr/bin/env bash
# Resource limits of `snapbox run`, measured from the outside: a fork bomb is
# contained by --pids, a memory hog is OOM-killed under --memory (137 and the
# report says so), --cpus holds a spinner near its quota, --timeout ends the
# whole sandbox (124), rlimits apply, and a limit that cannot be enforced
# stops the run (125) unless --allow-degraded.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
PY=$(command -v /usr/bin/python3 python3 | head -1)
ws=$T/ws
mkdir -p "$ws"
echo base >"$ws/file"
discard() { sb -C "$ws" discard >/dev/null 2>&1 || true; }
run() {
	discard
	expect_status "$1" "$2" sb -C "$ws" "${@:3}"
}
now() { date +%s.%N; }
# within X LO HI: LO <= X <= HI (decimals)
within() { python3 -c "import sys; x,lo,hi=map(float,sys.argv[1:]); sys.exit(0 if lo<=x<=hi else 1)" "$@"; }

expect_status 0 "doctor --json" sb --json doctor
if [ "$(jq_ 'd["can_run"]' <"$T/.out")" != True ]; then
	skip "limits" "snapbox doctor says run cannot work here: $(jq_ 'd["missing"]' <"$T/.out")"
	done_testing
	exit 0
fi
can_limit=$(jq_ 'd["can_limit"]' <"$T/.out")

# ---- values are checked before anything happens ----
for bad in "--memory 12Q" "--memory 0" "--pids 0" "--pids -1" "--cpus 0" "--cpus abc" "--timeout 5x" "--nofile 0" "--fsize 1Q"; do
	# shellcheck disable=SC2086
	run 125 "bad value $bad" run $bad -- touch RAN
	check "the message names '${bad#* }'" last_err_has "${bad#* }"
done
check "none of them ran or recorded anything" bash -c "! compgen -G '$SNAPBOX_STORE/workspaces/*/snapshots/*.json' >/dev/null"

# ---- --timeout ----
t0=$(now)
run 124 "--timeout 2s on sleep 100 exits 124" run --timeout 2s -- sh -c 'sleep 100 & sleep 100'
t1=$(now)
el=$(python3 -c "print($t1 - $t0)")
check "it ended after about 2 s (took ${el}s)" within "$el" 1.9 4
check "the summary says it timed out" last_err_has "timed out after 2s"
check "no sleep 100 is left on the host" bash -c "! pgrep -fx 'sleep 100' >/dev/null"
run 124 "--timeout --json" --json run --timeout 300ms -- sleep 100
check "json: timed_out is true" test "$(jq_ 'd["timed_out"], d["resources"]["timed_out"]' <"$T/.out" | tr '\n' ' ')" = "True True "

# ---- rlimits ----
run 0 "core dumps are off by default" run -q -- sh -c 'ulimit -c; ulimit -Hc'
check "core 0/0" test "$(tr '\n' ' ' <"$T/.out")" = "0 0 "
run 0 "--nofile 64" run -q --nofile 64 -- sh -c 'ulimit -n'
check "nofile is 64 inside" test "$(cat "$T/.out")" = 64
run 153 "--fsize 1M: a bigger write is killed by SIGXFSZ (128+25)" run -q --fsize 1M -- sh -c 'head -c 2M /dev/zero > big'
run 0 "--fsize 1M: a smaller write is fine" run -q --fsize 1M -- sh -c 'head -c 512K /dev/zero > small && wc -c < small'
check "512 KiB written" test "$(cat "$T/.out")" = 524288

if [ "$can_limit" != True ]; then
	skip "cgroup limits" "this user cannot limit memory, pids and cpu here (doctor: cgroup_controllers no)"
else
	# ---- --pids: a fork bomb that never gives up (a failed fork is retried) ----
	bomb='import os, time  # fork-bomb-marker
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)'
	discard
	t0=$(now)
	expect_status 124 "a fork bomb under --pids 64 --timeout 4s" sb -C "$ws" --json run --pids 64 --timeout 4s -- \
		"$PY" -c "$bomb"
	t1=$(now)
	bomb_out=$T/bomb.json
	cp "$T/.out" "$bomb_out"
	el=$(python3 -c "print($t1 - $t0)")
	check "the bomb was ended by the timeout (took ${el}s)" within "$el" 3.9 8
	peak=$(jq_ 'd["resources"]["peak_pids"]' <"$bomb_out")
	check "peak processes stayed at or under 64 (got $peak)" test "$peak" -le 64
	check "and the bomb did reach the limit (peak $peak >= 32)" test "$peak" -ge 32
	check "nothing of the bomb is left on the host" bash -c "! pgrep -f 'fork-bomb[-]marker' >/dev/null"
	discard
	# Host responsiveness while a bomb runs: 20 fork+exec of true on the host.
	sb -C "$ws" run -q --pids 64 --timeout 3s -- "$PY" -c "$bomb" >/dev/null 2>&1 &
	bg=$!
	sleep 1
	t0=$(now)
	for _ in $(seq 1 20); do /bin/true; done
	t1=$(now)
	wait "$bg"
	el=$(python3 -c "print($t1 - $t0)")
	check "the host stays responsive during the bomb (20 x /bin/true in ${el}s)" within "$el" 0 2
	discard

	# ---- --memory: a hog is OOM-killed ----
	run 137 "a memory hog under --memory 64M is killed: 137" run --memory 64M -- \
		"$PY" -c 'x = bytearray(256 << 20); print("survived", len(x))'
	check "the report says killed: out of memory (limit 64M)" last_err_has "killed: out of memory (limit 64M)"
	check "it did not survive" bash -c "! grep -q survived '$T/.out'"
	run 137 "--json: the same" --json run --memory 64M -- "$PY" -c 'x = bytearray(256 << 20)'
	check "json: oom_kills >= 1, memory_limit 64M, peak_memory <= 64M" \
		test "$(jq_ 'd["resources"]["oom_kills"] >= 1, d["resources"]["memory_limit"], d["resources"]["peak_memory"] <= 64 << 20' <"$T/.out" | tr '\n' ' ')" = "True 67108864 True "
	run 0 "a program under its memory limit is untouched" run -q --memory 64M -- "$PY" -c 'x = bytearray(16 << 20); print("ok", len(x))'
	check "it ran to the end" last_out_has "ok 16777216"
	# ---- --cpus: a spinner gets about its quota ----
	spin='import time
t = time.time() + 2.5
while time.time() < t: pass'
	run 0 "a spinner without a limit (control)" --json run -- "$PY" -c "$spin"
	ctl=$(jq_ 'd["resources"]["cpu_ms"] / d["resources"]["wall_ms"]' <"$T/.out")
	run 0 "a spinner under --cpus 0.5" --json run --cpus 0.5 -- "$PY" -c "$spin"
	lim=$(jq_ 'd["resources"]["cpu_ms"] / d["resources"]["wall_ms"]' <"$T/.out")
	thr=$(jq_ 'd["resources"]["throttled_periods"]' <"$T/.out")
	diag "cpu per wall second: control $ctl, --cpus 0.5: $lim, throttled periods $thr"
	check "--cpus 0.5 stays under 0.6 of a core (got $lim)" within "$lim" 0 0.6
	if within "$ctl" 0.8 100; then
		check "--cpus 0.5 gets at least 0.4 of a core (got $lim)" within "$lim" 0.4 0.6
	else
		skip "--cpus 0.5 lower bound" "the host is busy: an unlimited spinner got only $ctl of a core"
	fi
	check "the quota was hit (throttled periods $thr > 0)" test "$thr" -gt 0
	discard

	# ---- every process in the cgroup dies with the run; the cgroup goes ----
	# sh execs snapbox, so $$ is the supervisor's pid, which names its cgroup.
	discard
	sh -c 'echo $$ > "$0.pid"; exec "$1" -C "$2" run -q --pids 100 --memory 64M -- sh -c "setsid sh -c \"sleep 7779.5 & exit\" & sleep 1.5"' \
		"$T/sup" "$SNAPBOX" "$ws" >/dev/null 2>&1 &
	bg=$!
	sleep 0.8
	sup=$(cat "$T/sup.pid")
	cgdirs() { find /sys/fs/cgroup -maxdepth 8 -type d -name "snapbox-$sup-*" 2>/dev/null; }
	check "while it runs, the run has its own cgroup (snapbox-$sup-*)" bash -c "$(declare -f cgdirs); sup=$sup; cgdirs | grep -q ."
	check "and the escaped daemon is in it" bash -c "pgrep -f 'sleep 7779[.]5' >/dev/null"
	# Swap is held at 0 with --memory: v2 memory.swap.max 0, v1 memsw limit = memory limit.
	swap=$(for d in $(cgdirs); do cat "$d/memory.swap.max" "$d/memory.memsw.limit_in_bytes" 2>/dev/null; done | head -1)
	if [ -z "$swap" ]; then
		skip "swap 0" "this kernel has no swap accounting (no memory.swap.max or memsw files)"
	else
		check "swap is held at 0 (swap limit file: $swap)" bash -c "[ '$swap' = 0 ] || [ '$swap' = 67108864 ]"
	fi
	wait "$bg"
	check "the run ended with status 0" test $? = 0
	sleep 0.2
	check "the daemon is gone after the run" bash -c "! pgrep -f 'sleep 7779[.]5' >/dev/null"
	check "the run's cgroup was removed" bash -c "$(declare -f cgdirs); sup=$sup; ! cgdirs | grep -q ."
fi
discard

# ---- fail closed: limits asked for where no cgroup controller is writable ----
reason=""
if ! as_user test -x "$SNAPBOX"; then
	reason="the snapbox binary is not reachable by uid 65534"
elif ! as_user unshare --user --map-current-user true 2>/dev/null; then
	reason="unprivileged user namespaces are not allowed on this host"
elif [ "$(as_user "$SNAPBOX" --json doctor | jq_ 'd["can_limit"]')" = True ]; then
	reason="uid $(as_user id -u) can write cgroups here (a delegated subtree): nothing fails closed"
fi
if [ -n "$reason" ]; then
	skip "fail closed" "$reason"
else
	rootless_workspace "$T/rootless"
	for flag in "--memory 64M" "--pids 64" "--cpus 0.5"; do
		# shellcheck disable=SC2086
		rootless_expect 125 "unprivileged: $flag without a writable cgroup exits 125" run $flag -- touch RAN
		check "the message names the cgroup layer, $flag and --allow-degraded" bash -c \
			"grep -q cgroup '$T/.err' && grep -qF -- '$flag' '$T/.err' && grep -qF -- '--allow-degraded' '$T/.err'"
		check "the command did not run and nothing was recorded" bash -c "! compgen -G '$RL_STORE/workspaces/*/session/session.json' >/dev/null && ! compgen -G '$RL_STORE/workspaces/*/snapshots/*.json' >/dev/null"
	done
	rootless_expect 0 "with --allow-degraded it runs" run --memory 64M --pids 64 --allow-degraded -- sh -c 'echo ran > ran'
	check "it warns that the limits are not enforced" last_err_has "NOT enforced"
	check "the summary after the run says what was not enforced" last_err_has "not enforced: cgroup: --memory 64M --pids 64"
	check "the command ran" last_err_has "A ran"
	rootless_expect 0 "--allow-degraded --json" --json run --memory 64M --allow-degraded -- true
	check "json: not_enforced names the cgroup and the flag" test "$(jq_ 'd["resources"]["not_enforced"][0].startswith("cgroup: --memory 64M")' <"$T/.out")" = True
	check "json: isolation says cgroup=unavailable" test "$(jq_ '"cgroup=unavailable" in d["isolation"]' <"$T/.out")" = True
	rootless_expect 0 "without limits an unprivileged run only warns" run -- true
	check "the warning says there is no resource report" last_err_has "no resource report"
	as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" discard >/dev/null 2>&1
fi

done_testing
