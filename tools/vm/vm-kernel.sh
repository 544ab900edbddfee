#!/bin/sh
# One kernel of make vm-check: build memlink.ko for it, then boot it with the
# host-built static tests (tools/vm/run.sh).
#   vm-kernel.sh --name SUITE --kmod-out DIR (--root KERNEL | [--kdir DIR]
#                [--kernel IMAGE]) [RUN.SH ARGS...]
# --root KERNEL: a kernel of tools/vm/kernel-root.sh (6.12, sid, rt...),
# prepared or found in its cache; the module is built in its root
# (build-kmod.sh --root) and its vmlinuz booted. Otherwise the host's Debian
# kernel (build-kmod.sh's and run.sh's defaults, or --kdir, --kernel).
# The rest goes to run.sh, which ends with "SUITE: N passed, N failed" and
# tallies; a failure before the VM (no root, no module) ends the same way
# with one failure, so that every kernel of the matrix is counted.
set -e
here=$(cd "$(dirname "$0")" && pwd)
name=
kout=
kroot=
kdir=
kernel=
while [ $# -gt 0 ]; do
	case $1 in
	--name) name=$2; shift 2 ;;
	--kmod-out) kout=$2; shift 2 ;;
	--root) kroot=$2; shift 2 ;;
	--kdir) kdir=$2; shift 2 ;;
	--kernel) kernel=$2; shift 2 ;;
	*) break ;;
	esac
done
if [ -z "$name" ] || [ -z "$kout" ]; then
	echo "usage: vm-kernel.sh --name SUITE --kmod-out DIR (--root KERNEL | [--kdir DIR] [--kernel IMAGE]) [RUN.SH ARGS...]" >&2
	exit 2
fi

# broken WHAT: this kernel counts as one failed test.
broken() {
	echo "!! $name: $1"
	echo "$name: 0 passed, 1 failed"
	[ -z "${ML_TALLY:-}" ] || echo "0 1" >>"$ML_TALLY"
	exit 1
}

start=$(date +%s)
if [ -n "$kroot" ]; then
	dir=$("$here/kernel-root.sh" "$kroot") || broken "no kernel root for '$kroot' (tools/vm/kernel-root.sh)"
	echo "$name: $(cat "$dir/kver") from $dir"
	"$here/build-kmod.sh" --root "$dir" "$kout" || broken "memlink.ko did not build against $(cat "$dir/kver")"
	kernel=$dir/vmlinuz
else
	"$here/build-kmod.sh" ${kdir:+--kdir "$kdir"} "$kout" || broken "memlink.ko did not build"
fi
ready=$(date +%s)
set +e
"$here/run.sh" --name "$name" --ko "$kout/memlink.ko" ${kernel:+--kernel "$kernel"} "$@"
rc=$?
set -e
echo "$name: $((ready - start)) s to the module, $(($(date +%s) - ready)) s in the VM"
exit $rc
