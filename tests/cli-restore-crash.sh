#!/usr/bin/env bash
# kill -9 during restore at random moments: never a torn file (each is wholly
# the old or wholly the new version), and the next restore completes with the
# right root id.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

ws=$T/ws
python3 - "$ws" "A" <<'PY'
import os, sys
root, tag = sys.argv[1], sys.argv[2]
for d in range(40):
    os.makedirs(os.path.join(root, f"d{d}"), exist_ok=True)
    for f in range(75):
        with open(os.path.join(root, f"d{d}", f"f{f}"), "w") as fh:
            fh.write((f"{tag}-{d}-{f}-" * 700)[: 8000 + d * 50 + f])
PY
sb -C "$ws" snapshot >/dev/null
python3 - "$ws" "B" <<'PY'
import os, sys
root, tag = sys.argv[1], sys.argv[2]
for d in range(40):
    for f in range(75):
        with open(os.path.join(root, f"d{d}", f"f{f}"), "w") as fh:
            fh.write((f"{tag}-{d}-{f}-" * 900)[: 9000 + d * 50 + f])
PY
sb -C "$ws" snapshot >/dev/null
root0=$(sb -C "$ws" --json show 0 | jq_ 'd["root"]')
root1=$(sb -C "$ws" --json show 1 | jq_ 'd["root"]')
# Every acceptable content: the A and B versions of each file.
( cd "$ws" && find . -type f -print0 | xargs -0 sha256sum ) >"$T/B.sums"
sb -C "$ws" restore 0 >/dev/null
( cd "$ws" && find . -type f -print0 | xargs -0 sha256sum ) >"$T/A.sums"
cat "$T/A.sums" "$T/B.sums" | LC_ALL=C sort -u >"$T/allowed"

iterations=${SB_CRASH_ITERATIONS:-50}
torn=0
killed=0
for i in $(seq 1 "$iterations"); do
	target=$((i % 2))
	"$SNAPBOX" -C "$ws" restore "$target" >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 300)))"
	kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
	wait "$pid" 2>/dev/null
	# Every file present must be one of the two versions (temp files aside).
	bad=$(cd "$ws" && find . -type f ! -name '.sb-tmp-*' -print0 | xargs -0 sha256sum | LC_ALL=C sort | comm -23 - "$T/allowed" | head -3)
	if [ -n "$bad" ]; then
		torn=$((torn + 1))
		diag "iteration $i: $bad"
	fi
done
check "restore was killed mid-run in $killed of $iterations iterations" test "$killed" -ge $((iterations / 3))
check "no torn file in $iterations kills" test "$torn" = 0
expect_status 0 "the next restore 1 completes" sb -C "$ws" --json restore 1
check "with snapshot 1's root" test "$(jq_ 'd["root"]' <"$T/.out")" = "$root1"
expect_status 0 "and restore 0 completes" sb -C "$ws" --json restore 0
check "with snapshot 0's root" test "$(jq_ 'd["root"]' <"$T/.out")" = "$root0"
check "no temp files left behind" test -z "$(find "$ws" -name '.sb-tmp-*')"
expect_status 0 "verify after the crashes" sb -C "$ws" verify

done_testing
