#!/bin/sh
# Dumps HAProxy's server state before a reload, so servers that were DOWN (standbys)
# stay DOWN in the new process instead of counting as UP until their first check.
# Run from haproxy.service's ExecReload (deploy/haproxy/execgate-state.conf).
set -eu
socket=${HAPROXY_SOCKET:-/run/haproxy/admin.sock}
state=${HAPROXY_STATE_FILE:-/var/lib/haproxy/server-state}
tmp="$state.tmp.$$"
if command -v socat > /dev/null 2>&1; then
  echo "show servers state" | socat - "UNIX-CONNECT:$socket" > "$tmp"
else
  echo "show servers state" | nc -U -w 2 "$socket" > "$tmp"
fi
mv -f "$tmp" "$state"
