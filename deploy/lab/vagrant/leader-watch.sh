#!/usr/bin/env bash
# Polls every gateway's GET /leader from the rundeck VM (the client's side of the
# network) and logs one line per sample: "<unix ms> <leaders, comma-separated, or ->".
# vagrant-drill.sh starts it with systemd-run and reads the log to time each failover.
#
#   leader-watch.sh LOG INTERVAL_MS NAME=URL [NAME=URL...]    (URL: http://ADDR:PORT)
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
log=$1
interval=$2
shift 2
names=()
urls=()
outs=()
for pair in "$@"; do
  names+=("${pair%%=*}")
  urls+=("${pair#*=}/leader")
  outs+=(-o /dev/null)
done
sleep_s=$(awk -v ms="$interval" 'BEGIN { printf "%.3f", ms / 1000 }')
: > "$log"
while :; do
  now=$(date +%s%3N)
  # All gateways at once: a dead one costs one timeout, not one per gateway.
  answers=$(curl -s -Z --max-time 0.3 -w '%{url_effective} %{http_code}\n' "${outs[@]}" "${urls[@]}" 2> /dev/null || true)
  leaders=""
  for i in "${!urls[@]}"; do
    if grep -qxF "${urls[$i]} 200" <<< "$answers"; then leaders="${leaders:+$leaders,}${names[$i]}"; fi
  done
  echo "$now ${leaders:--}" >> "$log"
  sleep "$sleep_s"
done
