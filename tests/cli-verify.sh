#!/usr/bin/env bash
# verify finds every flipped byte and truncation, naming the object.
. "$(dirname "$0")/lib.sh"

ws=$T/ws
mkdir -p "$ws/d"
for i in $(seq 1 20); do head -c $((i * 997)) /dev/urandom >"$ws/d/f$i"; done
echo small >"$ws/small"
sb -C "$ws" snapshot >/dev/null
expect_status 0 "verify of a healthy store" sb -C "$ws" verify
check "verify says ok" last_out_has "ok"

pack=$(ls "$SNAPBOX_STORE"/packs/*.pack | head -n 1)
cp "$pack" "$T/pack.orig"
size=$(stat -c %s "$pack")
chmod u+w "$pack"

# Flip bytes at several offsets spread over the pack; each must be caught.
caught=0 tried=0
for frac in 10 25 40 55 70 85 97; do
	off=$((size * frac / 100))
	cp "$T/pack.orig" "$pack"
	python3 - "$pack" "$off" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x5a]))
PY
	tried=$((tried + 1))
	sb -C "$ws" verify >"$T/v.out" 2>"$T/v.err"
	st=$?
	if [ $st = 1 ] && grep -qE '^bad [0-9a-f]{64}' "$T/v.out"; then caught=$((caught + 1)); else diag "offset $off: exit $st"; fi
done
check "a flipped byte is found at every offset tried ($caught/$tried)" test "$caught" = "$tried"

cp "$T/pack.orig" "$pack"
truncate -s $((size - 100)) "$pack"
expect_status 1 "a truncated pack fails verify" sb -C "$ws" verify
check "the truncated object is named" grep -qE '^bad [0-9a-f]{64}' "$T/.out"

cp "$T/pack.orig" "$pack"
expect_status 0 "verify passes once the pack is whole again" sb -C "$ws" verify
expect_status 0 "verify --json" sb -C "$ws" --json verify
check "verify --json says ok" python3 -c "import json,sys; d=json.load(open('$T/.out')); sys.exit(0 if d['ok'] and d['objects_checked'] > 20 else 1)"

done_testing
