#!/bin/sh
# Run one libFuzzer target for a while.
#   run.sh BINARY SEEDS OUT SECONDS
# The seeds (and the crash-* reproducers among them) are replayed first;
# new inputs go to OUT/corpus, crashing ones to OUT/artifacts. Exits
# non-zero on a crash, leak, hang or sanitizer report, printing the report;
# else prints libFuzzer's final statistics (execs per second among them).
bin=$1
seeds=$2
out=$3
secs=$4
mkdir -p "$out/corpus" "$out/artifacts"
log=$out/last.log
# -timeout: an input that runs 10 s is a hang; the channel targets sleep
# nowhere. The first corpus directory given is the one written to.
"$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$out/artifacts/" "$out/corpus" "$seeds" >"$log" 2>&1 &
pid=$!
wait $pid
rc=$?
# Objects of a crashed run (the targets name them after their pid).
rm -f /dev/shm/memlink.fz*-"$pid" # (older builds: the linux backend leaves nothing now)
if [ "$rc" -ne 0 ] || grep -q -e 'runtime error:' -e '^==[0-9]*==ERROR:' "$log"; then
	tail -n 80 "$log"
	echo "$bin: failed (exit $rc); full log: $log"
	exit 1
fi
grep -e '^INFO: seed corpus' -e '^Done ' -e '^stat::' "$log"
exit 0
