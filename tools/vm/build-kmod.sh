#!/bin/sh
# Build memlink.ko out of the source tree with kbuild.
#   build-kmod.sh [--kdir DIR | --root DIR] [--src DIR] [--sparse | --clean] OUTDIR
# Kbuild (6.1) writes its objects beside the sources, so OUTDIR is a farm of
# symlinks to SRC's Kbuild, include/ and kmod/*.[ch], and kbuild runs with
# M=OUTDIR: nothing is written into the tree. SRC is the repository (the
# current directory) by default; KDIR is /lib/modules/<ver>/build of
# tools/vm/kernel-version.sh, or a configured kernel build tree.
# --sparse: also run sparse over every source (C=2) and fail on any
# warning (sparse's, or the compiler's for what gets recompiled).
# --clean: kbuild's clean of OUTDIR and of SRC itself (what an in-tree
# `make -C /lib/modules/<ver>/build M=$PWD` leaves); nothing without headers.
# --root DIR: a kernel of tools/vm/kernel-root.sh (the directory it
# printed): the build runs chrooted in DIR/root against its headers, with
# the kernel's own compiler (tools/vm/in-root.sh); OUTDIR then holds copies
# of the sources (links would point outside the root), bound into the root
# for the build, and the objects stay in OUTDIR.
set -e
here=$(cd "$(dirname "$0")" && pwd)
kdir=
kroot=
src=$PWD
sparse=0
clean=0
while [ $# -gt 0 ]; do
	case $1 in
	--kdir) kdir=$2; shift 2 ;;
	--root) kroot=$2; shift 2 ;;
	--src) src=$2; shift 2 ;;
	--sparse) sparse=1; shift ;;
	--clean) clean=1; shift ;;
	-*) echo "build-kmod.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: build-kmod.sh [--kdir DIR | --root DIR] [--src DIR] [--sparse | --clean] OUTDIR" >&2; exit 2; }
src=$(cd "$src" && pwd)
# A calling make's command-line variables (O=, CC=...) must not reach kbuild.
unset MAKEFLAGS MFLAGS MAKELEVEL

if [ "$clean" = 1 ]; then
	[ -n "$kdir" ] || kdir=/lib/modules/$("$here/kernel-version.sh" 2>/dev/null || :)/build
	[ -e "$kdir/Makefile" ] || exit 0
	for m in "$1" "$src"; do
		if [ -e "$m/Kbuild" ]; then
			m=$(cd "$m" && pwd)
			make -C "$kdir" M="$m" clean >/dev/null
		fi
	done
	exit 0
fi

mkdir -p "$1/kmod"
out=$(cd "$1" && pwd)
if [ -n "$kroot" ]; then
	kroot=$(cd "$kroot" && pwd)
	[ "$sparse" = 0 ] || { echo "build-kmod.sh: --sparse runs on the host's kernel only" >&2; exit 2; }
	kver=$(cat "$kroot/kver")
	kdir=/usr/src/linux-headers-$kver
	# Where OUTDIR is seen inside the root.
	mdir=/mnt/memlink-kmod
	# Refresh the copies: a changed source is copied (with a new mtime,
	# so kbuild rebuilds it), a gone one removed.
	for f in Kbuild $(cd "$src" && find include kmod -type f -name '*.[ch]'); do
		mkdir -p "$out/$(dirname "$f")"
		cmp -s "$src/$f" "$out/$f" || cp "$src/$f" "$out/$f"
	done
	for f in $(cd "$out" && find include kmod -type f -name '*.[ch]' ! -name '*.mod.c'); do
		[ -e "$src/$f" ] || rm -f "$out/$f"
	done
	[ "${V:-0}" = 1 ] && vflag=V=1 || vflag=
	# shellcheck disable=SC2086  # vflag: one word or none
	build() { "$here/in-root.sh" --bind "$out:$mdir" "$kroot/root" make -C "$kdir" M="$mdir" $vflag modules; }
else
	[ -n "$kdir" ] || kdir=/lib/modules/$("$here/kernel-version.sh")/build
	mdir=$out
	# Refresh the farm: link every source, drop links whose source is gone.
	ln -sfn "$src/Kbuild" "$out/Kbuild"
	ln -sfn "$src/include" "$out/include"
	for f in "$src"/kmod/*.c "$src"/kmod/*.h; do
		if [ -e "$f" ]; then ln -sfn "$f" "$out/kmod/${f##*/}"; fi
	done
	for l in "$out"/kmod/*; do
		if [ -L "$l" ] && [ ! -e "$l" ]; then rm -f "$l"; fi
	done
	args="-C $kdir M=$out"
	[ "$sparse" = 1 ] && args="$args C=2"
	[ "${V:-0}" = 1 ] && args="$args V=1"
	# shellcheck disable=SC2086  # args: one word each
	build() { make $args modules; }
fi

# Diagnostics name the sources (kmod/main.c:12:), not the farm's links.
if [ "$src" = "$(pwd)" ]; then shown=; else shown=$src/; fi
log=$out/build.log
set +e
build >"$log" 2>&1
rc=$?
set -e
sed -E "s#$mdir/((kmod|include)/[^ :]*\.[ch]:)#$shown\1#g" "$log" | grep -v -e '^make\(\[[0-9]*\]\)\{0,1\}: \(Entering\|Leaving\) directory' || true
if [ "$rc" -ne 0 ]; then
	echo "build-kmod.sh: module build failed (log: $log)" >&2
	exit 1
fi
if [ "$sparse" = 1 ] && grep -q -e 'warning:' -e 'error:' "$log"; then
	echo "kmod-sparse: warnings found" >&2
	exit 1
fi
echo "built $out/memlink.ko against $kdir${kroot:+ in $kroot/root}"
