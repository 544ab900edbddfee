# Sourced by the install tests: counting checks, and their summary line.
# The caller sets passed=0 failed=0 and $log (a scratch file).
# shellcheck shell=sh disable=SC2154  # $log, $passed, $failed: the caller's

# check WHAT CMD ARGS...: one test; its output is shown when it fails.
check() {
	what=$1
	shift
	if "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "ok   $what"
	else
		failed=$((failed + 1))
		echo "FAIL $what"
		sed 's/^/     /' "$log"
	fi
}

# tally SUITE: "SUITE: N passed, N failed", added to $ML_TALLY; true if none failed.
tally() {
	echo "$1: $passed passed, $failed failed"
	[ -n "${ML_TALLY:-}" ] && echo "$passed $failed" >>"$ML_TALLY"
	[ "$failed" -eq 0 ]
}
