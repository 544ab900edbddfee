#!/bin/sh
# Extract the few files memlink needs from Debian's kernel source tarball
# (package linux-source-6.1), once: the kselftest harness headers and
# checkpatch.pl with its data files. Reading the tarball takes ~15 s.
#   extract-linux-src.sh TARBALL OUTDIR
# OUTDIR gets tools/testing/selftests/kselftest*.h and scripts/..., and a
# .stamp file when complete.
set -e
tar=$1
out=$2
if [ -z "$tar" ] || [ -z "$out" ]; then
	echo "usage: extract-linux-src.sh TARBALL OUTDIR" >&2
	exit 2
fi
[ -r "$tar" ] || { echo "extract-linux-src.sh: $tar missing (tools/deps.sh vm installs linux-source-6.1)" >&2; exit 1; }
[ -e "$out/.stamp" ] && exit 0
top=$(basename "$tar" .tar.xz)   # linux-source-6.1
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
echo "  TAR    $tar (kselftest headers, checkpatch)"
tar -xJf "$tar" -C "$out.tmp" --strip-components=1 \
	"$top/tools/testing/selftests/kselftest.h" \
	"$top/tools/testing/selftests/kselftest_harness.h" \
	"$top/scripts/checkpatch.pl" \
	"$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"
touch "$out.tmp/.stamp"
rm -rf "$out"
mv "$out.tmp" "$out"
