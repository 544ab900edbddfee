#!/bin/busybox sh
# shellcheck shell=dash
# /init of the test VM (packed by mkinitramfs.sh): load memlink.ko, run every
# program in /tests, unload the module, print the verdict, power off.
# Markers read by run.sh (one line each, nothing else on it):
#   MEMLINK-VM-BEGIN: <test>           before a test program
#   MEMLINK-VM-END: <test> rc=<status> after it
#   MEMLINK-VM-LOAD, then MEMLINK-VM-INSMOD: ok|failed rc=N
#   MEMLINK-VM-UNLOAD, then MEMLINK-VM-RMMOD: ok|failed ...
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

passed=0
failed=0
echo "MEMLINK-VM-LOAD"
insmod /memlink.ko
rc=$?
if [ $rc -eq 0 ]; then
	echo "MEMLINK-VM-INSMOD: ok"
	for t in /tests/*; do
		[ -x "$t" ] || continue
		name=${t##*/}
		echo "MEMLINK-VM-BEGIN: $name"
		# The programs run as root from /tmp; a test may setuid(1000).
		(cd /tmp && "$t")
		rc=$?
		echo "MEMLINK-VM-END: $name rc=$rc"
		if [ $rc -eq 0 ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
		fi
	done
	# Every file and mapping is gone: the module must unload cleanly.
	echo "MEMLINK-VM-UNLOAD"
	rmmod memlink
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "MEMLINK-VM-RMMOD: failed rc=$rc"
		failed=$((failed + 1))
	elif [ -e /proc/memlink ]; then
		echo "MEMLINK-VM-RMMOD: failed /proc/memlink still exists"
		failed=$((failed + 1))
	else
		echo "MEMLINK-VM-RMMOD: ok"
	fi
else
	echo "MEMLINK-VM-INSMOD: failed rc=$rc"
	failed=$((failed + 1))
fi

echo "MEMLINK-VM-DMESG-BEGIN"
dmesg
echo "MEMLINK-VM-DMESG-END"
echo "MEMLINK-VM-RESULT: passed=$passed failed=$failed"
poweroff -f
