#!/bin/sh
# Run several make targets, go on past failures, and end with the total
# "check: N passed, N failed" over every suite. A target that fails without
# reporting a failed test (a build error, say) counts as one failure.
#   run-all.sh "make" target...
make_cmd=$1
shift
ML_TALLY=$(mktemp)
export ML_TALLY
trap 'rm -f "$ML_TALLY"' EXIT
broken=""
for t in "$@"; do
	before=$(awk '{f += $2} END {print f + 0}' "$ML_TALLY")
	if ! $make_cmd "$t"; then
		after=$(awk '{f += $2} END {print f + 0}' "$ML_TALLY")
		[ "$after" -gt "$before" ] || echo "0 1" >>"$ML_TALLY"
		broken="$broken $t"
	fi
done
[ -z "$broken" ] || echo "failed targets:$broken"
awk '{p += $1; f += $2} END {printf "check: %d passed, %d failed\n", p, f}' "$ML_TALLY"
[ -z "$broken" ]
