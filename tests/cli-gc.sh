#!/usr/bin/env bash
# snapbox gc: forgets old snapshots, drops what nothing needs, keeps all the
# rest byte for byte; refuses (changing nothing) on a busy or unreadable
# store. Judged by du, sha256sum of the pack files, and exports compared
# with copies of the workspace taken when each snapshot was made.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
PACKS=$SNAPBOX_STORE/packs
packsum() { (cd "$PACKS" && sha256sum -- * | sort); }
packbytes() { du -sb "$PACKS" | cut -f1; }
ids() { sb -C "$1" --json list | jq_ "' '.join(str(s['id']) for s in d)"; }
# The workspace's area in the store: the first 128 bits of SHA-256 of its path.
area_of() { echo "$SNAPBOX_STORE/workspaces/$(printf %s "$(realpath "$1")" | sha256sum | cut -c1-32)"; }
# hold MODE FILE SECONDS: a background process that holds flock MODE (-s or
# -x) on FILE, as another snapbox would, until it is killed (kill_bg).
bg_pids=()
hold() {
	(
		exec 9<"$2"
		flock "$1" 9
		exec sleep "$3"
	) &
	bg_pids+=($!)
	sleep 0.3
}
kill_bg() {
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	bg_pids=()
}
trap 'kill_bg; _cleanup' EXIT

ws=$T/ws
mkdir -p "$ws/src"
echo stable >"$ws/src/keep.txt"
# Five snapshots, each with a new 256 KiB of random bytes in 'data' (which
# zstd cannot shrink): forgetting three frees at least 768 KiB.
for i in 0 1 2 3 4; do
	head -c 262144 /dev/urandom >"$ws/data"
	echo "version $i" >"$ws/src/v.txt"
	sb -C "$ws" -q snapshot -m "v$i"
	cp -a "$ws" "$T/copy$i"
done

packsum >"$T/sum0"
expect_status 0 "gc --keep 2 --dry-run" sb -C "$ws" gc --keep 2 --dry-run
check "the dry run names the snapshots it would forget" last_out_has "would forget 3 snapshots of $ws: 0 1 2"
packsum >"$T/sum1"
check "a dry run changes no pack file" cmp -s "$T/sum0" "$T/sum1"
check "a dry run forgets no snapshot" test "$(ids "$ws")" = "0 1 2 3 4"

before=$(packbytes)
expect_status 0 "gc --keep 2" sb -C "$ws" --json gc --keep 2
check "--json names the forgotten snapshots" \
	test "$(jq_ "[(f['workspace'], f['snapshots']) for f in d['forgotten']]" <"$T/.out")" = "[('$ws', [0, 1, 2])]"
after=$(packbytes)
check "the packs shrank by the three old versions at least ($before -> $after bytes)" \
	test $((before - after)) -ge $((3 * 262144))
check "only the newest two snapshots are listed" test "$(ids "$ws")" = "3 4"
expect_status 0 "verify passes after gc" sb -C "$ws" verify
for i in 3 4; do
	sb -C "$ws" -q export "$i" "$T/out$i"
	check "snapshot $i exports exactly as the workspace was" diff -r "$T/copy$i" "$T/out$i"
done
expect_status 1 "a forgotten snapshot is gone" sb -C "$ws" export 1 "$T/out1"
echo more >"$ws/new.txt"
sb -C "$ws" -q snapshot
check "numbers are not reused: the next snapshot is 5" test "$(ids "$ws")" = "3 4 5"

# The head (what the workspace was last made equal to) is never forgotten.
expect_status 0 "restore 3" sb -C "$ws" -q restore 3
expect_status 0 "gc --keep 1 after restoring 3" sb -C "$ws" gc --keep 1
check "gc says it kept an older snapshot" last_out_has "kept 1 older snapshot"
check "the head (3) and the newest stay" test "$(ids "$ws")" = "3 5"
sb -C "$ws" -q export 3 "$T/again3"
check "the head still exports exactly" diff -r "$T/copy3" "$T/again3"

# Objects another workspace needs survive a gc that forgets them here.
ws2=$T/ws2
mkdir -p "$ws2"
cp "$ws/data" "$ws2/shared"
sb -C "$ws2" -q snapshot
head -c 262144 /dev/urandom >"$ws/data"
sb -C "$ws" -q snapshot
expect_status 0 "gc --keep 1 in the first workspace" sb -C "$ws" gc --keep 1
check "the second workspace's snapshot is untouched" test "$(ids "$ws2")" = "0"
sb -C "$ws2" -q export 0 "$T/ws2out"
check "the content both shared still exports in the second" cmp "$ws2/shared" "$T/ws2out/shared"
expect_status 0 "verify of the second workspace" sb -C "$ws2" verify

# The stat cache names contents a scan trusts without asking the store: a
# content only it names must survive. Forget a snapshot by hand, so that
# nothing but the cache names the file it recorded.
ws3=$T/ws3
mkdir -p "$ws3"
head -c 100000 /dev/urandom >"$ws3/only-in-cache"
sb -C "$ws3" -q snapshot
rm "$(area_of "$ws3")/snapshots/0.json"
expect_status 0 "gc with a content only the stat cache names" sb -C "$ws3" gc
sb -C "$ws3" -q snapshot
expect_status 0 "a snapshot that trusted the cache verifies" sb -C "$ws3" verify
sb -C "$ws3" -q export "$(ids "$ws3")" "$T/ws3out"
check "and exports the file" cmp "$ws3/only-in-cache" "$T/ws3out/only-in-cache"

# A staged session: its objects are named by nothing but session.json.
ws4=$T/ws4
mkdir -p "$ws4"
echo base >"$ws4/f"
sb -C "$ws4" -q snapshot
if unshare --mount --pid --fork true 2>/dev/null; then
	sb -C "$ws4" -q run -- sh -c 'seq 1 30000 >staged.txt; echo changed >f'
	expect_status 0 "diff stages the run's changes into the store" sb -C "$ws4" diff --stat
	expect_status 0 "gc --keep 1 with a staged session" sb -C "$ws4" gc --keep 1
	expect_status 0 "the staged changes still apply" sb -C "$ws4" -q apply
	check "the staged file landed whole" cmp <(seq 1 30000) "$ws4/staged.txt"
	check "the staged edit landed" test "$(cat "$ws4/f")" = changed
	expect_status 0 "verify after applying" sb -C "$ws4" verify
else
	skip "gc with a staged session" "this host cannot create mount and pid namespaces for snapbox run"
fi

# A stat cache that names objects the store lost (its pack removed by hand,
# with the only snapshot): gc drops the cache, and the next snapshot reads
# the files again instead of trusting it.
CACHE_STORE=$T/store-cache
ws6=$T/ws6
mkdir -p "$ws6"
head -c 70000 /dev/urandom >"$ws6/f"
SNAPBOX_STORE=$CACHE_STORE sb -C "$ws6" -q snapshot
rm "$(SNAPBOX_STORE=$CACHE_STORE area_of "$ws6")/snapshots/0.json" "$CACHE_STORE"/packs/pack-*
expect_status 0 "gc --dry-run with a stat cache naming lost objects" \
	env SNAPBOX_STORE="$CACHE_STORE" "$SNAPBOX" -C "$ws6" gc --dry-run
check "the dry run says it would drop the cache" last_out_has "would drop 1 stat cache"
check "and leaves it" test -e "$(SNAPBOX_STORE=$CACHE_STORE area_of "$ws6")/index"
expect_status 0 "gc with a stat cache naming lost objects" env SNAPBOX_STORE="$CACHE_STORE" "$SNAPBOX" -C "$ws6" gc
check "it says it dropped the cache" last_out_has "dropped 1 stat cache"
check "the cache file is gone" test ! -e "$(SNAPBOX_STORE=$CACHE_STORE area_of "$ws6")/index"
SNAPBOX_STORE=$CACHE_STORE sb -C "$ws6" -q snapshot
expect_status 0 "the next snapshot verifies" env SNAPBOX_STORE="$CACHE_STORE" "$SNAPBOX" -C "$ws6" verify
SNAPBOX_STORE=$CACHE_STORE sb -C "$ws6" -q export "$(SNAPBOX_STORE=$CACHE_STORE ids "$ws6")" "$T/ws6out"
check "and holds the file" cmp "$ws6/f" "$T/ws6out/f"

# A file's content that a snapshot of one workspace and only the stat cache of
# another name, lost with its pack: the snapshot's problem stops gc, which
# ever workspace comes first (caches are walked after every snapshot).
SHARED_STORE=$T/store-shared
wsa7=$T/wsa7 wsb7=$T/wsb7
mkdir -p "$wsa7/d" "$wsb7/d"
head -c 30000 /dev/urandom >"$wsa7/d/f"
cp "$wsa7/d/f" "$wsb7/d/f"
SNAPBOX_STORE=$SHARED_STORE sb -C "$wsa7" -q snapshot
pa=$(ls "$SHARED_STORE"/packs/*.pack)
echo g >"$wsb7/g"
SNAPBOX_STORE=$SHARED_STORE sb -C "$wsb7" -q snapshot
rm "$(SNAPBOX_STORE=$SHARED_STORE area_of "$wsa7")/snapshots/0.json" "$pa" "${pa%.pack}.idx"
expect_status 1 "gc refuses a snapshot's lost content that a cache also names" \
	env SNAPBOX_STORE="$SHARED_STORE" "$SNAPBOX" -C "$wsb7" gc
check "it names the snapshot and the missing file" grep -q "snapshot 0, path 'd/f': missing" "$T/.err"
check "and drops no stat cache" test -e "$(SNAPBOX_STORE=$SHARED_STORE area_of "$wsa7")/index"

# Leftovers of writers that died: a pack without an index, a temp index.
pk=$(ls "$PACKS"/*.pack | head -n 1)
cp "$pk" "$PACKS/pack-0123456789abcdef0123456789abcdef.pack"
echo x >"$PACKS/pack-0123456789abcdef0123456789abcdef.idx.lock"
expect_status 0 "gc removes what dead writers left" sb -C "$ws" gc
check "the pack without an index is gone" test ! -e "$PACKS/pack-0123456789abcdef0123456789abcdef.pack"
check "the temp index is gone" test ! -e "$PACKS/pack-0123456789abcdef0123456789abcdef.idx.lock"
check "gc counted both" last_out_has "removed 2 files left by interrupted writers"

# Busy: another command holds the store (flock -s as it would), or the
# workspace lock. gc refuses at once and changes nothing.
packsum >"$T/sum2"
hold -s "$SNAPBOX_STORE/gc.lock" 60
expect_status 1 "gc refuses while another command has the store open" sb -C "$ws" gc --keep 1
check "it says the store is in use" last_err_has "is in use by another snapbox command"
kill_bg
hold -x "$(area_of "$ws")/lock" 60
expect_status 1 "gc refuses while a workspace is locked" sb -C "$ws" gc --keep 1
check "it names the busy workspace" last_err_has "workspace '$ws'"
kill_bg
packsum >"$T/sum3"
check "a refused gc changed no pack file" cmp -s "$T/sum2" "$T/sum3"
check "nor forgot a snapshot" test "$(ids "$ws")" = "6"

# While gc holds the store, other commands wait for it and then go on.
hold -x "$SNAPBOX_STORE/gc.lock" 1.5
sb -C "$ws" -q list >"$T/waited" 2>&1 &
lister=$!
sleep 0.6
check "a command started during gc waits" kill -0 "$lister"
wait "$lister"
check "and then succeeds" test $? = 0
kill_bg

# Unreadable: gc removes nothing when it cannot tell what is needed.
idx=$(ls "$PACKS"/*.idx | head -n 1)
cp "$idx" "$T/idx.orig"
chmod u+w "$idx"
printf '\xff' | dd of="$idx" bs=1 seek=30 conv=notrunc status=none
packsum >"$T/sum4"
expect_status 1 "gc refuses a damaged index" sb -C "$ws" gc
check "it names the index and says to run verify" \
	grep -q "index 'packs/$(basename "$idx")'.*snapbox verify" "$T/.err" || diag "$(cat "$T/.err")"
packsum >"$T/sum5"
check "and changes no pack file" cmp -s "$T/sum4" "$T/sum5"
cp "$T/idx.orig" "$idx"

# A manifest whose root is in no pack (as if its tree had been lost).
snapdir=$(area_of "$ws")/snapshots
python3 - "$snapdir/6.json" "$snapdir/9.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["id"], m["root"] = 9, "07" * 32
json.dump(m, open(sys.argv[2], "w"))
PY
packsum >"$T/sum6"
expect_status 1 "gc refuses when a snapshot's tree is missing" sb -C "$ws" gc
check "it says which and what is wrong" last_err_has "missing tree"
packsum >"$T/sum7"
check "and changes no pack file" cmp -s "$T/sum6" "$T/sum7"
rm "$snapdir/9.json"
expect_status 0 "gc runs again once the store is whole" sb -C "$ws" gc
expect_status 0 "verify after all of it" sb -C "$ws" verify

# A symlink's target whose only record is in a pack that lost its index:
# the pack looks like a dead writer's leftover, but it holds something
# needed. (The target was stored first as a file of another workspace,
# whose area is then removed, so no tree shares that pack.)
SYM_STORE=$T/store-sym
wsc=$T/wsc wsa=$T/wsa
mkdir -p "$wsc" "$wsa"
printf 'target-only-here-%s' "$RANDOM$RANDOM" >"$wsc/f"
SNAPBOX_STORE=$SYM_STORE sb -C "$wsc" -q snapshot
pc=$(ls "$SYM_STORE"/packs/*.idx)
ln -s "$(cat "$wsc/f")" "$wsa/l"
ln -s "$(cat "$wsc/f")" "$wsa/l2"
SNAPBOX_STORE=$SYM_STORE sb -C "$wsa" -q snapshot
rm "$pc" && rm -rf "$(SNAPBOX_STORE=$SYM_STORE area_of "$wsc")"
(cd "$SYM_STORE/packs" && sha256sum -- * | sort) >"$T/symsum0"
expect_status 1 "gc refuses when a symlink's target is in no index" env SNAPBOX_STORE="$SYM_STORE" "$SNAPBOX" -C "$wsa" gc
check "it names the path and the missing object" grep -q "path 'l': missing symlink target" "$T/.err"
(cd "$SYM_STORE/packs" && sha256sum -- * | sort) >"$T/symsum1"
check "and removes nothing, the pack without an index included" cmp -s "$T/symsum0" "$T/symsum1"
expect_status 1 "verify finds the missing target" env SNAPBOX_STORE="$SYM_STORE" "$SNAPBOX" -C "$wsa" verify
check "at both paths that name it" test "$(grep -c 'missing symlink target' "$T/.out")" = 2

# A session directory without its record (a run killed before writing it)
# names no tree; gc goes on.
ws5=$T/ws5
mkdir -p "$ws5"
echo five >"$ws5/f"
sb -C "$ws5" -q snapshot
mkdir -p "$(area_of "$ws5")/session"
expect_status 0 "gc with a session cut short before its record" sb -C "$ws5" gc

# A dry run's estimate counts temp index files as no pack.
DRY_STORE=$T/store-dry
SNAPBOX_STORE=$DRY_STORE sb -C "$ws5" -q snapshot
for n in 1 2; do echo x >"$DRY_STORE/packs/pack-fedcba9876543210fedcba987654321$n.idx.lock"; done
expect_status 0 "gc --dry-run with two temp index files left behind" \
	env SNAPBOX_STORE="$DRY_STORE" "$SNAPBOX" -C "$ws5" --json gc --dry-run
check "the estimate is one pack before and after" \
	test "$(jq_ "(d['packs_before'], d['packs_after'])" <"$T/.out")" = "(1, 1)"

# A pack another process holds (a writer too old to take gc.lock), or one
# shorter than its index says: gc refuses and changes nothing.
pk=$(ls "$DRY_STORE"/packs/*.pack)
(cd "$DRY_STORE/packs" && sha256sum -- * | sort) >"$T/drysum0"
hold -s "$pk" 60
expect_status 1 "gc refuses while a pack is held by a writer" \
	env SNAPBOX_STORE="$DRY_STORE" "$SNAPBOX" -C "$ws5" gc
check "it names the pack" last_err_has "'packs/$(basename "$pk")' is being written by another process"
kill_bg
cp "$pk" "$T/pack.orig"
chmod u+w "$pk"
truncate -s -10 "$pk"
expect_status 1 "gc refuses a pack shorter than its index" \
	env SNAPBOX_STORE="$DRY_STORE" "$SNAPBOX" -C "$ws5" gc
check "it says so" last_err_has "is shorter than its index says"
cp "$T/pack.orig" "$pk"
(cd "$DRY_STORE/packs" && sha256sum -- * | sort) >"$T/drysum1"
check "neither changed a file" cmp -s "$T/drysum0" "$T/drysum1"

# A store written before gc.lock existed, read by a user who may not
# create files in it: opened without the lock.
if [ "$(id -u)" = 0 ]; then
	rm "$SNAPBOX_STORE/gc.lock"
	chmod -R go+rX "$SNAPBOX_STORE"
	expect_status 0 "a read-only user lists a store that has no gc.lock" \
		as_user env SNAPBOX_STORE="$SNAPBOX_STORE" "$SNAPBOX" -C "$ws" list
	check "without creating it" test ! -e "$SNAPBOX_STORE/gc.lock"
else
	skip "a store without gc.lock read by another user" "needs root to act as another user"
fi

# --all applies --keep to every workspace, one whose directory is gone too.
ALL_STORE=$T/store-all
for w in wa1 wa2; do
	mkdir -p "$T/$w"
	for i in 0 1 2; do
		head -c 50000 /dev/urandom >"$T/$w/data"
		SNAPBOX_STORE=$ALL_STORE sb -C "$T/$w" -q snapshot
	done
done
gone_area=$(SNAPBOX_STORE=$ALL_STORE area_of "$T/wa2")
rm -rf "$T/wa2"
expect_status 2 "--all without --keep is a usage error" env SNAPBOX_STORE="$ALL_STORE" "$SNAPBOX" gc --all
before=$(du -sb "$ALL_STORE/packs" | cut -f1)
expect_status 0 "gc --all --keep 1" env SNAPBOX_STORE="$ALL_STORE" "$SNAPBOX" -C "$T/wa1" gc --all --keep 1
check "it forgot in the workspace at hand" last_out_has "forgot 2 snapshots of $T/wa1: 0 1"
check "and in the one whose directory is gone" last_out_has "forgot 2 snapshots of $T/wa2: 0 1"
check "only the newest manifest of the gone one is left" test "$(ls "$gone_area/snapshots")" = "2.json"
after=$(du -sb "$ALL_STORE/packs" | cut -f1)
check "the four old versions' bytes are freed ($before -> $after)" test $((before - after)) -ge $((4 * 50000))
expect_status 0 "the store verifies" env SNAPBOX_STORE="$ALL_STORE" "$SNAPBOX" -C "$T/wa1" verify

# Again as an unprivileged user, in a store of its own.
rootless_workspace "$T/rl"
as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" -q snapshot
echo y >"$T/rl/ws/f2" && chown --reference="$RL_WS" "$T/rl/ws/f2"
as_user env SNAPBOX_STORE="$RL_STORE" "$SNAPBOX" -C "$RL_WS" -q snapshot
rootless_expect 0 "gc --keep 1 as an unprivileged user" gc --keep 1
check "it forgot snapshot 0" last_out_has "forgot 1 snapshot of $RL_WS: 0"
rootless_expect 0 "and the store verifies" verify

expect_status 2 "--keep 0 is a usage error" sb -C "$ws" gc --keep 0
expect_status 0 "gc --help" sb gc --help
check "--help names --keep" last_out_has "--keep N"

done_testing
