#!/usr/bin/env bash
# Round trip of a hostile tree: snapshot, then export into a fresh directory
# reproduces it exactly, judged by find -printf and sha256 of every file.
. "$(dirname "$0")/lib.sh"

ws=$T/ws
make_hostile_tree "$ws" 1G
printf 'sock' >/dev/null
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$ws/a.sock"

expect_status 0 "snapshot of a hostile tree" sb -C "$ws" snapshot
check "the socket is skipped with a warning naming it" last_err_has "a.sock"
rm "$ws/a.sock"

expect_status 0 "export into a new directory" sb -C "$ws" export 0 "$T/out"
check "export reproduces the tree exactly (type, mode, size, mtime, link, sha256)" same_listing "$ws" "$T/out"
blocks=$(stat -c %b "$T/out/sparse")
check "the 1 GiB sparse file stays sparse ($blocks blocks)" test "$blocks" -lt 4096
check "hard links keep their content" cmp -s "$T/out/hard1" "$T/out/hard2"
check "symlink to outside is a symlink, not followed" test "$(readlink "$T/out/outside-link")" = "$(readlink "$ws/outside-link")"
check "setuid bit survives" test "$(stat -c %a "$T/out/suid")" = 4755
check "fifo is a fifo" test -p "$T/out/fifo"

mkdir "$T/full" && echo x >"$T/full/keep"
expect_status 1 "export into a non-empty directory is refused" sb -C "$ws" export 0 "$T/full"
check "the refusal names the directory" last_err_has "$T/full"
check "the non-empty directory is untouched" test "$(ls -A "$T/full")" = keep

done_testing
