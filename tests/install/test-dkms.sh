#!/bin/sh
# make test-dkms (as root): the kernel module's ways in, against Debian's
# kernel headers (KVER, else tools/vm/kernel-version.sh), never uname -r.
# The host cannot load modules: this builds, installs and uninstalls only.
#  - dkms.conf names memlink at the Makefile's version; modprobe/memlink.conf
#    names every module parameter with its default (from kmod/*.c), all
#    commented out, and modprobe reads it;
#  - make modules_install INSTALL_MOD_PATH=<tmp>: memlink.ko alone, with the
#    right version, parameters and vermagic; then for real into
#    /lib/modules/<ver>/extra, found by modinfo -k <ver> after depmod, and
#    make modules_uninstall;
#  - make install-udev / uninstall-udev into a DESTDIR;
#  - make dkms-install / dkms-uninstall into a DESTDIR: the sources dkms
#    needs, then nothing;
#  - make dkms-install for real: /usr/src/memlink-<version>, dkms add, build
#    and install -k <ver>; the module in /lib/modules/<ver>/updates/dkms,
#    found by modinfo -k <ver>; make dkms-uninstall: dkms remove --all and
#    nothing left (also on failure, by the exit trap);
#  - then for each kernel of ML_DKMS_KERNELS (tools/vm/kernel-root.sh's
#    names: 6.12, sid, rt), in its Debian root, with its dkms and compiler:
#    the sources as make dkms-install DESTDIR= lays them out, dkms add and
#    build -k <its kernel>: the module's version and vermagic. The root is
#    seen through a throwaway overlay (in-root.sh --scratch): the cache
#    keeps nothing of it.
# Ends with "dkms: N passed, N failed" (and adds that to $ML_TALLY).
#   ML_MAKE: make; ML_O: the build directory; ML_VERSION: MAJOR.MINOR.PATCH
#   ML_DKMS_KERNELS: the roots' kernels (none: the host's alone)
# shellcheck disable=SC2086  # $make may carry words
# shellcheck disable=SC2317  # functions run through check and trap
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
make=${ML_MAKE:-make}
O=${ML_O:-build}
version=${ML_VERSION:?ML_VERSION: MAJOR.MINOR.PATCH of the Makefile}
passed=0
failed=0
tmp=$(mktemp -d)
log=$tmp/log
src=/usr/src/memlink-$version
real=0 # 1 once this test may have put memlink into dkms and /usr/src
# dkms makes itself a module signing key the first time: keep none of ours.
mok=/var/lib/dkms/mok
had_mok=0
if [ -e $mok.key ] || [ -e $mok.pub ]; then had_mok=1; fi

finish() {
	if [ "$real" = 1 ]; then
		if [ -e "$extra" ]; then rm -f "$extra" && depmod -a "$kver"; fi
		if [ "$had_extra" = 0 ]; then rmdir "${extra%/*}" 2>/dev/null; fi
		dkms remove "memlink/$version" --all >/dev/null 2>&1
		rm -rf "$src"
	fi
	if [ "$had_mok" = 0 ]; then rm -f $mok.key $mok.pub; fi
	rm -rf "$tmp"
}
trap finish EXIT
trap 'exit 1' INT TERM HUP

summary() {
	tally dkms
	exit
}

# check, tally
# shellcheck source=tests/install/check.sh
. "$here/check.sh"

bail() {
	echo "test-dkms: $*" >&2
	failed=$((failed + 1))
	summary
}

run_make() {
	$make --no-print-directory -s -C "$top" O="$O" KVER="$kver" "$@"
}

[ "$(id -u)" -eq 0 ] || bail "needs root (it installs into /usr/src and /lib/modules)"
command -v dkms >/dev/null || bail "no dkms (tools/deps.sh build vm installs it)"
kver=${KVER:-$("$top/tools/vm/kernel-version.sh")} || bail "no Debian kernel headers"
extra=/lib/modules/$kver/extra/memlink.ko
had_extra=0
if [ -d "${extra%/*}" ]; then had_extra=1; fi
# One at a time on this machine: dkms and /usr/src are shared.
exec 9>/tmp/memlink-test-dkms.lock
flock -w 600 9 || bail "another test-dkms holds /tmp/memlink-test-dkms.lock"
if [ -e "$src" ] || [ -n "$(dkms status memlink 2>/dev/null)" ]; then
	dkms status memlink
	bail "memlink is in dkms or $src already: make dkms-uninstall first"
fi
if [ -n "$(find "/lib/modules/$kver" -name 'memlink.ko*')" ]; then
	bail "a memlink.ko is in /lib/modules/$kver already: make modules_uninstall first"
fi

# name=value of every module parameter, the value from its C initializer.
params_from_source() {
	sed -n 's/^module_param_named(\([a-z_]*\), *\([a-z_]*\),.*/\1 \2/p' "$top"/kmod/*.c |
	while read -r name var; do
		expr=$(sed -n "s/^[a-z ]* $var = \\(.*\\);/\\1/p" "$top"/kmod/*.c |
			sed 's/\([0-9]\)[UL]*/\1/g')
		# shellcheck disable=SC2004  # an expression, not a number: dash needs $
		echo "$name=$(($expr))"
	done | sort
}

dkms_conf() {
	c=$top/dkms.conf
	grep -x 'PACKAGE_NAME="memlink"' "$c" &&
		grep -x "PACKAGE_VERSION=\"$version\"" "$c" &&
		grep -x 'BUILT_MODULE_NAME\[0\]="memlink"' "$c" &&
		grep -x 'DEST_MODULE_LOCATION\[0\]="/updates/dkms"' "$c" &&
		grep -x 'AUTOINSTALL="yes"' "$c" &&
		grep "^MAKE\[0\]=.*-C \${kernel_source_dir} " "$c"
}

modprobe_conf() {
	params_from_source >"$tmp/want"
	sed -n 's/^#options memlink \([a-z_]*=[0-9]*\)$/\1/p' "$top/modprobe/memlink.conf" |
		sort >"$tmp/have"
	diff -u "$tmp/want" "$tmp/have" || return 1
	# As installed: modprobe sees no option; uncommented, every one.
	mkdir -p "$tmp/mp"
	cp "$top/modprobe/memlink.conf" "$tmp/mp/"
	modprobe -S "$kver" -C "$tmp/mp" --showconfig >"$tmp/conf" || return 1
	! grep '^options memlink' "$tmp/conf" || return 1
	sed 's/^#options/options/' "$top/modprobe/memlink.conf" >"$tmp/mp/memlink.conf"
	modprobe -S "$kver" -C "$tmp/mp" --showconfig >"$tmp/conf" || return 1
	while read -r p; do
		grep "^options memlink .*$p" "$tmp/conf" || return 1
	done <"$tmp/want"
}

# modinfo of a module: this version, every parameter, this kernel.
module_ok() {
	modinfo "$1" || return 1
	[ "$(modinfo -F version "$1")" = "$version" ] ||
		{ echo "version: '$(modinfo -F version "$1")', not $version"; return 1; }
	modinfo -F vermagic "$1" | grep -q "^$kver " || return 1
	params_from_source | sed 's/=.*//' >"$tmp/pwant"
	modinfo -F parm "$1" | sed 's/:.*//' | sort >"$tmp/phave"
	diff -u "$tmp/pwant" "$tmp/phave"
}

files_under() {
	(cd "$1" && find . ! -type d | sed 's/^\.//' | sort)
}

modules_install() {
	run_make INSTALL_MOD_PATH="$tmp/mods" modules_install || return 1
	files_under "$tmp/mods" >"$tmp/found"
	echo "/lib/modules/$kver/extra/memlink.ko" >"$tmp/expected"
	diff -u "$tmp/expected" "$tmp/found"
}

modules_install_real() {
	run_make modules_install || return 1
	[ "$(modinfo -k "$kver" -F filename memlink)" = "$extra" ] || return 1
	module_ok "$extra"
}

modules_uninstall_real() {
	run_make modules_uninstall || return 1
	[ ! -e "$extra" ] && ! modinfo -k "$kver" memlink || return 1
	[ "$had_extra" = 1 ] || [ ! -e "${extra%/*}" ]
}

udev() {
	d=$tmp/udev
	run_make DESTDIR="$d" install-udev || return 1
	files_under "$d" >"$tmp/found"
	printf '%s\n' /etc/modprobe.d/memlink.conf /etc/udev/rules.d/60-memlink.rules >"$tmp/expected"
	diff -u "$tmp/expected" "$tmp/found" || return 1
	grep -x 'KERNEL=="memlink", SUBSYSTEM=="misc", GROUP="memlink", MODE="0660"' \
		"$d/etc/udev/rules.d/60-memlink.rules" || return 1
	run_make DESTDIR="$d" uninstall-udev || return 1
	[ -z "$(files_under "$d")" ] || return 1
	# An admin's edit survives a reinstall (ours goes beside it) and an
	# uninstall.
	run_make DESTDIR="$d" install-udev || return 1
	echo "options memlink max_regions=9" >>"$d/etc/modprobe.d/memlink.conf"
	run_make DESTDIR="$d" install-udev || return 1
	grep -qx "options memlink max_regions=9" "$d/etc/modprobe.d/memlink.conf" || return 1
	cmp -s "$top/modprobe/memlink.conf" "$d/etc/modprobe.d/memlink.conf.memlink-new" || return 1
	run_make DESTDIR="$d" uninstall-udev || return 1
	files_under "$d" >"$tmp/found"
	echo /etc/modprobe.d/memlink.conf | diff -u - "$tmp/found"
}

dkms_staged() {
	d=$tmp/dkms
	run_make DESTDIR="$d" dkms-install || return 1
	files_under "$d" >"$tmp/found"
	{
		for f in dkms.conf Kbuild include/uapi/linux/memlink.h "$top"/kmod/*.[ch]; do
			echo "$src/${f#"$top"/}"
		done
	} | sort >"$tmp/expected"
	diff -u "$tmp/expected" "$tmp/found" || return 1
	run_make DESTDIR="$d" dkms-uninstall || return 1
	[ -z "$(cd "$d" && find . -mindepth 1 -path "./usr/src/*")" ]
}

dkms_installed() {
	dkms status "memlink/$version" -k "$kver" | tee "$tmp/status"
	grep -q ": installed" "$tmp/status" || return 1
	ko=$(modinfo -k "$kver" -F filename memlink) || return 1
	echo "modinfo -k $kver: $ko"
	case $ko in "/lib/modules/$kver/updates/dkms/memlink.ko"*) ;; *) return 1 ;; esac
	module_ok "$ko"
}

dkms_gone() {
	! dkms status memlink | grep . || return 1
	for p in "$src" /var/lib/dkms/memlink; do
		if [ -e "$p" ]; then echo "left: $p"; return 1; fi
	done
	find "/lib/modules/$kver" -name 'memlink.ko*' | grep . && return 1
	! modinfo -k "$kver" memlink
}

check "dkms.conf: memlink $version, built with Kbuild against \${kernel_source_dir}" dkms_conf
check "modprobe/memlink.conf: every parameter and default, commented out" modprobe_conf
check "make modules_install INSTALL_MOD_PATH=: memlink.ko for $kver alone" modules_install
check "the module: version $version, parameters, vermagic $kver" \
	module_ok "$tmp/mods/lib/modules/$kver/extra/memlink.ko"
check "make install-udev, uninstall-udev (DESTDIR), an edited file kept" udev
check "make dkms-install, dkms-uninstall (DESTDIR): the sources dkms needs" dkms_staged
real=1
check "make modules_install: $extra, depmod, modinfo -k $kver" modules_install_real
check "make modules_uninstall: gone, depmod" modules_uninstall_real
check "make dkms-install: dkms add, build, install -k $kver" run_make dkms-install
check "dkms: installed in /lib/modules/$kver/updates/dkms, right version" dkms_installed
check "make dkms-uninstall: dkms remove --all" run_make dkms-uninstall
check "nothing left in dkms, /usr/src or /lib/modules/$kver" dkms_gone

# dkms_in_root DIR: in the root of DIR (kernel-root.sh's), the staged
# sources bound at /usr/src/memlink-<version>, dkms add and build for its
# kernel; the built module's version and vermagic, read by its modinfo.
dkms_in_root() {
	rkver=$(cat "$1/kver") || return 1
	"$top/tools/vm/in-root.sh" --scratch --bind "$tmp/stage$src:$src" "$1/root" sh -c "
		set -e
		dkms add memlink/$version
		dkms build memlink/$version -k $rkver
		dkms status memlink/$version -k $rkver | tee /tmp/status
		grep -q ': built' /tmp/status
		ko=\$(find /var/lib/dkms/memlink/$version -name 'memlink.ko*' | head -n 1)
		echo \"built: \$ko\"
		modinfo \"\$ko\"
		[ \"\$(modinfo -F version \"\$ko\")\" = $version ]
		modinfo -F vermagic \"\$ko\" | grep -q '^$rkver '"
}

if [ -n "${ML_DKMS_KERNELS:-}" ]; then
	check "make dkms-install DESTDIR=: the sources for the roots' dkms" \
		run_make DESTDIR="$tmp/stage" dkms-install
fi
for k in ${ML_DKMS_KERNELS:-}; do
	if ! kdir=$("$top/tools/vm/kernel-root.sh" "$k" 2>"$log"); then
		failed=$((failed + 1))
		echo "FAIL dkms build in the $k root: no root (tools/vm/kernel-root.sh $k)"
		sed 's/^/     /' "$log"
		continue
	fi
	check "dkms add, build in the $k root: $(cat "$kdir/kver"), version $version, vermagic" \
		dkms_in_root "$kdir"
done
summary
