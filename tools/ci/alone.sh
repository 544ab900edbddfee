#!/bin/bash
# Prove that make targets work alone on a fresh Debian 12 machine, each by
# installing what it uses: every TARGET in a fresh root of its own
# (tools/ci/root.sh: minbase, `apt-get install git make`, a clone of HEAD,
# so commit first), `make TARGET` there and nothing before it.
#   alone.sh [--tar FILE] [--jobs N] TARGET...
# A TARGET may carry make variables: "check-fuzz FUZZ_CHECK_SECONDS=5".
# One debootstrap serves the whole run: its pristine root is tarred once
# and every target's root unpacked from that (--tar FILE: from FILE, made
# by root.sh --save-tar). N roots at a time (1). Each target's output goes
# to DIR/TARGET.log, DIR a new directory under MEMLINK_CI_WORK (/var/tmp);
# a failed target's last lines are shown. Ends with one line per target
# and "alone: N passed, N failed"; exits non-zero if any failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tar=
jobs=1
while [ $# -gt 0 ]; do
	case $1 in
	--tar) tar=$(realpath -e "$2") || exit 2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
	-*) echo "alone.sh: unknown option $1 (see the head of $0)" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "usage: alone.sh [--tar FILE] [--jobs N] TARGET..." >&2; exit 2; }
dir=$(mktemp -d "${MEMLINK_CI_WORK:-/var/tmp}/memlink-alone.XXXXXX") || exit 1
echo "alone: logs in $dir"
if [ -z "$tar" ]; then
	tar=$dir/pristine.tar
	trap 'rm -f "$dir/pristine.tar"' EXIT   # the logs stay
	"$here/root.sh" --save-tar "$tar" >"$dir/bootstrap.log" 2>&1 ||
		{ tail -n 30 "$dir/bootstrap.log"; echo "alone: bootstrap failed"; exit 1; }
fi

# one TARGET: its fresh root, its log, its verdict in DIR/NAME.result.
one() {
	local name=${1// /_} start=$SECONDS rc
	"$here/root.sh" --tar "$tar" -- "make $1" >"$dir/$name.log" 2>&1
	rc=$?
	printf '%-40s %s (%d s)\n' "$1" "$([ "$rc" -eq 0 ] && echo ok || echo "FAILED, exit $rc")" \
		$((SECONDS - start)) >"$dir/$name.result"
	cat "$dir/$name.result"
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$dir/$name.log" | sed 's/^/   | /'
	fi
	return "$rc"
}

for t in "$@"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	one "$t" &
done
wait

passed=0
failed=0
echo "== alone: each target in its own fresh root"
for t in "$@"; do
	r=$dir/${t// /_}.result
	if [ -f "$r" ] && grep -q ' ok (' "$r"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	cat "$r" 2>/dev/null || echo "$t: no result"
done
echo "alone: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
