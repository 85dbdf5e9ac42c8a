#!/usr/bin/env bash
# Installs what snapbox needs to build and test on Debian 12, then configures
# and builds it into build/ (or $SB_BUILDDIR). Safe to run again.
#   SB_SANITIZE=1   build with -Db_sanitize=address,undefined instead
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	build-essential meson ninja-build pkg-config
	libzstd-dev libcjson-dev libssl-dev libseccomp-dev libfuse3-dev
	fuse3 zstd git attr iproute2 procps python3 util-linux coreutils findutils
	diffutils patch file
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	echo "setup: installing ${missing[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

builddir=${SB_BUILDDIR:-build}
opts=()
if [ "${SB_SANITIZE:-0}" = 1 ]; then
	builddir=${SB_BUILDDIR:-build-asan}
	opts+=(-Db_sanitize=address,undefined -Db_lundef=false)
fi
if [ ! -f "$builddir/build.ninja" ]; then
	meson setup "$builddir" "${opts[@]}" >/dev/null
fi
ninja -C "$builddir" >/dev/null
echo "$builddir"
