#!/bin/sh
# Build the debug kernel of `make vm-check-debug` once and cache it: Debian's
# linux-source tarball, `make tinyconfig` plus a config fragment (KASAN,
# lockdep, kmemleak...: tests/vm/debug.config), `make bzImage modules`.
#   debug-kernel.sh [--tar TARBALL] [--jobs N] FRAGMENT
# Prints the cache directory, which holds:
#   bzImage   the kernel to boot
#   build/    the configured, built tree for `make -C DIR/build M=... modules`
#   config    its .config;  build.log  the build's output
# The directory is ${XDG_CACHE_HOME:-~/.cache}/memlink/kernel-<hash>, the
# hash covering the tarball, the fragment, the compiler and RECIPE below. A
# hit costs ~1 s (hashing the tarball); a miss ~6 min on 2 cores. The build
# runs in kernel-<hash>.tmp and is renamed into place when complete, under a
# lock: an interrupted or concurrent build never leaves a half cache.
set -e
# Bump when the way the tree is built or pruned changes: a new cache key.
RECIPE=2
tarball=${LINUX_SRC_TAR:-/usr/src/linux-source-6.1.tar.xz}
jobs=$(nproc)
while [ $# -gt 0 ]; do
	case $1 in
	--tar) tarball=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	-*) echo "debug-kernel.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: debug-kernel.sh [--tar TARBALL] [--jobs N] FRAGMENT" >&2; exit 2; }
fragment=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -r "$fragment" ] || { echo "debug-kernel.sh: no fragment $1" >&2; exit 1; }
[ -r "$tarball" ] || { echo "debug-kernel.sh: $tarball missing (tools/deps.sh vm installs linux-source-6.1)" >&2; exit 1; }
# A calling make's command-line variables (O=, CC=...) must not reach kbuild.
unset MAKEFLAGS MFLAGS MAKELEVEL

key=$( {
	echo "recipe $RECIPE"
	sha256sum <"$tarball"
	sha256sum <"$fragment"
	gcc --version | head -n 1
} | sha256sum | cut -c1-16)
root=${XDG_CACHE_HOME:-$HOME/.cache}/memlink
dir=$root/kernel-$key
if [ -r "$dir/bzImage" ]; then
	touch "$dir/.used"
	echo "$dir"
	exit 0
fi

mkdir -p "$root"
# One builder per key; a second one waits, then finds the cache filled.
exec 9>"$dir.lock"
flock 9
if [ -r "$dir/bzImage" ]; then
	echo "$dir"
	exit 0
fi
tmp=$dir.tmp
rm -rf "$tmp"   # what an interrupted build left (we hold the lock)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$tmp/build"
log=$tmp/build.log
start=$(date +%s)
echo "debug-kernel: building $dir (about 6 minutes on 2 cores; log: $log)" >&2
tar -xJf "$tarball" -C "$tmp/build" --strip-components=1

cd "$tmp/build"
set +e
{
	make tinyconfig &&
	scripts/kconfig/merge_config.sh -m .config "$fragment" &&
	make olddefconfig
} >"$log" 2>&1
rc=$?
set -e
[ $rc -eq 0 ] || { tail -n 30 "$log" >&2; echo "debug-kernel.sh: configuration failed" >&2; exit 1; }

# Every option of the fragment must have survived olddefconfig: a KASAN that
# a missing dependency silently dropped would make every run look clean.
bad=$(sed -n -e 's/^\(CONFIG_[A-Za-z0-9_]*\)=\(.*\)$/\1=\2/p' \
	-e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1=n/p' "$fragment" |
	while IFS='=' read -r opt want; do
		got=$(sed -n "s/^$opt=//p" .config)
		[ -n "$got" ] || got=n
		[ "$got" = "$want" ] || echo "  $opt: wanted $want, got $got"
	done)
if [ -n "$bad" ]; then
	echo "debug-kernel.sh: the fragment did not apply:" >&2
	echo "$bad" >&2
	exit 1
fi

echo "debug-kernel: make -j$jobs bzImage modules" >&2
if ! make -j"$jobs" bzImage modules >>"$log" 2>&1; then
	grep -E 'error|Error' "$log" | head -n 20 >&2
	echo "debug-kernel.sh: kernel build failed (log kept in $root/kernel-$key.failed.log)" >&2
	cp "$log" "$root/kernel-$key.failed.log"
	exit 1
fi
cp arch/x86/boot/bzImage "$tmp/bzImage"
cp .config "$tmp/config"

# Keep what `make -C build M=... modules` needs (Makefiles, headers, scripts,
# the generated files, Module.symvers, the objtool binary); drop the objects,
# the sources only the kernel itself compiles, drivers and other arches:
# ~150 MB are left of ~2 GB.
echo "debug-kernel: pruning the tree" >&2
rm -rf Documentation samples LICENSES drivers sound vmlinux vmlinux.o vmlinux.a .tmp_vmlinux*
for d in arch/*/ tools/*; do
	case $d in arch/x86/ | arch/x86_64/ | tools/objtool) ;; *) rm -rf "$d" ;; esac
done
find tools/objtool -mindepth 1 ! -name objtool -exec rm -rf {} +
find . -path ./scripts -prune -o -path ./include -prune -o -path ./arch/x86/include -prune \
	-o -type f \( -name '*.o' -o -name '*.a' -o -name '*.c' -o -name '.*.cmd' \
	-o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \) -print0 |
	xargs -0 rm -f
cd /
touch "$tmp/.used"
mv "$tmp" "$dir"
trap - EXIT
rm -f "$dir.lock"
# Kernels of other fragments or tarballs, unused for two weeks, go.
find "$root" -maxdepth 2 -path "$root/kernel-*/.used" -mtime +14 |
	while read -r used; do rm -rf "${used%/.used}"; done
echo "debug-kernel: built in $(($(date +%s) - start)) s: $dir" >&2
echo "$dir"
