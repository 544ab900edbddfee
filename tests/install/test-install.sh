#!/bin/sh
# make test-install: `make install` into a temporary DESTDIR, twice (the
# default PREFIX, then PREFIX=/opt/memlink with every directory moved), and
# for each: the exact list of files installed, the library's links and
# soname, memlink.pc, a program built with nothing but
# `pkg-config --cflags --libs memlink` (shared, and fully static with
# --static) that runs a ring and a channel round trip, <linux/memlink.h>,
# the tools, every man page rendered without a warning and `man CALL` for
# every exported call; then `make uninstall` and nothing left.
# Ends with "install: N passed, N failed" (and adds that to $ML_TALLY).
#   ML_MAKE: make (the calling make's $(MAKE)); ML_O: its O (build);
#   ML_VERSION: its MAJOR.MINOR.PATCH; CC: the compiler (cc)
# shellcheck disable=SC2086,SC2046  # $make, $CC, pkg-config: split on purpose
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
make=${ML_MAKE:-make}
O=${ML_O:-build}
CC=${CC:-cc}
version=${ML_VERSION:?ML_VERSION: MAJOR.MINOR.PATCH of the Makefile}
major=${version%%.*}
unset MEMLINK_BACKEND
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
calls=$(sed -n 's/^[[:space:]]*\(ml_[a-z0-9_]*\);.*/\1/p' "$top/lib/libmemlink.map")

# check, tally
# shellcheck source=tests/install/check.sh
. "$here/check.sh"

# Quiet: the empty output is the test.
silent() {
	"$@" >"$tmp/out" 2>&1
	rc=$?
	cat "$tmp/out"
	[ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ]
}

run_make() {
	$make --no-print-directory -s -C "$top" O="$O" "$@"
}

expected_files() {
	for f in libmemlink.so.$version libmemlink.so.$major libmemlink.so libmemlink.a \
		pkgconfig/memlink.pc; do
		echo "$libdir/$f"
	done
	echo "$incdir/memlink.h"
	echo "$incdir/memlink/uapi/linux/memlink.h"
	for t in memlink-bench memlink-ping memlink-stat; do
		echo "$bindir/$t"
	done
	for p in "$top"/man/*.[137]; do
		n=${p##*/}
		echo "$mandir/man${n##*.}/$n"
	done
	for f in $calls; do
		[ -e "$top/man/$f.3" ] || echo "$mandir/man3/$f.3"
	done
}

# Files and links under the DESTDIR, and memlink's include directory.
what_is_there() {
	(cd "$dest" && find . ! -type d) | sed 's/^\.//' | sort
	if [ -e "$dest$incdir/memlink" ]; then echo "$incdir/memlink/"; fi
}

installed_files() {
	expected_files | sort >"$tmp/expected"
	what_is_there | grep -vx "$incdir/memlink/" >"$tmp/found"
	diff -u "$tmp/expected" "$tmp/found"
}

links() {
	l=$dest$libdir
	ls -l "$l"
	[ "$(readlink "$l/libmemlink.so")" = "libmemlink.so.$major" ] &&
		[ "$(readlink "$l/libmemlink.so.$major")" = "libmemlink.so.$version" ] &&
		[ -f "$l/libmemlink.so.$version" ] && [ ! -L "$l/libmemlink.so.$version" ] &&
		readelf -d "$l/libmemlink.so.$version" | grep "SONAME.*\[libmemlink\.so\.$major\]"
}

pc_file() {
	pc=$dest$libdir/pkgconfig/memlink.pc
	cat "$pc"
	grep -qx "prefix=$prefix" "$pc" && ! grep -q @ "$pc" &&
		[ "$(pkg-config --modversion memlink)" = "$version" ] &&
		pkg-config --validate memlink &&
		[ "$(pkg-config --variable=prefix memlink)" = "$dest$prefix" ] &&
		pkg-config --static --libs memlink | grep -- "-pthread"
}

build_shared() {
	$CC -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -o "$tmp/prog" \
		"$here/prog.c" $(pkg-config --cflags --libs memlink) &&
		readelf -d "$tmp/prog" | grep "NEEDED.*\[libmemlink\.so\.$major\]"
}

run_shared() {
	LD_LIBRARY_PATH=$dest$libdir ldd "$tmp/prog" &&
		LD_LIBRARY_PATH=$dest$libdir ldd "$tmp/prog" |
		grep -q "libmemlink\.so\.$major => $dest$libdir/libmemlink\.so\.$major " &&
		LD_LIBRARY_PATH=$dest$libdir "$tmp/prog" "$version"
}

build_static() {
	$CC -static -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
		-o "$tmp/prog-static" "$here/prog.c" \
		$(pkg-config --static --cflags --libs memlink) &&
		! readelf -d "$tmp/prog-static" | grep NEEDED
}

uapi() {
	$CC -std=c11 -Wall -Wextra -Werror -M "$here/uapi.c" \
		$(pkg-config --cflags memlink) >"$tmp/deps" &&
		grep -q "$dest$incdir/memlink/uapi/linux/memlink.h" "$tmp/deps" &&
		$CC -std=c11 -Wall -Wextra -Werror -o "$tmp/uapi" "$here/uapi.c" \
			$(pkg-config --cflags --libs memlink) && "$tmp/uapi"
}

tools() {
	b=$dest$bindir
	"$b/memlink-stat" --help | grep "usage: memlink-stat" &&
		"$b/memlink-ping" client --help | grep "usage: memlink-ping" &&
		"$b/memlink-bench" --version | grep "memlink $version"
}

# Each page: no groff or man warning, a NAME line lexgrog (mandb) can read.
man_pages() {
	for p in "$dest$mandir"/man?/*; do
		head -n 1 "$p" | grep -q '^\.so ' && continue
		echo "== $p"
		silent groff -man -ww -z "$p" || return 1
		if ! MANWIDTH=80 man --warnings -l "$p" 2>"$tmp/err" >/dev/null ||
			[ -s "$tmp/err" ]; then
			cat "$tmp/err"
			return 1
		fi
		lexgrog "$p" || return 1
		grep -q "memlink $version" "$p" || { echo "no version in .TH"; return 1; }
	done
}

# `man NAME` for every call and tool: found in the DESTDIR, rendered without
# a warning, and the text names it.
man_lookup() {
	for f in $calls memlink-bench memlink-ping memlink-stat memlink; do
		w=$(MANPATH=$dest$mandir man -w "$f") || return 1
		case $w in "$dest$mandir"/*) ;; *) echo "$f: found $w"; return 1 ;; esac
		MANPATH=$dest$mandir MANWIDTH=80 MANPAGER=cat man --warnings "$f" \
			2>"$tmp/err" >"$tmp/page" || return 1
		[ ! -s "$tmp/err" ] || { cat "$tmp/err"; return 1; }
		grep -q "$f" "$tmp/page" || { echo "$f: not named in its page"; return 1; }
	done
}

nothing_left() {
	what_is_there | tee "$tmp/left"
	[ ! -s "$tmp/left" ]
}

# one LABEL PREFIX LIBDIR INCLUDEDIR BINDIR MANDIR [make variables...]
one() {
	label=$1 prefix=$2 libdir=$3 incdir=$4 bindir=$5 mandir=$6
	shift 6
	dest=$tmp/$label
	mkdir -p "$dest"
	PKG_CONFIG_PATH=$dest$libdir/pkgconfig
	PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH
	PKG_CONFIG_SYSROOT_DIR=$dest
	export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
	check "$label: make install" run_make DESTDIR="$dest" "$@" install
	check "$label: make install again, over it" run_make DESTDIR="$dest" "$@" install
	check "$label: exactly the expected files" installed_files
	check "$label: libmemlink.so.$version, soname and dev links" links
	check "$label: memlink.pc" pc_file
	check "$label: build with pkg-config --cflags --libs" build_shared
	check "$label: run it: ring and channel round trip" run_shared
	check "$label: static build with pkg-config --static" build_static
	check "$label: run the static build" "$tmp/prog-static" "$version"
	check "$label: <linux/memlink.h> through pkg-config" uapi
	check "$label: the tools run" tools
	check "$label: man pages render without warnings" man_pages
	check "$label: man CALL for every exported call, the tools and memlink(7)" man_lookup
	check "$label: make uninstall" run_make DESTDIR="$dest" "$@" uninstall
	check "$label: nothing left" nothing_left
	unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
	rm -f "$tmp/prog" "$tmp/prog-static" "$tmp/uapi"
}

one default /usr/local /usr/local/lib /usr/local/include /usr/local/bin /usr/local/share/man
one opt /opt/memlink /opt/memlink/lib64 /opt/memlink/inc /opt/memlink/sbin /opt/memlink/man \
	PREFIX=/opt/memlink LIBDIR=/opt/memlink/lib64 INCLUDEDIR=/opt/memlink/inc \
	BINDIR=/opt/memlink/sbin MANDIR=/opt/memlink/man

tally install
