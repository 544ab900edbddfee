#!/bin/sh
# Print the Debian kernel version that memlink.ko is built and booted with:
# the newest /lib/modules/<ver> that has a build/ dir (linux-headers) and a
# matching /boot/vmlinuz-<ver> (linux-image). Never `uname -r`: the host
# may run another kernel (or a container's). $KVER, when set, is checked
# and printed instead.
set -e

usable() {
	[ -e "/lib/modules/$1/build/Makefile" ] && [ -r "/boot/vmlinuz-$1" ]
}

if [ -n "$KVER" ]; then
	if ! usable "$KVER"; then
		echo "kernel-version.sh: KVER=$KVER lacks /lib/modules/$KVER/build or /boot/vmlinuz-$KVER" >&2
		exit 1
	fi
	echo "$KVER"
	exit 0
fi

ver=$(for d in /lib/modules/*-amd64; do
	v=${d##*/}
	if usable "$v"; then echo "$v"; fi
done | sort -V | tail -n 1)
if [ -z "$ver" ]; then
	echo "kernel-version.sh: no Debian -amd64 kernel with headers in /lib/modules" \
		"(tools/deps.sh vm installs linux-image-amd64 linux-headers-amd64)" >&2
	exit 1
fi
echo "$ver"
