#!/bin/sh
# Run several make targets, go on past failures, and end with the total
# "check: N passed, N failed" over every suite. A target that fails without
# reporting a failed test (a build error, say) counts as one failure. The
# failed targets' "!!" lines (and the lines they quote) are repeated at the
# end, so that whoever reads only the tail of a long log sees why.
#   run-all.sh "make" target...
make_cmd=$1
shift
ML_TALLY=$(mktemp)
export ML_TALLY
out=$(mktemp)
digest=$(mktemp)
rcf=$(mktemp)
trap 'rm -f "$ML_TALLY" "$out" "$digest" "$rcf"' EXIT
broken=""
for t in "$@"; do
	before=$(awk '{f += $2} END {print f + 0}' "$ML_TALLY")
	{ $make_cmd "$t" 2>&1; echo $? >"$rcf"; } | tee "$out"
	rc=$(cat "$rcf")
	if [ "$rc" -ne 0 ]; then
		after=$(awk '{f += $2} END {print f + 0}' "$ML_TALLY")
		[ "$after" -gt "$before" ] || echo "0 1" >>"$ML_TALLY"
		broken="$broken $t"
		{
			echo "-- $t:"
			grep -E '^(!!|   \| )' "$out" | head -n 60
		} >>"$digest"
	fi
done
if [ -n "$broken" ]; then
	cat "$digest"
	echo "failed targets:$broken"
fi
awk '{p += $1; f += $2} END {printf "check: %d passed, %d failed\n", p, f}' "$ML_TALLY"
[ -z "$broken" ]
