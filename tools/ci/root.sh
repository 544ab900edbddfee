#!/bin/bash
# Run commands where a newcomer would: on a fresh Debian 12 machine, from a
# clone. The machine is a root made by `debootstrap --variant=minbase
# bookworm`, with Debian 12's apt sources (bookworm, bookworm-updates,
# bookworm-security: the host's /etc/apt/sources.list.d/debian.sources, none
# of its other repositories), the host's network (/etc/resolv.conf, and a
# copy of the site's CAs in /usr/local/share/ca-certificates), /proc, /sys,
# /dev and /dev/pts bound in and a private tmpfs on /dev/shm. In it, as root: the
# README's first step, `apt-get update && apt-get install -y git make`; a
# `git clone` of this repository at HEAD into /src, by that git; then each
# COMMAND in /src, one timed phase each, up to the first that fails. Then
# every mount is undone and the root removed, also on failure or interrupt.
#   root.sh [--tar FILE] [--cache DIR|none] [--keep] [--here] [--] COMMAND...
#   root.sh --save-tar FILE
# --tar FILE   the root is FILE unpacked (a tar of a pristine debootstrap
#              root) instead of a new debootstrap; .ci/run never passes it
# --save-tar FILE  only bootstrap, and tar the pristine root into FILE (what
#              tools/ci/alone.sh does once for many roots)
# --cache DIR  DIR is bound at /root/.cache/memlink, where the Makefile keeps
#              content-keyed build outputs (the debug kernel, the kernel
#              matrix's roots); what the README's commands install is never
#              kept there: zig-* (Zig, from npm) is deleted before and after.
#              One run at a time uses DIR (a lock). Default: none.
# --keep       leave the root (unmounted) and say where
# --here       run the COMMANDs in this work tree instead, on the host
#              (debugging; no root, no clone, no packages)
# MEMLINK_CI_WORK: where the root goes (/var/tmp); MEMLINK_CI_MIRROR: the
# mirror for debootstrap (http://deb.debian.org/debian).
# Prints "==> ci: PHASE" when a phase starts, "<== ci: PHASE: TIME" when it
# ends, and every phase's time at the end.
# Exits with the status of the first phase that failed, else 0.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tar=
savetar=
cache=none
keep=0
onhost=0
while [ $# -gt 0 ]; do
	case $1 in
	--tar) tar=$(realpath -e "$2") || exit 2; shift 2 ;;
	--save-tar) savetar=$(realpath "$2"); shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--here) onhost=1; shift ;;
	--) shift; break ;;
	-*) echo "root.sh: unknown option $1 (see the head of $0)" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -eq 0 ] && [ -z "$savetar" ]; then
	echo "usage: root.sh [--tar FILE] [--cache DIR|none] [--keep] [--here] [--] COMMAND..." >&2
	echo "       root.sh --save-tar FILE" >&2
	exit 2
fi

# Every mount is made in a mount namespace of our own (private, so nothing
# propagates to or from the host's mounts): the host never sees them, and
# they go with the namespace even if this script is killed. The trap below
# still unmounts them in order before anything is removed.
if [ "$onhost" = 0 ] && [ "${MEMLINK_CI_NS:-}" != "$$" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "root.sh: needs root (debootstrap, mount, chroot); --here runs on the host" >&2; exit 1; }
	# The namespace's shell is this script again, with the same pid (exec).
	opts=(--cache "$cache")
	[ -z "$tar" ] || opts+=(--tar "$tar")
	[ -z "$savetar" ] || opts+=(--save-tar "$savetar")
	[ "$keep" = 0 ] || opts+=(--keep)
	MEMLINK_CI_NS=$$ exec unshare --mount --propagation private "$0" "${opts[@]}" -- "$@"
fi

fmt() { printf '%dm%02ds (%d s)' $(($1 / 60)) $(($1 % 60)) "$1"; }
summary=()
# phase NAME CMD...: run CMD as one phase, timed; its status is returned.
phase() {
	local name=$1 start=$SECONDS rc
	shift
	echo "==> ci: $name   ($(date -u '+%F %T UTC'))"
	"$@"
	rc=$?
	local t=$((SECONDS - start)) verdict=ok
	[ "$rc" -eq 0 ] || verdict="FAILED (exit $rc)"
	echo "<== ci: $name: $(fmt $t), $verdict"
	summary+=("$(printf '  %-40s %s  %s' "$name" "$(fmt $t)" "$verdict")")
	return "$rc"
}

report() {
	echo "== ci: phases"
	printf '%s\n' "${summary[@]}"
	echo "== ci: total $(fmt "$SECONDS")"
}

# Each COMMAND, up to the first that fails.
run_commands() { # run_commands RUNNER CMD...: each CMD ("sh -c" text) by RUNNER
	local runner=$1 c
	shift
	for c in "$@"; do
		# shellcheck disable=SC2086  # RUNNER: a command and its words
		phase "$c" $runner "$c" || return
	done
}

if [ "$onhost" = 1 ]; then
	cd "$top" || exit 1
	echo "== ci: on this host, in $top (no fresh root)"
	run_commands "sh -c" "$@"
	rc=$?
	report
	exit "$rc"
fi

case ${MEMLINK_CI_WORK:-/var/tmp} in
*[[:space:]]*) echo "root.sh: MEMLINK_CI_WORK may not hold blanks" >&2; exit 2 ;;
esac
sha=$(git -C "$top" rev-parse HEAD) || exit 1
gitdir=$(cd "$top" && cd "$(git rev-parse --git-common-dir)" && pwd) || exit 1
mirror=${MEMLINK_CI_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d "${MEMLINK_CI_WORK:-/var/tmp}/memlink-ci.XXXXXX") || exit 1
root=$work/root
echo "== ci: a fresh Debian 12 root in $root; memlink $sha"

# ---- teardown --------------------------------------------------------------
mounts_under() { # what is mounted at or under $root, innermost last
	awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts
}
# What still runs in the root: processes whose root is in ours (a daemon a
# package started, wineserver, a test left behind) or that are in a process
# group of in_root's (a nested chroot in a namespace of its own may hide
# its root from us). Ours by construction, and they would hold mounts.
groups=()
procs_in_root() {
	local p l s f
	for p in /proc/[0-9]*; do
		l=$(readlink "$p/root" 2>/dev/null) || continue
		case $l in "$root" | "$root"/*) echo "${p#/proc/}"; continue ;; esac
		[ "${#groups[@]}" -gt 0 ] || continue
		s=$(<"$p/stat") || continue
		read -r -a f <<<"${s##*) }"   # state ppid pgrp ...
		case " ${groups[*]} " in *" ${f[2]} "*) echo "${p#/proc/}" ;; esac
	done 2>/dev/null
}
teardown() {
	local pids i m
	for i in 1 2 3 4 5 6 7 8 9 10; do
		mapfile -t pids < <(procs_in_root)
		[ "${#pids[@]}" -gt 0 ] || break
		if [ "$i" -le 4 ]; then
			[ "$i" -gt 1 ] || echo "== ci: stopping what still runs in the root: ${pids[*]}"
			kill -TERM "${pids[@]}" 2>/dev/null
		else
			kill -KILL "${pids[@]}" 2>/dev/null
		fi
		sleep 1
	done
	for m in $(mounts_under | tac); do
		umount "$m" 2>/dev/null || umount -l "$m" || :
	done
	if [ -n "$(mounts_under)" ]; then
		umount -R -l "$root" 2>/dev/null || :
	fi
	if [ -n "$(mounts_under)" ]; then
		echo "!! ci: still mounted, so $work is left in place:"
		mounts_under | sed 's/^/   /'
		return 1
	fi
	if [ "$keep" = 1 ]; then
		echo "== ci: the root is kept in $root"
	else
		rm -rf "$work"
	fi
	[ "$cache" = none ] || rm -rf "$cache"/zig-*
}
finish() {
	local rc=$?
	trap '' INT TERM HUP   # the cleanup runs to its end
	phase teardown teardown || { [ "$rc" -ne 0 ] || rc=1; }
	report
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- the root --------------------------------------------------------------
bootstrap() {
	if [ -n "$tar" ]; then
		mkdir "$root" && tar -C "$root" -xpf "$tar"
		return
	fi
	if ! command -v debootstrap >/dev/null; then
		echo "installing debootstrap on the host"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || return
	fi
	if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
		tail -n 30 "$work/debootstrap.log"
		return 1
	fi
}

# bind SRC DST [OPTIONS]: DST created as SRC's kind (file or directory).
bind() {
	if [ -d "$1" ]; then mkdir -p "$2"; else rm -f "$2" && : >"$2"; fi &&
		mount --bind ${3:+-o "$3"} "$1" "$2"
}

setup() {
	# A machine's / is a mount point, and tools count on it (unshare
	# --propagation, as tools/vm/in-root.sh does, fails with EINVAL on a
	# root that is a plain directory): the root is a bind of itself.
	mount --bind "$root" "$root" || return
	# Debian 12's sources, in the deb822 form of an installed machine.
	rm -f "$root/etc/apt/sources.list" &&
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
	else
		cat >"$root/etc/apt/sources.list.d/debian.sources" <<-'EOF'
		Types: deb
		URIs: http://deb.debian.org/debian
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: http://deb.debian.org/debian-security
		Suites: bookworm-security
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
	fi &&
	sed 's/^/   /' "$root/etc/apt/sources.list.d/debian.sources" &&
	bind /etc/resolv.conf "$root/etc/resolv.conf" || return
	# The site's own certificate authorities, which Debian keeps here for
	# update-ca-certificates (run when ca-certificates is installed): the
	# machine's network, like resolv.conf. Where HTTPS goes through an
	# intercepting proxy (this farm's egress), a machine on it trusts the
	# proxy's CA; without it npm fails with SELF_SIGNED_CERT_IN_CHAIN.
	if [ -d /usr/local/share/ca-certificates ]; then
		mkdir -p "$root/usr/local/share/ca-certificates" &&
			cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" &&
			echo "   local CAs: $(cd /usr/local/share/ca-certificates && echo *)" || return
	fi
	bind /proc "$root/proc" &&
	bind /sys "$root/sys" &&
	bind /dev "$root/dev" &&
	bind /dev/pts "$root/dev/pts" &&
	mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm" || return
	if [ "$cache" != none ]; then
		mkdir -p "$cache" || return
		cache=$(realpath "$cache")
		exec 8>"$cache/.lock"
		if ! flock -n 8; then
			echo "   waiting for another run that uses the cache $cache"
			flock 8
		fi
		rm -rf "$cache"/zig-*
		echo "   cache: $cache at /root/.cache/memlink: $(cd "$cache" && echo *)"
		bind "$cache" "$root/root/.cache/memlink" || return
	fi
}

# in_root [VAR=VALUE]... SHELL-TEXT: run it chrooted, as root with a
# login's environment and nothing of ours (no locale: minbase has none), in
# a session of its own in the background, so that a signal to this script
# is handled at once and the trap stops all of it.
in_root() {
	local vars=()
	while [ $# -gt 1 ]; do vars+=("$1"); shift; done
	setsid chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
		TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		"${vars[@]}" sh -c "$1" </dev/null 8>&- &
	groups+=($!)
	wait $!
}
in_root_src() { in_root "cd /src && $1"; }

newcomer() { # the README's first step (no terminal: debconf asks nothing)
	in_root DEBIAN_FRONTEND=noninteractive 'apt-get update -qq && apt-get install -y -qq git make >/dev/null' &&
		in_root 'git --version && make --version | head -n 1'
}

# The committed tree, as a clone has it: HEAD, not the work tree (no build
# outputs, no uncommitted edits of whoever runs this), with its .git. The
# repository is bound read-only for the clone only.
clone() {
	bind "$gitdir" "$root/mnt/origin.git" ro &&
		in_root "git -c safe.directory='*' clone -q --no-checkout /mnt/origin.git /src &&
			cd /src && git checkout -q --detach $sha && git log -1 --format='%h %s'"
	local rc=$?
	umount "$root/mnt/origin.git" && rmdir "$root/mnt/origin.git" || rc=1
	return $rc
}

if [ -n "$tar" ]; then
	phase "bootstrap: unpack ${tar##*/}" bootstrap || exit
else
	phase "bootstrap: debootstrap --variant=minbase bookworm" bootstrap || exit
fi
if [ -n "$savetar" ]; then
	phase "save ${savetar##*/}" tar -C "$root" -cf "$savetar" . || exit
	exit 0
fi
phase "setup: apt sources, mounts" setup || exit
phase "apt-get install git make" newcomer || exit
phase "git clone" clone || exit
run_commands in_root_src "$@"
