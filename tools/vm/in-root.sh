#!/bin/sh
# Run a command chrooted in a Debian root (tools/vm/kernel-root.sh's), with
# /proc bound and each --bind DIR:PATH bound at ROOT/PATH, in a private
# mount namespace (unshare -m): every mount ends with the command, even
# when it is killed, and none is ever seen or left on the host.
#   in-root.sh [--scratch] [--bind DIR:PATH]... ROOT CMD [ARG]...
# --scratch: the command sees ROOT through an overlay whose upper layer is
# a temporary directory, thrown away after: what it writes (dkms state,
# /usr/src) never reaches ROOT, which stays as its cache built it.
# The command runs with a clean environment (PATH, HOME, LC_ALL=C.UTF-8,
# DEBIAN_FRONTEND=noninteractive) plus V when set.
set -e
if [ "${ML_IN_ROOT_NS:-}" != 1 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "in-root.sh: needs root (chroot, mounts)" >&2; exit 1; }
	ML_IN_ROOT_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
scratch=0
binds=
while [ $# -gt 0 ]; do
	case $1 in
	--scratch) scratch=1; shift ;;
	--bind) binds="$binds $2"; shift 2 ;;
	-*) echo "in-root.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || { echo "usage: in-root.sh [--scratch] [--bind DIR:PATH]... ROOT CMD [ARG]..." >&2; exit 2; }
root=$(cd "$1" && pwd)
shift
[ -x "$root/bin/sh" ] || { echo "in-root.sh: $root is not a root file system" >&2; exit 1; }

# The namespace drops every mount at exit anyway; the trap makes the order
# explicit (innermost first) and removes the overlay's scratch directory.
mounts=
tmp=
# shellcheck disable=SC2317  # run by the trap
cleanup() {
	for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || :; done
	if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# mnt ARGS... TARGET: mount, and remember TARGET for the cleanup.
mnt() {
	for t; do :; done
	mount "$@"
	mounts="$t $mounts"
}

if [ "$scratch" = 1 ]; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/memlink-root.XXXXXX")
	mkdir "$tmp/upper" "$tmp/work" "$tmp/merged"
	mnt -t overlay overlay -o "lowerdir=$root,upperdir=$tmp/upper,workdir=$tmp/work" "$tmp/merged"
	root=$tmp/merged
fi
mnt --bind /proc "$root/proc"
for b in $binds; do  # DIR:PATH, without blanks
	dir=${b%%:*}
	path=${b#*:}
	[ -d "$dir" ] || { echo "in-root.sh: no directory $dir" >&2; exit 1; }
	mkdir -p "$root$path"
	mnt --bind "$dir" "$root$path"
done
set +e
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive ${V:+V=$V} "$@"
rc=$?
set -e
exit $rc
