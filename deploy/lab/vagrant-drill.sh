#!/usr/bin/env bash
# The failover drill on the Vagrant lab, run from the host in this checkout after
# `vagrant up` (docs/lab.md):
#
#   deploy/lab/vagrant-drill.sh [--scenarios "kill link drain"] [--link-down SECONDS]
#
# For each scenario it starts Rundeck's example job (execgate/execgate-demo, a 30 s
# script step through the VIP, retried up to 3 times), waits until the step runs on the
# leader, then faults the leader:
#   kill   SIGKILL to execgate's whole unit (gateway and its commands; systemd restarts it)
#   link   pulls the leader's link on the private network for --link-down s (default 15)
#   drain  execgate drain --wait on the leader (running commands finish), then undrain
# It times the failover from the rundeck VM (GET /leader on every gateway every 100 ms:
# the gap between the old leader's last and the new leader's first 200), waits for the
# job and its retries, and prints the executions and what each gateway's audit log says
# ran, with its fencing token.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

scenarios="kill link drain"
link_down=15
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) scenarios=$2; shift 2 ;;
    --link-down) link_down=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vagrant-drill.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for s in $scenarios; do
  case "$s" in kill | link | drain) ;; *) echo "vagrant-drill.sh: unknown scenario $s (kill, link, drain)" >&2; exit 2 ;; esac
done

demo_job=5d0c6a1e-7f21-4a53-9c1e-e9ec0a7e0001 # deploy/lab/vagrant/rundeck.sh
lab_dir="${VAGRANT_DOTFILE_PATH:-.vagrant}/execgate-lab"
cluster="$lab_dir/cluster.yaml"
watch_log=/run/execgate-drill-leaders.log
interval_ms=100
[ -r "$cluster" ] || { echo "vagrant-drill.sh: $cluster is missing: run vagrant up first" >&2; exit 2; }
command -v node > /dev/null || { echo "vagrant-drill.sh: needs node on the host (as the build does)" >&2; exit 2; }

# Facts from the lab's cluster file (the example cluster plus the lab overrides).
# shellcheck disable=SC2016 # JavaScript template literals
facts=$(node --input-type=module -e '
  const { loadClusterFile } = await import(process.argv[1]);
  const c = loadClusterFile(process.argv[2]);
  console.log(`audit ${c.gateway.audit.path}`);
  console.log(`iface ${c.vip.interface}`);
  console.log(`token ${c.gateway.http.token ?? ""}`);
  console.log(`cli ${c.systemd.cli}`);
  for (const n of c.nodes) console.log(`node ${n.name} http://${n.address}:${n.httpPort}`);
' "$PWD/dist/src/config/clusterLoad.js" "$cluster")
fact() { awk -v k="$1" '$1 == k { print $2 }' <<< "$facts"; }
audit=$(fact audit)
iface=$(fact iface)
http_token=$(fact token)
cli=$(fact cli)
names=()
urls=()
while read -r _ name url; do names+=("$name"); urls+=("$url"); done < <(grep '^node ' <<< "$facts")
url_of() { local i; for i in "${!names[@]}"; do [ "${names[$i]}" = "$1" ] && echo "${urls[$i]}"; done; }

on() { local m=$1; shift; vagrant ssh "$m" -c "$*" 2> /dev/null; }
rd() { on rundeck "sudo execgate-lab-rundeck $*"; }
now_ms() { on rundeck 'date +%s%3N' | tr -d '\r'; }
leaders_now() { on rundeck "tail -n 1 $watch_log" | tr -d '\r' | awk '{ print $2 }'; }

pairs=()
for i in "${!names[@]}"; do pairs+=("${names[$i]}=${urls[$i]}"); done
echo "== starting the leader watch on the rundeck VM (every ${interval_ms} ms: ${names[*]})"
on rundeck "sudo systemctl stop execgate-drill-watch.service >/dev/null 2>&1 || true; sudo systemctl reset-failed execgate-drill-watch.service >/dev/null 2>&1 || true"
on rundeck "sudo systemd-run --quiet --unit execgate-drill-watch bash /vagrant/deploy/lab/vagrant/leader-watch.sh $watch_log $interval_ms ${pairs[*]}"
stop_watch() { on rundeck 'sudo systemctl stop execgate-drill-watch.service' > /dev/null || true; }
trap stop_watch EXIT
sleep 2

results=()
first_exec=""
for scenario in $scenarios; do
  leader=""
  for _ in $(seq 60); do
    l=$(leaders_now)
    if [ -n "$l" ] && [ "$l" != - ] && [[ "$l" != *,* ]]; then leader=$l; break; fi
    sleep 2
  done
  [ -n "$leader" ] || { echo "vagrant-drill.sh: no single leader (watch says: $(leaders_now)); check execgate doctor" >&2; exit 1; }
  echo
  echo "== $scenario: leader is $leader; starting execgate-demo"
  exec_id=$(rd run "$demo_job" | tr -d '\r')
  [ -n "$first_exec" ] || first_exec=$exec_id
  echo "   Rundeck execution $exec_id"
  # The step runs once its dispatch script was uploaded and chmod-ed (two audit lines).
  for _ in $(seq 45); do
    n=$(on "$leader" "sudo grep -c -- '-$exec_id-' $audit || true" | tr -d '\r')
    [ "${n:-0}" -ge 2 ] && break
    sleep 2
  done
  sleep 3
  t_fault=$(now_ms)
  case "$scenario" in
    kill)
      echo "   SIGKILL to execgate.service on $leader"
      on "$leader" 'sudo systemctl kill --signal=SIGKILL execgate.service' ;;
    link)
      echo "   $leader: ip link set $iface down for ${link_down} s"
      on "$leader" "sudo sh -c 'ip link set $iface down; sleep $link_down; ip link set $iface up'" ;;
    drain)
      echo "   execgate drain --wait on $leader (the running step finishes first)"
      on "$leader" "sudo EXECGATE_HTTP_TOKEN=$http_token node $cli drain --wait --url $(url_of "$leader")" || true ;;
  esac
  new=""
  for _ in $(seq 60); do
    l=$(leaders_now)
    if [ -n "$l" ] && [ "$l" != - ] && [ "$l" != "$leader" ] && [[ "$l" != *,* ]]; then new=$l; break; fi
    sleep 1
  done
  if [ "$scenario" = drain ]; then
    on "$leader" "sudo EXECGATE_HTTP_TOKEN=$http_token node $cli undrain --url $(url_of "$leader")" > /dev/null || true
  fi
  # Failover: from the old leader's last 200 (after the fault was issued) to the first
  # 200 from another node; two leaders in one sample would be a fencing failure.
  gap=$(on rundeck "cat $watch_log" | tr -d '\r' | awk -v t0="$t_fault" -v old="$leader" '
    $1 < t0 - 5000 { next }
    { n = split($2, l, ","); has_old = 0; other = "" }
    { for (i = 1; i <= n; i++) { if (l[i] == old) has_old = 1; else if (l[i] != "-") other = l[i] } }
    has_old && other != "" { both++ }
    has_old && other == "" && !done { last_old = $1 }
    other != "" && !done && $1 >= t0 - 1000 { first_new = $1; done = 1 }
    END { if (!done) print "none"; else printf "%d ms (%s)\n", first_new - last_old, (both ? "TWO LEADERS SEEN" : "never two leaders") }')
  echo "   new leader: ${new:-none}; failover $gap"
  echo "   Rundeck (the run and its retries: id status started ended):"
  if status=$(rd settle "$demo_job" "$exec_id" 600); then job=succeeded; else job=failed; fi
  while IFS= read -r line; do echo "     $line"; done <<< "$status"
  results+=("$scenario: $leader -> ${new:-none}, failover $gap, job $job")
done

echo
echo "== who ran what (audit logs, Rundeck executions >= $first_exec)"
printf '%-24s %-5s %-9s %-8s %-14s %-5s %s\n' time node execution token result exit command
for name in "${names[@]}"; do
  on "$name" "sudo cat $audit" | tr -d '\r' | node -e '
    const first = Number(process.argv[1]);
    const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
    for (const line of lines) {
      let a; try { a = JSON.parse(line); } catch { continue; }
      const m = /-(\d+)-[^/ ]*-dispatch-script/.exec(a.command ?? "");
      const exec = Number(a.rdJobExecId ?? (m ? m[1] : NaN));
      if (!(exec >= first)) continue;
      const cmd = String(a.command ?? "").replace(/\s+/g, " ").slice(0, 60);
      console.log([String(a.start ?? a.time).slice(0, 23).padEnd(24), String(a.node).padEnd(5), String(exec).padEnd(9),
        String(a.token ?? "-").padEnd(8), String(a.result).padEnd(14), String(a.exitStatus ?? "-").padEnd(5), cmd].join(" "));
    }
  ' "$first_exec" || echo "  (no audit log from $name)"
done | sort

echo
echo "== summary"
printf '  %s\n' "${results[@]}"
