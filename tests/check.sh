#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (unit + priv; the slow suite
# too with SB_SLOW=1). Tests that cannot run on this host print SKIP with the
# reason. SB_SANITIZE=1 runs it all in an ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=$(bash tests/setup.sh | tail -n 1)
setup=()
[ "${SB_SLOW:-0}" = 1 ] && setup=(--setup full)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
meson test -C "$builddir" --print-errorlogs "${setup[@]}" || status=$?
# A plain summary line for CI readers.
python3 - "$builddir/meson-logs/testlog.json" <<'PY' || true
import json, sys
ok = fail = skip = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get("result")
    if r in ("OK", "EXPECTEDFAIL"): ok += 1
    elif r == "SKIP": skip += 1
    else: fail += 1
print(f"suites: {ok} passed, {fail} failed, {skip} skipped")
PY
exit $status
