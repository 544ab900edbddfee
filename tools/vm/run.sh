#!/bin/sh
# Boot a kernel in QEMU (TCG, no KVM) with memlink.ko and the kselftest
# programs in an initramfs (init.sh), and judge the console log.
#   run.sh [--kernel IMAGE] [--ko MEMLINK.KO] [--tests PATH]... [--out DIR]
#          [--timeout SECONDS] [--append "KERNEL ARGS"] [--mem MB]
#          [--extra-ko MODULE.KO]... [--bin PROGRAM]... [--name SUITE]
# Each --tests names a static test program or a directory of them; each
# --extra-ko a module that init.sh loads after memlink.ko; each --bin a
# static program the tests may run, from /bin.
# Defaults: the Debian kernel of kernel-version.sh, build/kmod/memlink.ko,
# build/tests/kmod, build/vm, $VM_TIMEOUT or 600 s, 512 MB, suite "vm".
# Any kernel works (a KASAN/lockdep build, say) with a module built against
# it; "memlink_vm.kmemleak=1" in --append makes init.sh check for leaks.
# Fails when a test fails, insmod or rmmod fails, the VM does not reach the
# final marker (crash, hang, timeout) or the kernel log shows a BUG, WARNING,
# oops, lockdep, KASAN/UBSAN report, kmemleak report in memlink or panic.
# Ends with "SUITE: N passed, N failed" and appends "N M" to $ML_TALLY when
# set.
set -e
here=$(cd "$(dirname "$0")" && pwd)
kernel=''
append=''
ko=build/kmod/memlink.ko
tests=
out=build/vm
timeout=${VM_TIMEOUT:-600}
mem=512
name=vm
extra=
bins=
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	--tests) tests="$tests --tests $2"; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--extra-ko) extra="$extra --extra-ko $2"; shift 2 ;;
	--bin) bins="$bins --bin $2"; shift 2 ;;
	*) echo "run.sh: unknown argument $1 (see the head of $0)" >&2; exit 2 ;;
	esac
done
[ -n "$tests" ] || tests="--tests build/tests/kmod"
[ -n "$kernel" ] || kernel=/boot/vmlinuz-$("$here/kernel-version.sh")
[ -r "$kernel" ] || { echo "run.sh: cannot read kernel image $kernel" >&2; exit 1; }

mkdir -p "$out"
# shellcheck disable=SC2086  # "--tests PATH" pairs, paths without blanks
"$here/mkinitramfs.sh" --ko "$ko" $tests $extra $bins --out "$out/initrd.gz"
log=$out/console.log
echo "$name: booting $kernel under TCG (timeout ${timeout}s; log: $log)"
start=$(date +%s)
# A kernel that dies before our init runs (seen once: a TCG boot of sid's
# 7.2 oopsed in its own code patching, and did not again in four boots)
# is booted once more; the first console log is kept beside the second.
for attempt in 1 2; do
	set +e
	# panic=-1 reboots at once on a panic, and -no-reboot turns that into exit.
	timeout "$timeout" qemu-system-x86_64 -accel tcg -m "$mem" -smp 2 \
		-nographic -no-reboot -nic none \
		-kernel "$kernel" -initrd "$out/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 oops=panic $append" \
		</dev/null >"$log.raw" 2>&1
	qemu_rc=$?
	set -e
	tr -d '\r' <"$log.raw" >"$log"
	rm -f "$log.raw"
	echo "$name: QEMU exited with $qemu_rc after $(($(date +%s) - start)) s"
	if [ "$attempt" = 1 ] && ! grep -q '^MEMLINK-VM-LOAD' "$log" &&
	   grep -q 'Oops\|Kernel panic' "$log"; then
		mv "$log" "$log.boot1"
		echo "$name: the kernel died before init ran (not the module; log: $log.boot1): booting again"
		continue
	fi
	break
done

# One awk pass: print the tests' output, count, and list the problems.
awk -v qemu_rc="$qemu_rc" -v timeout="$timeout" -v tally="${ML_TALLY:-}" -v name="$name" '
function problem(msg) { problems = problems "!! " name ": " msg "\n" }
function quote(from, to,   i) {
	for (i = from; i <= to; i++) problems = problems "   | " all[i] "\n"
}
# A program counts its kselftest cases ("# Totals: pass:N fail:N ..."),
# or is one test that passes when it exits 0.
function close_test(rc,   t, p, f, s, i) {
	p = 0; f = 0; s = 0
	if (tot != "") {
		split(tot, t, /[ :]+/)  # "#" Totals pass N fail N xfail N xpass N skip N error N
		p = t[4] + t[8]; f = t[6] + t[10] + t[14]; s = t[12]
		if (rc != 0 && f == 0) f = 1
	} else if (rc == 0) p = 1
	else f = 1
	summary = summary sprintf("%s: %-24s %d passed, %d failed, %d skipped (exit %s)\n", name, cur ":", p, f, s, rc)
	if (f) problem(cur " failed (exit " rc ")" (nwhy ? ":" : ""))
	if (f) for (i = 1; i <= nwhy; i++) quote(why[i], why[i])
	passed += p; failed += f; cur = ""; tot = ""; nwhy = 0
}
{ gsub(/\033(\[[0-9;?]*[A-Za-z]|c)/, ""); all[++n] = $0 }  # minus terminal codes
/^MEMLINK-VM-(LOAD|UNLOAD)$/ { show = 1; next }
/^MEMLINK-VM-INSMOD: / { print; show = 0; if ($2 != "ok") { problem("insmod memlink.ko failed"); other++ } next }
/^MEMLINK-VM-RMMOD: / { print; show = 0; if ($2 != "ok") { problem("rmmod: " $0); other++ } next }
/^MEMLINK-VM-EXTRA: / { print; if ($3 != "ok" && $3 != "unloaded") { problem($2 ": " $3 " " $4); other++ } next }
/^MEMLINK-VM-KMEMLEAK: / { print; if ($2 != "ok") { problem("kmemleak: " $0); other++ } next }
/^MEMLINK-VM-KMEMLEAK-IGNORED-BEGIN$/ { ignored = 1; next }
/^MEMLINK-VM-KMEMLEAK-IGNORED-END$/ { ignored = 0; next }
/^MEMLINK-VM-BEGIN: / { print; cur = $2; tot = ""; show = 1; next }
/^MEMLINK-VM-END: / { print; sub(/^rc=/, "", $3); close_test($3); show = 0; next }
/^MEMLINK-VM-DMESG-BEGIN$/ { indmesg = 1; next }
/^MEMLINK-VM-DMESG-END$/ { indmesg = 0; next }
/^MEMLINK-VM-RESULT: / { print; done = 1; next }
cur != "" && /^# Totals: pass:/ { tot = $0 }
# Why a test failed, repeated with the problems at the end (the reader of a
# long log, or of an excerpt of it, may see only the end).
cur != "" && nwhy < 12 && /^# (FAIL|.*:[0-9]+:.*Expected |.*Test terminated)|^not ok / { why[++nwhy] = n }
show && !indmesg { print; shown[n] = 1 }
# Kernel trouble, on the console or in the dmesg dump; the TAP lines of the
# tests ("# ...", "ok ...") are not kernel messages, nor are the leaks
# outside memlink that init.sh lists (ignored).
!ignored && !/^(#|ok |not ok |TAP version|[0-9]+\.\.[0-9]+)/ &&
/BUG:|WARNING:|Oops|Call Trace|lockdep is turned off|DEBUG_LOCKS_WARN_ON|possible circular locking|KASAN|UBSAN|[Kk]ernel panic|kernel BUG|general protection fault|blocked for more than|rcu: INFO|unreferenced object|refcount_t: / {
	bad[++nbad] = n
}
END {
	if (cur != "") {
		problem(cur " did not finish")
		failed++
	}
	# A crash, hang or timeout: one failure, with the last lines shown.
	if (!done || qemu_rc != 0) {
		if (qemu_rc == 124) problem("timed out after " timeout " s")
		else if (qemu_rc != 0) problem("QEMU failed (exit " qemu_rc ")")
		if (!done) problem("no MEMLINK-VM-RESULT line: the VM did not finish; the last lines:")
		quote(n > 25 ? n - 24 : 1, n)
		other++
	}
	# Quote the first report in full unless it was shown above.
	if (nbad) {
		problem("the kernel log has " nbad " suspicious line(s):")
		if (shown[bad[1]])
			for (i = 1; i <= nbad && i <= 10; i++) quote(bad[i], bad[i])
		else
			quote(bad[1], bad[1] + 39 > n ? n : bad[1] + 39)
		other++
	}
	printf "%s%s", summary, problems
	# Each trouble outside the test programs counts as one failed test.
	printf "%s: %d passed, %d failed\n", name, passed, failed + other
	if (tally != "") printf "%d %d\n", passed, failed + other >> tally
	exit (failed + other) > 0
}' "$log"
