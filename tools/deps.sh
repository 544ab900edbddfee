#!/bin/sh
# Install the Debian packages a make target needs, only when missing.
#   deps.sh GROUP...     groups: build, vm (kernel module and VM tests),
#                        kernel (building the debug kernel of vm-check-debug),
#                        bench (the peers of memlink-bench peers)
# As root it runs apt-get; otherwise it prints the command to run and fails.
# shellcheck disable=SC2034  # the pkgs_GROUP lists are read through eval
set -e

# man-db: make test-install renders the man pages; dkms (vm): make test-dkms
# builds and installs the module through it; debootstrap (vm): the Debian
# roots of the other kernels of make vm-check (tools/vm/kernel-root.sh).
# libclang-rt-dev: clang's sanitizer and libFuzzer runtimes (check-fuzz),
# which clang only recommends.
# liburing-dev: the io_uring example and its test (examples/, evloop_test).
pkgs_build="gcc clang libclang-rt-dev make binutils libc6-dev libcmocka-dev pkg-config man-db
	liburing-dev"
pkgs_vm="qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static cpio
	linux-source-6.1 sparse xz-utils perl dkms debootstrap"
pkgs_darwin="npm"
pkgs_kernel="flex bison bc libelf-dev libssl-dev linux-source-6.1 xz-utils util-linux"
pkgs_win="gcc-mingw-w64-x86-64 wine64"
# memlink-bench peers (make bench): the optional peers, g++ for the Boost one,
# gnuplot for --plot.
pkgs_bench="g++ libboost-dev libzmq3-dev libiceoryx-binding-c-dev iceoryx gnuplot-nox"

missing=""
for group in "$@"; do
	eval "list=\$pkgs_$group"
	if [ -z "$list" ]; then
		echo "deps.sh: unknown group '$group'" >&2
		exit 2
	fi
	for p in $list; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "memlink needs these Debian packages:$missing" >&2
	echo "install them with:  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null
