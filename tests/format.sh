#!/usr/bin/env bash
# Checks that every tracked C file is formatted as .clang-format says (kernel
# style). Prints the files that are not; exits 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	$sudo apt-get install -y -qq clang-format >/dev/null
fi
bad=0
while IFS= read -r f; do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "format: $f is not clang-formatted (run: clang-format -i $f)"
		bad=1
	fi
done < <(git ls-files '*.c' '*.h')
[ "$bad" = 0 ] && echo "format: all C files are clang-formatted"
exit "$bad"
