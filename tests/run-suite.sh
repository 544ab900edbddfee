#!/bin/sh
# Run one test suite and end with "<suite>: N passed, N failed".
#   run-suite.sh SUITE "cmd args" ["cmd args" ...]
# A cmocka program counts its test cases (from its summary lines), so does a
# kselftest one ("# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N";
# its skipped cases are added as ", N skipped" when there are any); any
# other program counts as one test that passes when it exits 0. A program
# that crashes after its summary, or exits non-zero without one, is a
# failure. When $ML_TALLY names a file, "passed failed" is appended to it.
suite=$1
shift
passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for cmd in "$@"; do
	echo "== $suite: $cmd"
	# shellcheck disable=SC2086  # cmd is "program args", split on purpose
	$cmd >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	k=$(sed -n 's/^# Totals: pass:\([0-9]*\) fail:\([0-9]*\) xfail:\([0-9]*\) xpass:\([0-9]*\) skip:\([0-9]*\) error:\([0-9]*\)$/\1 \2 \3 \4 \5 \6/p' \
		"$log" | tail -n 1)
	s=0
	if [ -n "$k" ]; then
		p=$(echo "$k" | awk '{ print $1 + $3 }')
		f=$(echo "$k" | awk '{ print $2 + $4 + $6 }')
		s=$(echo "$k" | awk '{ print $5 }')
	fi
	if [ -n "$p" ] || [ -n "$f" ]; then
		p=${p:-0}
		f=${f:-0}
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
		fi
	elif [ "$rc" -eq 0 ]; then
		p=1 f=0
	else
		p=0 f=1
	fi
	[ "$f" -eq 0 ] || echo "!! $suite: $cmd failed (exit $rc)"
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
done
if [ "$skipped" -gt 0 ]; then
	echo "$suite: $passed passed, $failed failed, $skipped skipped"
else
	echo "$suite: $passed passed, $failed failed"
fi
[ -n "$ML_TALLY" ] && echo "$passed $failed" >>"$ML_TALLY"
[ "$failed" -eq 0 ]
