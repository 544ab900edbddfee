#!/bin/sh
# make demo: run memlink-ping's daemon in the background and its client in
# the foreground (which prints the round-trip table and stops the daemon).
#   demo.sh path/to/memlink-ping
ping=$1
name=demo.$$
"$ping" daemon --name "$name" &
daemon=$!
"$ping" client --name "$name" --count 20000 --stop
rc=$?
# The client's --stop ends the daemon; make sure of it either way.
if ! wait "$daemon"; then
	rc=1
fi
kill "$daemon" 2>/dev/null
exit $rc
