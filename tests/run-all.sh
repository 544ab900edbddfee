#!/bin/sh
# Run several make targets, go on past failures, and end with a table of
# every target (its time, the summary line of each suite it ran) and the
# total "check: N passed, N failed" over every suite. A target that fails
# without reporting a failed test (a build error, say) counts as one
# failure. The failed targets' "!!" lines (and the lines they quote) are
# repeated at the end, so that whoever reads only the tail of a long log
# sees why.
#   run-all.sh "make" target...
make_cmd=$1
shift
ML_TALLY=$(mktemp)
export ML_TALLY
out=$(mktemp)
digest=$(mktemp)
table=$(mktemp)
rcf=$(mktemp)
trap 'rm -f "$ML_TALLY" "$out" "$digest" "$table" "$rcf"' EXIT
broken=""
for t in "$@"; do
	before=$(awk '{f += $2} END {print f + 0}' "$ML_TALLY")
	start=$(date +%s)
	{ $make_cmd "$t" 2>&1; echo $? >"$rcf"; } | tee "$out"
	rc=$(cat "$rcf")
	# Each suite's last summary line (win's total, not each program's).
	awk -v t="$t" -v secs=$(($(date +%s) - start)) -v rc="$rc" '
		/^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed/ {
			if (!($1 in last)) order[++n] = $1
			last[$1] = $0
		}
		function row(s) { printf "  %-24s %5s  %s\n", t, secs, s; t = ""; secs = "" }
		END {
			for (i = 1; i <= n; i++) row(last[order[i]])
			if (rc != 0) row("FAILED (exit " rc ")")
			else if (n == 0) row("ok")
		}' "$out" >>"$table"
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
printf '== each target: seconds, its suites\n'
cat "$table"
if [ -n "$broken" ]; then
	cat "$digest"
	echo "failed targets:$broken"
fi
awk '{p += $1; f += $2} END {printf "check: %d passed, %d failed\n", p, f}' "$ML_TALLY"
[ -z "$broken" ]
