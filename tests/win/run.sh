#!/bin/sh
# Run the Windows test programs under wine; end with "win: N passed, N failed".
#   run.sh WINE PREFIX PROGRAM...
# PREFIX is the WINEPREFIX to use (created on the first run, a few seconds).
# Each program prints its own "win: N passed, N failed"; one that exits
# non-zero without a failed test counts one failure. When $ML_TALLY names a
# file, "passed failed" is appended to it, as tests/run-suite.sh does.
wine=$1
prefix=$2
shift 2
WINEPREFIX=$prefix
WINEDEBUG=-all
# No desktop integration, no Mono or Gecko prompts in a fresh prefix.
WINEDLLOVERRIDES="mscoree,mshtml,winemenubuilder.exe="
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
unset MEMLINK_BACKEND

passed=0
failed=0
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$prefix/system.reg" ]; then
	mkdir -p "$prefix"
	echo "== win: creating the wine prefix $prefix"
	"$wine" cmd /c exit >/dev/null 2>&1
fi
for prog in "$@"; do
	echo "== win: $prog"
	"$wine" "$prog" >"$log" 2>&1
	rc=$?
	cat "$log"
	line=$(sed -n 's/^win: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
	p=${line% *}
	f=${line#* }
	if [ -z "$line" ]; then
		p=0 f=1
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	[ "$f" -eq 0 ] || echo "!! win: $prog failed (exit $rc)"
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "win: the programs took $(($(date +%s) - start)) s under wine"
echo "win: $passed passed, $failed failed"
[ -n "$ML_TALLY" ] && echo "$passed $failed" >>"$ML_TALLY"
[ "$failed" -eq 0 ]
