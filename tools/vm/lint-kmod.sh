#!/bin/sh
# checkpatch.pl --strict over the module's sources and its uapi header; fails
# on any ERROR or WARNING (CHECK lines are shown but do not fail).
#   lint-kmod.sh CHECKPATCH.PL FILE...
set -e
checkpatch=$1
shift
[ $# -gt 0 ] || { echo "lint-kmod.sh: no files to check" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# checkpatch exits 1 on a mere CHECK under --strict: judge its output instead.
perl "$checkpatch" --no-tree --strict --show-types -f "$@" >"$log" 2>&1 || true
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
