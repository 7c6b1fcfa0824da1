#!/usr/bin/env bash
# The few Rundeck API calls the Vagrant lab needs; runs on the rundeck VM as root
# (rundeck.sh installs it as /usr/local/sbin/execgate-lab-rundeck).
#
#   execgate-lab-rundeck wait-up [SECONDS]              until Rundeck answers (default 900 s)
#   execgate-lab-rundeck api METHOD PATH [CURL ARGS]    one API call; the JSON answer on stdout
#   execgate-lab-rundeck run JOB_UUID                   start a job; prints the execution id
#   execgate-lab-rundeck settle JOB_UUID FIRST_ID [TIMEOUT]
#                     wait for that run and its retries; one line per execution
#                     (id status started ended); exit 0 when the last one succeeded
#   execgate-lab-rundeck log EXEC_ID                    the execution's output
#
# Lab credentials: Rundeck's default admin/admin (RUNDECK_USER, RUNDECK_PASSWORD).
set -euo pipefail

base=${RUNDECK_URL:-http://127.0.0.1:4440}
user=${RUNDECK_USER:-admin}
password=${RUNDECK_PASSWORD:-admin}
version=41
jar=${RUNDECK_COOKIES:-/run/execgate-lab-rundeck.cookies}

die() { echo "execgate-lab-rundeck: $*" >&2; exit 2; }
usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

login() {
  rm -f "$jar"
  (umask 077 && curl -fsS -o /dev/null -c "$jar" -b "$jar" \
    --data-urlencode "j_username=$user" --data-urlencode "j_password=$password" "$base/j_security_check")
}

# api METHOD PATH [CURL ARGS...]: with the session cookie; logs in again once when refused.
api() {
  local method=$1 path=$2
  shift 2
  [ -s "$jar" ] || login
  local call=(curl -fsS -b "$jar" -c "$jar" -X "$method" -H 'Accept: application/json' "$@" "$base/api/$version/$path")
  "${call[@]}" 2> /dev/null || { login && "${call[@]}"; }
}

wait_up() {
  local deadline=$((SECONDS + ${1:-900}))
  until curl -fsS -o /dev/null "$base/"; do
    [ "$SECONDS" -lt "$deadline" ] || die "Rundeck did not answer on $base within ${1:-900} s (journalctl -u rundeckd; /var/log/rundeck/service.log)"
    sleep 5
  done
  login
  api GET system/info > /dev/null
}

settle() {
  local job=$1 first=$2 deadline=$((SECONDS + ${3:-600})) list newest
  while :; do
    list=$(api GET "job/$job/executions?max=20" | jq -c --argjson first "$first" '[.executions[] | select(.id >= $first)] | sort_by(.id)')
    newest=$(jq -r 'last // {} | .status // "none"' <<< "$list")
    case "$newest" in
      succeeded | failed | aborted | timedout) break ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || { echo "execgate-lab-rundeck: job $job still $newest after ${3:-600} s" >&2; break; }
    sleep 2
  done
  jq -r '.[] | "\(.id) \(.status) \(.["date-started"].date // "-") \(.["date-ended"].date // "-")"' <<< "$list"
  [ "$newest" = succeeded ]
}

[ $# -gt 0 ] || usage
command -v jq > /dev/null || die "jq is missing (apt-get install jq)"
case "$1" in
  wait-up) wait_up "${2:-900}" ;;
  api) [ $# -ge 3 ] || usage; shift; api "$@" ;;
  run) [ $# -eq 2 ] || usage; api POST "job/$2/run" -H 'Content-Type: application/json' -d '{}' | jq -r .id ;;
  settle) [ $# -ge 3 ] || usage; settle "$2" "$3" "${4:-600}" ;;
  log) [ $# -eq 2 ] || usage; api GET "execution/$2/output?maxlines=10000" | jq -r '.entries[] | "\(.node // "-"): \(.log)"' ;;
  -h | --help) usage ;;
  *) usage ;;
esac
