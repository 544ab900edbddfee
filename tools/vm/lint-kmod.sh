#!/bin/sh
# checkpatch.pl --strict over the module's sources and its uapi header; fails
# on any ERROR or WARNING (CHECK lines are shown but do not fail).
#   lint-kmod.sh CHECKPATCH.PL FILE...
# kmod/compat.h is where the kernel version is tested, on purpose (the one
# place that may): checkpatch's LINUX_VERSION_CODE warning, and the
# constant-on-the-left warning it raises on the same lines, are off there.
set -e
checkpatch=$1
shift
[ $# -gt 0 ] || { echo "lint-kmod.sh: no files to check" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# checkpatch exits 1 on a mere CHECK under --strict: judge its output instead.
for f in "$@"; do
	case $f in
	*/compat.h) ignore="--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON" ;;
	*) ignore= ;;
	esac
	# shellcheck disable=SC2086  # $ignore: two words or none
	perl "$checkpatch" --no-tree --strict --show-types $ignore -f "$f" >>"$log" 2>&1 || true
done
# One "total:" line per file, or checkpatch itself failed.
if [ "$(grep -c '^total: ' "$log")" -ne $# ]; then
	echo "kmod-lint: checkpatch.pl did not check every file" >&2
	exit 1
fi
bad=$(grep -c -E '^(ERROR|WARNING):' "$log" || true)
checks=$(grep -c -E '^CHECK:' "$log" || true)
if [ "$bad" -ne 0 ] || [ "$checks" -ne 0 ]; then cat "$log"; fi
echo "kmod-lint: $# files, $bad errors/warnings, $checks checks"
[ "$bad" -eq 0 ]
