#!/bin/sh
# Check what `make darwin` built for one arch, without running it (Linux
# cannot): every object and chan-smoke must be 64-bit Mach-O of that CPU,
# and libmemlink.a an archive. Exits 0 when all is well.
#   check-macho.sh x86_64|aarch64 DIR
arch=$1
dir=$2
case $arch in
x86_64) cpu=07000001 ;;  # CPU_TYPE_X86_64, little-endian
aarch64) cpu=0c000001 ;; # CPU_TYPE_ARM64
*) echo "check-macho.sh: unknown arch '$arch'" >&2; exit 2 ;;
esac
bad=0

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
command -v file >/dev/null && file "$dir/chan-smoke"
echo "darwin-$arch: $n objects, chan-smoke, libmemlink.a: $bad problems"
[ "$bad" -eq 0 ]
