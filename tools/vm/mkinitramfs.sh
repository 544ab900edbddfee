#!/bin/sh
# Pack the test VM's initramfs: busybox-static, memlink.ko, the test
# programs (each --tests names a program or a directory of them; they run in
# name order), more modules for init.sh to load after memlink.ko (/extra)
# and init.sh as /init; --bin programs go to /bin, for the tests to run.
#   mkinitramfs.sh --ko MEMLINK.KO --tests PATH [--tests PATH...]
#                  [--extra-ko MODULE.KO...] [--bin PROGRAM...] --out INITRD.GZ
set -e
here=$(cd "$(dirname "$0")" && pwd)
ko=''
tests=''
out=''
extra=''
bins=''
busybox=${BUSYBOX:-/bin/busybox}
while [ $# -gt 0 ]; do
	case $1 in
	--ko) ko=$2; shift 2 ;;
	--tests) tests="$tests $2"; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--extra-ko) extra="$extra $2"; shift 2 ;;
	--bin) bins="$bins $2"; shift 2 ;;
	*) echo "mkinitramfs.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$ko" ] || [ -z "$tests" ] || [ -z "$out" ]; then
	echo "usage: mkinitramfs.sh --ko MEMLINK.KO --tests PATH... --out INITRD.GZ" >&2
	exit 2
fi
[ -f "$ko" ] || { echo "mkinitramfs.sh: no module $ko" >&2; exit 1; }
# A dynamically linked busybox would not run in the VM.
if [ ! -f "$busybox" ] || readelf -l "$busybox" 2>/dev/null | grep -q INTERP; then
	echo "mkinitramfs.sh: $busybox is not a static busybox (package busybox-static)" >&2
	exit 1
fi

root=${out%.gz}.d
rm -rf "$root"
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" \
	"$root/etc" "$root/tests" "$root/extra"
cp "$busybox" "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"
cp "$ko" "$root/memlink.ko"
for m in $extra; do  # paths without blanks
	cp "$m" "$root/extra/" || exit 1
done
for b in $bins; do  # paths without blanks
	cp "$b" "$root/bin/" || exit 1
done
n=0
for p in $tests; do  # paths without blanks
	[ -e "$p" ] || { echo "mkinitramfs.sh: no such test $p" >&2; exit 1; }
	if [ -d "$p" ]; then set -- "$p"/*; else set -- "$p"; fi
	for t in "$@"; do
		if [ -f "$t" ] && [ -x "$t" ]; then
			cp "$t" "$root/tests/"
			# Settings for the test, sourced by init.sh before it runs.
			[ ! -f "$t.env" ] || cp "$t.env" "$root/tests/"
			n=$((n + 1))
		fi
	done
done
[ "$n" -gt 0 ] || { echo "mkinitramfs.sh: no test programs in$tests" >&2; exit 1; }
# An unprivileged user for tests that drop root with setuid(1000).
printf 'root:x:0:0:root:/tmp:/bin/sh\nnobody2:x:1000:1000:nobody2:/tmp:/bin/sh\n' \
	>"$root/etc/passwd"
printf 'root:x:0:\nnobody2:x:1000:\n' >"$root/etc/group"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$out"
