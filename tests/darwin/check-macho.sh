#!/bin/sh
# Check what `make darwin` built for one arch, without running it (Linux
# cannot): every object and chan-smoke must be 64-bit Mach-O of that CPU,
# built for macOS MIN, and libmemlink.a an archive; what the library
# imports must be exactly what tests/darwin/imports-ARCH.txt lists, what
# chan-smoke imports that and tests/darwin/imports-smoke.txt at most, all
# from libSystem, none weak, and never os_sync_* (macOS 14.4: dlsym()
# finds it). So a call missing on older macOS cannot slip in. Exits 0 when
# all is well.
#   check-macho.sh x86_64|aarch64 DIR MACHO-IMPORTS MIN
arch=$1
dir=$2
tool=$3
min=$4
here=$(dirname "$0")
case $arch in
x86_64) cpu=07000001 ;;  # CPU_TYPE_X86_64, little-endian
aarch64) cpu=0c000001 ;; # CPU_TYPE_ARM64
*) echo "check-macho.sh: unknown arch '$arch'" >&2; exit 2 ;;
esac
[ -x "$tool" ] && [ -n "$min" ] || { echo "usage: check-macho.sh ARCH DIR MACHO-IMPORTS MIN" >&2; exit 2; }
bad=0
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# mach_header_64: magic MH_MAGIC_64, cputype, cpusubtype, filetype.
check() { # file filetype(1 object, 2 executable)
	hdr=$(od -An -tx1 -N16 "$1" 2>/dev/null | tr -d ' \n')
	want_magic=cffaedfe$cpu
	if [ "${hdr#"$want_magic"}" = "$hdr" ] || [ "${hdr#????????????????????????}" != "0${2}000000" ]; then
		echo "!! $1: not a Mach-O $arch file of type $2 (header $hdr)"
		bad=$((bad + 1))
	fi
}

n=0
for o in $(find "$dir/obj" -name '*.o'); do
	check "$o" 1
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "!! $dir/obj: no objects"; bad=$((bad + 1)); }
check "$dir/chan-smoke" 2
[ "$(head -c 8 "$dir/libmemlink.a" 2>/dev/null)" = "!<arch>" ] ||
	{ echo "!! $dir/libmemlink.a: not an archive"; bad=$((bad + 1)); }

# The symbols of a list (first column), sorted.
names() { grep -hv '^#' "$@" | awk 'NF { print $1 }' | sort -u; }

for f in libmemlink.a chan-smoke; do
	"$tool" "$dir/$f" >"$tmp/$f" || { echo "!! $dir/$f: unreadable"; bad=$((bad + 1)); continue; }
	sed -n 's/^import //p' "$tmp/$f" | sort -u >"$tmp/$f.imports"
	v=$(sed -n 's/^minos //p' "$tmp/$f" | sort -u | tr '\n' ' ' | sed 's/ $//')
	[ "$v" = "$min" ] || { echo "!! $f: built for macOS $v, not $min"; bad=$((bad + 1)); }
	w=$(sed -n 's/^weak-import //p' "$tmp/$f" | tr '\n' ' ')
	[ -z "$w" ] || { echo "!! $f: weak imports $w(look them up with dlsym())"; bad=$((bad + 1)); }
	o=$(grep '_os_sync_' "$tmp/$f.imports" | tr '\n' ' ')
	[ -z "$o" ] || { echo "!! $f: imports $o(macOS 14.4; dlsym() must find it)"; bad=$((bad + 1)); }
done
d=$(sed -n 's/^dylib //p' "$tmp/chan-smoke" | sort -u | tr '\n' ' ')
[ "$d" = "/usr/lib/libSystem.B.dylib " ] || { echo "!! chan-smoke loads $d"; bad=$((bad + 1)); }

names "$here/imports-$arch.txt" >"$tmp/allowed"
for s in $(comm -23 "$tmp/libmemlink.a.imports" "$tmp/allowed"); do
	echo "!! libmemlink.a imports $s, not in tests/darwin/imports-$arch.txt: add it with the"
	echo "   first macOS that has it, if that is $min or older (else use dlsym())"
	bad=$((bad + 1))
done
for s in $(comm -13 "$tmp/libmemlink.a.imports" "$tmp/allowed"); do
	echo "!! tests/darwin/imports-$arch.txt lists $s, which libmemlink.a no longer imports"
	bad=$((bad + 1))
done
names "$here/imports-$arch.txt" "$here/imports-smoke.txt" >"$tmp/allowed-smoke"
for s in $(comm -23 "$tmp/chan-smoke.imports" "$tmp/allowed-smoke"); do
	echo "!! chan-smoke imports $s, not in tests/darwin/imports-{$arch,smoke}.txt"
	bad=$((bad + 1))
done
command -v file >/dev/null && file "$dir/chan-smoke"
echo "darwin-$arch: $n objects, chan-smoke, libmemlink.a," \
	"$(wc -l <"$tmp/libmemlink.a.imports") imports (macOS $min): $bad problems"
[ "$bad" -eq 0 ]
