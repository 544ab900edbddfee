#!/bin/sh
# Prepare, once, a Debian kernel of another release to build memlink.ko
# against and boot: a debootstrap --variant=minbase root of the suite with
# gcc, make, dkms and linux-headers-FLAVOUR (the kernel's own compiler, for
# tools/vm/build-kmod.sh --root and test-dkms), and the vmlinuz of the
# matching linux-image package (apt-get download, unpacked; the image is
# not installed in the root).
#   kernel-root.sh [--offline] KERNEL
# KERNEL: 6.12 (trixie), sid (unstable's newest), rt (bookworm's
# PREEMPT_RT), 6.1 (bookworm, a root like the others; make vm-check uses
# the host's packages for it), or SUITE:FLAVOUR (e.g. trixie:cloud-amd64).
# Prints the cache directory, which holds:
#   root/     the chroot;  kver  the kernel release (headers in
#             root/usr/src/linux-headers-<kver>);  vmlinuz  its image;
#   info      suite, flavour and the versions installed;  build.log
# The directory is $ML_KERNEL_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/
# memlink) /root-SUITE-FLAVOUR-VERSION-rRECIPE, VERSION being the candidate
# of linux-headers-FLAVOUR in the suite, asked of the mirror with apt-get
# update (host apt, the lists kept in the cache's apt-SUITE/); offline
# (update failed, or --offline) the newest cache of that suite and flavour
# is used as it is. A miss takes ~2-3 min (debootstrap ~50 s, headers
# ~50 s, image ~108 MB); it is built in DIR.tmp under a lock and renamed into
# place when complete: an interrupted build never leaves a half cache.
set -e
# Bump when the way a root is made changes: a new cache key.
RECIPE=2
MIRROR=${ML_DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
offline=0
while [ $# -gt 0 ]; do
	case $1 in
	--offline) offline=1; shift ;;
	-*) echo "kernel-root.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: kernel-root.sh [--offline] 6.12|sid|rt|6.1|SUITE:FLAVOUR" >&2; exit 2; }
case $1 in
6.1) suite=bookworm flavour=amd64 ;;
6.12) suite=trixie flavour=amd64 ;;
sid) suite=sid flavour=amd64 ;;
rt) suite=bookworm flavour=rt-amd64 ;;
*:*) suite=${1%%:*} flavour=${1#*:} ;;
*) echo "kernel-root.sh: unknown kernel '$1'" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "kernel-root.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null ||
	{ echo "kernel-root.sh: no debootstrap (tools/deps.sh vm installs it)" >&2; exit 1; }
# A calling make's command-line variables (O=, CC=...) must not reach kbuild.
unset MAKEFLAGS MFLAGS MAKELEVEL
cache=${ML_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/memlink}
mkdir -p "$cache"
meta=linux-headers-$flavour
# sid's Release file on the mirror may be past its Valid-Until: accept it.
aptopts="-o Acquire::Check-Valid-Until=false -o Acquire::Retries=1 -o Acquire::http::Timeout=20"

# The candidate version of the headers metapackage: host apt over the
# suite's lists alone (its own state under the cache, not the host's).
candidate() {
	a=$cache/apt-$suite
	mkdir -p "$a/lists/partial" "$a/archives/partial" "$a/parts" "$a/prefs"
	echo "deb $MIRROR $suite main" >"$a/sources.list"
	: >"$a/status"
	# shellcheck disable=SC2086  # $aptopts: one word each
	set -- $aptopts -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/parts" \
		-o Dir::Etc::Preferences="$a/none" -o Dir::Etc::PreferencesParts="$a/prefs" \
		-o Dir::State::Lists="$a/lists" -o Dir::State::status="$a/status" \
		-o Dir::Cache="$a" -o Dir::Cache::Archives="$a/archives" -o APT::Architecture=amd64
	exec 8>"$a.lock"
	flock 8
	apt-get -qq "$@" --error-on=any update >"$a/update.log" 2>&1 || return 1
	apt-cache "$@" policy "$meta" | sed -n 's/^ *Candidate: *//p' | grep -v '(none)'
	exec 8>&-
}

# The newest complete cache of this suite and flavour, if any.
newest() {
	# shellcheck disable=SC2010  # names without blanks: ours; newest first
	ls -td "$cache/root-$suite-$flavour-"*"-r$RECIPE" 2>/dev/null | grep -v '\.tmp$' |
		while read -r d; do
			if [ -r "$d/vmlinuz" ]; then echo "$d"; break; fi
		done
}

ver=
if [ "$offline" = 0 ]; then
	ver=$(candidate) || ver=
	[ -n "$ver" ] || echo "kernel-root: no candidate for $meta in $suite (offline?): using the newest cache" >&2
fi
if [ -z "$ver" ]; then
	dir=$(newest)
	[ -n "$dir" ] || { echo "kernel-root.sh: no cache of $suite/$flavour in $cache and no network to build one" >&2; exit 1; }
	touch "$dir/.used"
	echo "$dir"
	exit 0
fi
dir=$cache/root-$suite-$flavour-$ver-r$RECIPE
if [ -r "$dir/vmlinuz" ]; then
	touch "$dir/.used"
	echo "$dir"
	exit 0
fi

# One builder per key; a second one waits, then finds the cache filled.
exec 9>"$dir.lock"
flock 9
if [ -r "$dir/vmlinuz" ]; then
	echo "$dir"
	exit 0
fi
tmp=$dir.tmp
rm -rf "$tmp"   # what an interrupted build left (we hold the lock)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$tmp"
log=$tmp/build.log
start=$(date +%s)
echo "kernel-root: building $dir (2-3 minutes; log: $log)" >&2
r=$tmp/root
# fail WHAT: the log's tail, kept beside the cache, and out.
fail() {
	tail -n 30 "$log" >&2
	cp "$log" "$dir.failed.log"
	echo "kernel-root.sh: $1 failed (log kept in $dir.failed.log)" >&2
	exit 1
}
debootstrap --variant=minbase "$suite" "$r" "$MIRROR" >"$log" 2>&1 || fail debootstrap
t1=$(date +%s)
{
	echo "deb $MIRROR $suite main"
} >"$r/etc/apt/sources.list"
# Inside the root as well: an expired Release, no recommends.
{
	echo 'Acquire::Check-Valid-Until "false";'
	echo 'APT::Install-Recommends "false";'
} >"$r/etc/apt/apt.conf.d/90memlink"
"$here/in-root.sh" "$r" apt-get -q update >>"$log" 2>&1 || fail "apt-get update in the root"
# The metapackage (the exact version of the key) depends on
# linux-headers-<kver> (= <version>).
dep=$(chroot "$r" apt-cache show "$meta=$ver" | sed -n 's/^Depends: //p' | head -n 1 | tr ',' '\n' |
	sed -n 's/^ *linux-headers-\([^ ]*\) (= \([^)]*\)).*/\1 \2/p' | head -n 1)
kver=${dep% *}
kpkgver=${dep#* }
[ -n "$kver" ] || { echo "no linux-headers-<kver> under $meta=$ver: '$dep'" >>"$log"; fail "finding the kernel release"; }
# Trixie's linux-headers-<kver> depends on linux-image-<kver>: a stand-in
# that provides that very version keeps the image (108 MB, and an
# initramfs built for nothing) out of the root; its vmlinuz is downloaded
# below instead.
stub=$r/tmp/stub
mkdir -p "$stub/DEBIAN"
cat >"$stub/DEBIAN/control" <<EOC
Package: memlink-linux-image-stub
Version: $kpkgver
Architecture: all
Maintainer: memlink <memlink@localhost>
Provides: linux-image-$kver (= $kpkgver), linux-image-$kver-unsigned (= $kpkgver)
Description: stands in for linux-image-$kver in memlink's kernel root
 tools/vm/kernel-root.sh downloads the image's vmlinuz instead.
EOC
dpkg-deb -b "$stub" "$r/tmp/stub.deb" >>"$log" 2>&1 || fail "building the image stub"
rm -rf "$stub"
"$here/in-root.sh" "$r" sh -c "dpkg -i /tmp/stub.deb && rm /tmp/stub.deb &&
	apt-get install -y -q gcc make dkms $meta=$ver" >>"$log" 2>&1 ||
	fail "installing gcc, make, dkms, $meta"
t2=$(date +%s)
if [ -z "$kver" ] || [ ! -d "$r/usr/src/linux-headers-$kver" ]; then
	echo "no linux-headers-<kver> under $meta: '$dep'" >>"$log"
	fail "finding the kernel release"
fi
# The image of that very version (the signed package, else -unsigned),
# downloaded in the root, then only its vmlinuz is kept. Since 7.x (sid)
# linux-image-<kver> is a small package whose vmlinuz is in the
# linux-binary-<kver> it depends on (usr/lib/modules/<kver>/vmlinuz).
mkdir -p "$r/tmp/image"
"$here/in-root.sh" "$r" sh -c "cd /tmp/image && { apt-get download -q linux-image-$kver=$kpkgver ||
	apt-get download -q linux-image-$kver-unsigned=$kpkgver; }" >>"$log" 2>&1 ||
	fail "downloading linux-image-$kver"
deb=$(ls "$r"/tmp/image/linux-image-*.deb)
if ! dpkg-deb -c "$deb" | grep '/vmlinuz' >/dev/null; then
	bin=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-binary-[^ ]*\) (= \([^)]*\)).*/\1=\2/p')
	[ -n "$bin" ] || { echo "no vmlinuz in $deb, nor a linux-binary-* dependency" >>"$log"; fail "finding the image"; }
	"$here/in-root.sh" "$r" sh -c "cd /tmp/image && apt-get download -q $bin" >>"$log" 2>&1 ||
		fail "downloading $bin"
	deb=$(ls "$r"/tmp/image/linux-binary-*.deb)
fi
dpkg-deb -x "$deb" "$tmp/image" >>"$log" 2>&1 || fail "unpacking $deb"
for v in boot/vmlinuz-$kver usr/lib/modules/$kver/vmlinuz lib/modules/$kver/vmlinuz ''; do
	if [ -z "$v" ]; then echo "no vmlinuz of $kver in $deb" >>"$log"; fail "finding the image"; fi
	if [ -f "$tmp/image/$v" ]; then cp "$tmp/image/$v" "$tmp/vmlinuz"; break; fi
done
rm -rf "$tmp/image" "$r/tmp/image"
chroot "$r" apt-get clean
echo "$kver" >"$tmp/kver"
{
	echo "suite $suite"
	echo "flavour $flavour"
	echo "kernel $kver"
	# shellcheck disable=SC2016  # dpkg-query's ${field}s
	chroot "$r" dpkg-query -W -f='${Package} ${Version}\n' \
		"$meta" "linux-headers-$kver" gcc make dkms
	chroot "$r" gcc --version | head -n 1
	echo "image $(basename "$deb")"
} >"$tmp/info"
touch "$tmp/.used"
mv "$tmp" "$dir"
trap - EXIT
rm -f "$dir.lock" "$dir.failed.log"
# Roots of this suite and flavour for older versions, unused for two weeks, go.
find "$cache" -maxdepth 2 -path "$cache/root-$suite-$flavour-*/.used" -mtime +14 |
	while read -r used; do rm -rf "${used%/.used}"; done
t3=$(date +%s)
echo "kernel-root: built in $((t3 - start)) s (debootstrap $((t1 - start)) s," \
	"packages $((t2 - t1)) s, image $((t3 - t2)) s): $dir" >&2
echo "$dir"
