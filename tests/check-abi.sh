#!/bin/sh
# The shared library exports exactly the functions its version script lists,
# all under the script's version node, and carries the expected soname.
#   check-abi.sh build/lib/libmemlink.so.X.Y.Z lib/libmemlink.map
so=$1
map=$2
node=$(sed -n 's/^\(MEMLINK_[0-9.]*\) {$/\1/p' "$map" | tail -n 1)
want=$(sed -n 's/^[[:space:]]*\(ml_[a-z0-9_]*\);$/\1@@'"$node"'/p' "$map" | sort)
have=$(nm -D --defined-only "$so" | awk '$2 != "A" {print $3}' | sort)
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
major=$(echo "${so##*.so.}" | cut -d. -f1)
status=0
if [ "$want" != "$have" ]; then
	echo "exported symbols differ from $map (- listed only, + exported only):"
	echo "$want" >"${TMPDIR:-/tmp}/ml-abi.$$"
	echo "$have" | diff "${TMPDIR:-/tmp}/ml-abi.$$" - | grep '^[<>]' | sed 's/^</-/;s/^>/+/'
	rm -f "${TMPDIR:-/tmp}/ml-abi.$$"
	status=1
fi
if [ "$soname" != "libmemlink.so.$major" ]; then
	echo "soname is '$soname', expected libmemlink.so.$major"
	status=1
fi
[ $status -eq 0 ] && echo "abi: $(echo "$have" | wc -l) symbols at $node, soname $soname"
exit $status
