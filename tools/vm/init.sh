#!/bin/busybox sh
# shellcheck shell=dash
# /init of the test VM (packed by mkinitramfs.sh): load memlink.ko, run every
# program in /tests, unload the module, print the verdict, power off.
# Kernel command line flags of its own: memlink_vm.kmemleak=1 (leak scans,
# see kmemleak() below), memlink_vm.time_scale=N (ML_TIME_SCALE for tests).
# Markers read by run.sh (one line each, nothing else on it):
#   MEMLINK-VM-BEGIN: <test>           before a test program
#   MEMLINK-VM-END: <test> rc=<status> after it
#   MEMLINK-VM-LOAD, then MEMLINK-VM-INSMOD: ok|failed rc=N
#   MEMLINK-VM-EXTRA: <module> ok|failed rc=N   each /extra/*.ko, loaded
#                                      after memlink.ko
#   MEMLINK-VM-EXTRA: <module> unloaded|failed rmmod   before memlink.ko
#   MEMLINK-VM-UNLOAD, then MEMLINK-VM-RMMOD: ok|failed ...
#   MEMLINK-VM-KMEMLEAK: ok|failed ...  with memlink_vm.kmemleak=1 on the
#                                      kernel command line (see kmemleak())
#   MEMLINK-VM-KMEMLEAK-IGNORED-BEGIN / -END   leaks outside memlink
#   MEMLINK-VM-DMESG-BEGIN / -END      the whole kernel log, for run.sh to scan
#   MEMLINK-VM-RESULT: passed=N failed=M   the last line; its absence means
#                                          the VM died or hung
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
echo  # the firmware leaves escape codes on the first line

# kmemleak TAG: ask kmemleak for the unreferenced objects and count those of
# memlink: a backtrace through a memlink module ("[memlink]",
# "[memlink_inject]") or through code no longer loaded (a bare address: only
# our modules are ever loaded here), which is how memlink's frames look once
# rmmod is done. Their reports are printed as they are (run.sh flags
# "unreferenced object"); leaks elsewhere in the kernel are shown between the
# IGNORED markers. Objects younger than 5 s are never reported, and an
# object is reported by the second scan that finds it unreferenced: hence
# the sleep and the two scans. "clear" then hides what was reported, so
# the next call counts only new leaks.
kmemleak() {
	f=/sys/kernel/debug/kmemleak
	if ! { sleep 6 && echo scan >$f && echo scan >$f; } 2>/dev/null ||
		! cat $f >/tmp/kmemleak 2>/dev/null; then
		echo "MEMLINK-VM-KMEMLEAK: failed $1: kmemleak is not running"
		failed=$((failed + 1))
		return
	fi
	n=$(awk -v out=/tmp/kmemleak.ours -v other=/tmp/kmemleak.other '
		function flush() {
			if (rec == "") return
			if (ours) { printf "%s", rec > out; n++ } else printf "%s", rec > other
			rec = ""; ours = 0
		}
		/^unreferenced object / { flush() }
		{ rec = rec $0 "\n" }
		/\[memlink/ || /\] 0x[0-9a-f]+$/ { ours = 1 }
		END { flush(); print n + 0 }' /tmp/kmemleak)
	if [ -s /tmp/kmemleak.other ]; then
		echo "MEMLINK-VM-KMEMLEAK-IGNORED-BEGIN"
		cat /tmp/kmemleak.other
		echo "MEMLINK-VM-KMEMLEAK-IGNORED-END"
	fi
	ignored=$(grep -c '^unreferenced object ' /tmp/kmemleak.other 2>/dev/null)
	if [ "$n" -eq 0 ]; then
		echo "MEMLINK-VM-KMEMLEAK: ok $1: no leak in memlink (${ignored:-0} elsewhere ignored)"
	else
		cat /tmp/kmemleak.ours
		echo "MEMLINK-VM-KMEMLEAK: failed $1: $n leak(s) in memlink"
		failed=$((failed + 1))
	fi
	echo clear >$f
	rm -f /tmp/kmemleak /tmp/kmemleak.ours /tmp/kmemleak.other
}
read -r cmdline </proc/cmdline
case " $cmdline " in
*" memlink_vm.kmemleak=1 "*) leakcheck=1 ;;
*) leakcheck=0 ;;
esac
# memlink_vm.time_scale=N: the tests' environment gets ML_TIME_SCALE=N, a
# factor for their latency bounds on a slow (debug) kernel.
for arg in $cmdline; do
	case $arg in
	memlink_vm.time_scale=*) export ML_TIME_SCALE="${arg#*=}" ;;
	esac
done

passed=0
failed=0
echo "MEMLINK-VM-LOAD"
insmod /memlink.ko
rc=$?
if [ $rc -eq 0 ]; then
	echo "MEMLINK-VM-INSMOD: ok"
	for m in /extra/*.ko; do
		[ -e "$m" ] || continue
		insmod "$m"
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "MEMLINK-VM-EXTRA: ${m##*/} ok"
		else
			echo "MEMLINK-VM-EXTRA: ${m##*/} failed rc=$rc"
			failed=$((failed + 1))
		fi
	done
	for t in /tests/*; do
		[ -x "$t" ] || continue
		name=${t##*/}
		echo "MEMLINK-VM-BEGIN: $name"
		# The programs run as root from /tmp; a test may setuid(1000).
		# NAME.env, when there is one, sets the test's environment.
		(cd /tmp && { [ ! -f "$t.env" ] || . "$t.env"; } && "$t")
		rc=$?
		echo "MEMLINK-VM-END: $name rc=$rc"
		if [ $rc -eq 0 ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	done
	# While memlink.ko is loaded its frames have names; what it still
	# links from its own data is found only once it is gone: scan both.
	[ $leakcheck -eq 1 ] && kmemleak "before rmmod"
	# Every file and mapping is gone: the module must unload cleanly.
	echo "MEMLINK-VM-UNLOAD"
	for m in /extra/*.ko; do
		[ -e "$m" ] || continue
		m=${m##*/}
		if rmmod "${m%.ko}"; then
			echo "MEMLINK-VM-EXTRA: $m unloaded"
		else
			echo "MEMLINK-VM-EXTRA: $m failed rmmod"
			failed=$((failed + 1))
		fi
	done
	rmmod memlink
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "MEMLINK-VM-RMMOD: failed rc=$rc"
		failed=$((failed + 1))
	elif [ -e /dev/memlink ] || [ -e /sys/module/memlink ]; then
		echo "MEMLINK-VM-RMMOD: failed /dev/memlink or /sys/module/memlink still exists"
		failed=$((failed + 1))
	else
		echo "MEMLINK-VM-RMMOD: ok"
	fi
	[ $leakcheck -eq 1 ] && kmemleak "after rmmod"
else
	echo "MEMLINK-VM-INSMOD: failed rc=$rc"
	failed=$((failed + 1))
fi

echo "MEMLINK-VM-DMESG-BEGIN"
dmesg
echo "MEMLINK-VM-DMESG-END"
echo "MEMLINK-VM-RESULT: passed=$passed failed=$failed"
poweroff -f
