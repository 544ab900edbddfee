#!/bin/sh
# Show that `make vm-check-debug` can fail: boot the debug kernel with
# memlink.ko plus tests/vm/inject/memlink_inject.ko, which commits one bug
# of each kind at load, and pass only when tools/vm/run.sh fails and has
# reported every one of them.
#   debug-selftest.sh --kdir KERNEL_CACHE_DIR --ko MEMLINK.KO --tests PATH
#                     --out DIR [--append "KERNEL ARGS"] [--timeout S]
# KERNEL_CACHE_DIR is what tools/vm/debug-kernel.sh printed. Ends with
# "vm-debug-selftest: N passed, N failed" (one check per expected report)
# and appends "N M" to $ML_TALLY when set.
set -e
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
kdir=''
ko=''
tests=''
out=''
append=''
timeout=600
while [ $# -gt 0 ]; do
	case $1 in
	--kdir) kdir=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	*) echo "debug-selftest.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$kdir" ] || [ -z "$ko" ] || [ -z "$tests" ] || [ -z "$out" ]; then
	echo "usage: debug-selftest.sh --kdir DIR --ko MEMLINK.KO --tests PATH --out DIR" >&2
	exit 2
fi
suite=vm-debug-selftest
tally=${ML_TALLY:-}
unset ML_TALLY MAKEFLAGS MFLAGS MAKELEVEL

# memlink_inject.ko, out of the tree like memlink.ko: a farm of links.
mkdir -p "$out/inject"
obj=$(cd "$out/inject" && pwd)
ln -sfn "$src/tests/vm/inject/Kbuild" "$obj/Kbuild"
ln -sfn "$src/tests/vm/inject/memlink_inject.c" "$obj/memlink_inject.c"
if ! make -C "$kdir/build" M="$obj" modules >"$obj/build.log" 2>&1; then
	cat "$obj/build.log"
	echo "$suite: building memlink_inject.ko failed" >&2
	[ -z "$tally" ] || echo "0 1" >>"$tally"
	exit 1
fi

# The run itself must fail: its verdict is judged below, not passed on.
log=$out/run.log
set +e
"$here/run.sh" --name "$suite" --kernel "$kdir/bzImage" --ko "$ko" --tests "$tests" \
	--extra-ko "$obj/memlink_inject.ko" --mem 1024 --timeout "$timeout" \
	--append "$append" --out "$out/vm" >"$log" 2>&1
rc=$?
set -e
# The runner's verdict, without the test's own output (all of it is in $log).
grep -E -e "^(!! )?$suite: " -e '^   \| ' "$log" | head -n 60 | sed 's/^/   > /'
console=$out/vm/console.log

passed=0
failed=0
# expect WHAT FILE PATTERN: PATTERN (grep -E) must be in FILE.
expect() {
	if grep -q -E -e "$3" "$2"; then
		echo "$suite: ok: $1: $(grep -m 1 -E -e "$3" "$2")"
		passed=$((passed + 1))
	else
		echo "!! $suite: $1: no line matches '$3' in $2"
		failed=$((failed + 1))
	fi
}
if [ "$rc" -ne 0 ]; then
	echo "$suite: ok: the runner failed (exit $rc)"
	passed=$((passed + 1))
else
	echo "!! $suite: the runner passed a kernel with deliberate bugs"
	failed=$((failed + 1))
fi
# The VM got to the end: the failures are the reports, not a crash.
expect "the VM finished" "$console" '^MEMLINK-VM-RESULT: '
expect "KASAN" "$console" 'BUG: KASAN: slab-out-of-bounds in inject_oob'
expect "lockdep" "$console" 'WARNING: possible circular locking dependency detected'
expect "atomic sleep" "$console" 'BUG: sleeping function called from invalid context'
expect "... in the culprit" "$console" '^ inject_sleep\+0x[0-9a-f]+/0x[0-9a-f]+ \[memlink_inject\]'
expect "kmemleak" "$console" '^MEMLINK-VM-KMEMLEAK: failed before rmmod: [0-9]+ leak'
expect "kmemleak names the culprit" "$console" 'inject_leak\+0x[0-9a-f]+/0x[0-9a-f]+ \[memlink_inject\]'
expect "the runner reports the kernel log" "$log" "^!! $suite: the kernel log has [0-9]+ suspicious line"
expect "the runner reports the leak" "$log" "^!! $suite: kmemleak: MEMLINK-VM-KMEMLEAK: failed"
expect "kmemleak after rmmod" "$console" '^MEMLINK-VM-KMEMLEAK: failed after rmmod: [0-9]+ leak'
# memlink itself stays clean beside it: its test passed, and no report has
# a frame in memlink.ko.
expect "memlink's test still passed" "$log" "^$suite: +[a-z_]+: +[1-9][0-9]* passed, 0 failed"
if grep -q -F '[memlink]' "$console"; then
	echo "!! $suite: a report names memlink.ko itself: $(grep -m 1 -F '[memlink]' "$console")"
	failed=$((failed + 1))
else
	echo "$suite: ok: no report names memlink.ko"
	passed=$((passed + 1))
fi

echo "$suite: $passed passed, $failed failed"
[ -z "$tally" ] || echo "$passed $failed" >>"$tally"
[ "$failed" -eq 0 ]
