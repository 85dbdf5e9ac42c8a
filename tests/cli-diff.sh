#!/usr/bin/env bash
# diff: the unified output applies with git apply and patch -p1; --stat,
# --name-status and --json agree with the edits made; the walk reads O(changes)
# tree objects on a 100k-file tree.
. "$(dirname "$0")/lib.sh"

jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

ws=$T/ws
mkdir -p "$ws/src/deep/er" "$ws/docs"
seq 1 200 >"$ws/src/nums"
printf 'no newline\nat end' >"$ws/src/nonl"
echo keep >"$ws/keep.sh"
echo gone >"$ws/docs/gone"
echo inner >"$ws/src/deep/er/inner"
printf 'spaced\n' >"$ws/docs/with space"
printf 'quoted\n' >"$ws/docs/q\"uote"
ln -s src/nums "$ws/link"
sb -C "$ws" snapshot >/dev/null
mkdir "$T/a" && sb -C "$ws" export 0 "$T/a/tree" >/dev/null

sed -i 's/^100$/hundred/; s/^7$/seven/; 150d' "$ws/src/nums"
printf 'no newline\nat END' >"$ws/src/nonl"
chmod +x "$ws/keep.sh"
rm "$ws/docs/gone"
echo "brand new" >"$ws/docs/new"
echo more >>"$ws/docs/with space"
echo more >>"$ws/docs/q\"uote"
rm -r "$ws/src/deep"
ln -sf keep.sh "$ws/link"
sb -C "$ws" snapshot >/dev/null

expect_status 0 "diff 0 1" sb -C "$ws" diff 0 1
cp "$T/.out" "$T/p.diff"
check "diff shows a git header" last_out_has "diff --git a/src/nums b/src/nums"
check "diff shows the mode change" grep -q '^new mode 100755' "$T/p.diff"
check "diff marks a missing final newline" grep -q '^\\ No newline at end of file' "$T/p.diff"
check "a name with a quote is quoted as git quotes it" grep -qF '"a/docs/q\"uote"' "$T/p.diff"

cp -a "$T/a/tree" "$T/g"
(cd "$T/g" && git init -q . && git apply "$T/p.diff") 2>"$T/git.err"
check "git apply accepts the diff" test $? = 0
check "git apply reproduces snapshot 1" bash -c "diff -r -x .git '$T/g' '$ws' >/dev/null"

cp -a "$T/a/tree" "$T/p"
sb -C "$ws" diff 0 1 -- src/nums src/nonl docs keep.sh src/deep >"$T/text.diff"
(cd "$T/p" && patch -p1 -s <"$T/text.diff") >"$T/patch.out" 2>&1
check "patch -p1 accepts the text diff" test $? = 0
ok_files=1
for f in src/nums src/nonl "docs/with space" "docs/q\"uote" docs/new; do
	cmp -s "$T/p/$f" "$ws/$f" || { ok_files=0; diag "differs: $f"; }
done
check "patch -p1 reproduces the text files" test $ok_files = 1
check "patch -p1 removed the deleted files" test ! -e "$T/p/docs/gone" -a ! -e "$T/p/src/deep/er/inner"

expect_status 0 "diff --name-status" sb -C "$ws" diff --name-status 0 1
want=$(printf 'A docs/new\nD docs/gone\nD src/deep/\nD src/deep/er/\nD src/deep/er/inner\nM docs/q"uote\nM docs/with space\nM keep.sh\nM link\nM src/nonl\nM src/nums\n')
got=$(LC_ALL=C sort "$T/.out" | sed 's/^\(.\) "\(.*\)"$/\1 \2/; s/\\"/"/g')
if [ "$got" = "$want" ]; then ok "name-status lists exactly the edits"; else not_ok "name-status lists exactly the edits"; diag "$got"; fi
expect_status 0 "diff --stat" sb -C "$ws" diff --stat 0 1
check "stat summary counts insertions and deletions" grep -qE '^ [0-9]+ files changed, [0-9]+ insertions\(\+\), [0-9]+ deletions\(-\)' "$T/.out"
check "stat counts src/nums as 5 changed lines" grep -qE '^ src/nums +\| +5 ' "$T/.out"

# --stat counts lines on the differing middle only: it must agree with the
# +/- lines of the full unified diff, also where equal lines meet the edits.
ws2=$T/ws2
mkdir -p "$ws2"
stat_case() { printf "$2" >"$ws2/$1"; }
stat_case append 'a\nb'
stat_case newline 'x'
stat_case repeat 'a\na\n'
stat_case overlap 'ab\n'
stat_case head 'one\ntwo\nthree\n'
stat_case tail 'one\ntwo\nthree\n'
stat_case empty ''
stat_case full 'gone\n'
seq 1 300 >"$ws2/middle"
sb -C "$ws2" snapshot >/dev/null
stat_case append 'a\nb\nc'
stat_case newline 'x\n'
stat_case repeat 'a\na\na\n'
stat_case overlap 'ab\nab\n'
stat_case head 'two\nthree\n'
stat_case tail 'one\ntwo\nthree\nfour'
stat_case empty 'now\nfull\n'
stat_case full ''
sed -i 's/^150$/x/; 151d; s/^152$/y/' "$ws2/middle"
sb -C "$ws2" snapshot >/dev/null
sb -C "$ws2" diff 0 1 >"$T/p2.diff"
want=$(awk '/^\+\+\+ |^--- /{next} /^\+/{a++} /^-/{d++} END{printf "%d %d", a, d}' "$T/p2.diff")
got=$(sb -C "$ws2" diff --stat 0 1 | tail -n 1 | sed -E 's/.* ([0-9]+) insertions?\(\+\), ([0-9]+) deletions?\(-\).*/\1 \2/')
if [ "$got" = "$want" ]; then ok "stat counts equal the patch's +/- lines"; else not_ok "stat counts equal the patch's +/- lines"; diag "stat '$got', patch '$want'"; fi

expect_status 0 "diff --json" sb -C "$ws" --json diff 0 1
check "json lists 11 changes" test "$(jq_ 'len(d["changes"])' <"$T/.out")" = 11
expect_status 0 "diff with a path filter" sb -C "$ws" diff --name-status 0 1 -- docs
check "the filter keeps only docs/" test "$(grep -vc ' \"\?docs/' "$T/.out")" = 0

# Against the workspace: no argument is the latest snapshot; one is snapshot A.
echo x >>"$ws/keep.sh"
expect_status 0 "diff (latest vs workspace)" sb -C "$ws" diff --name-status
check "shows the workspace edit only" test "$(cat "$T/.out")" = "M keep.sh"
expect_status 0 "diff 0 (vs workspace)" sb -C "$ws" diff --name-status 0
check "snapshot 0 vs workspace includes older edits" last_out_has "D docs/gone"

# Colour only where asked.
out=$(sb -C "$ws" --color=always diff 0 1 | grep -c $'\033\[3[12]m' || true)
check "--color=always colours added and removed lines" test "$out" -gt 0
check "no colour in a pipe" test "$(sb -C "$ws" diff 0 1 | grep -c $'\033' || true)" = 0

# O(changes): 100k files, 10 changed, the walk reads only their ancestors' trees.
big=$T/big
python3 - "$big" <<'PY'
import os, sys
root = sys.argv[1]
for a in range(50):
    for b in range(20):
        d = os.path.join(root, f"a{a}", f"b{b}")
        os.makedirs(d)
        for c in range(100):
            with open(os.path.join(d, f"f{c}"), "w") as f:
                f.write(f"{a} {b} {c}\n")
PY
touch -d '2020-01-01' "$big"
expect_status 0 "snapshot of a 100k-file tree" sb -C "$big" snapshot
for i in $(seq 0 9); do echo changed >>"$big/a$((i * 5))/b$((i * 2))/f$i"; done
expect_status 0 "snapshot after 10 changes" sb -C "$big" snapshot
expect_status 0 "diff --json of the two" sb -C "$big" --json diff 0 1
reads=$(jq_ 'd["stats"]["tree_objects_read"]' <"$T/.out")
check "10 changed files found" test "$(jq_ 'len(d["changes"])' <"$T/.out")" = 10
check "diff read $reads tree objects (at most 2 per level per change: 62)" test "$reads" -le 62
expect_status 0 "restore 0 of the 100k-file tree" sb -C "$big" --json restore 0
trees=$(jq_ 'd["stats"]["trees_compared"]' <"$T/.out")
check "restore compared $trees directories (O(10), not O(1000))" test "$trees" -le 31
check "restore wrote exactly the 10 files" test "$(jq_ 'd["stats"]["written"]' <"$T/.out")" = 10

done_testing
