#!/usr/bin/env bash
# Installs execgate on one Debian node from a built source tree (npm ci && npm run build).
#
#   deploy/install.sh --cluster cluster.yaml --node gw1 --host-keys DIR [--source DIR] [--dry-run]
#   deploy/install.sh --cluster cluster.yaml --role lb [--dry-run]     (an HAProxy node)
#
# Gateway nodes get: nodejs, keepalived, curl; the keepalived_script account; /etc/execgate
# with the cluster file and the ONE host key set of the cluster (execgate keygen --cluster,
# never per node: strict host key checking must survive a failover); the rendered
# keepalived.conf and systemd unit; net.ipv4.ip_nonlocal_bind=1 (execgate listens on the
# VIP before it arrives). Load balancer nodes get haproxy and the rendered haproxy.cfg.
# --dry-run prints every step instead of doing it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(dirname "$here")
cluster=""
node=""
host_keys=""
role="gateway"
dry_run=0
prefix=/opt/execgate
etc=/etc/execgate

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) cluster=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    --host-keys) host_keys=$2; shift 2 ;;
    --source) source_dir=$2; shift 2 ;;
    --role) role=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; usage ;;
  esac
done

die() { echo "install.sh: $*" >&2; exit 2; }
[ -n "$cluster" ] || die "--cluster FILE is required"
[ -r "$cluster" ] || die "cannot read $cluster"
case "$role" in
  gateway) [ -n "$node" ] || die "--node NAME is required for a gateway"
           [ -n "$host_keys" ] || die "--host-keys DIR is required (make it once: execgate keygen --cluster $cluster)" ;;
  lb) ;;
  *) die "--role is gateway or lb" ;;
esac
cli="$source_dir/dist/src/cli.js"
[ -f "$cli" ] || die "$cli not found: build first (npm ci && npm run build)"
node_bin=$(command -v node || echo /usr/bin/node)

# run CMD...: print it; run it unless --dry-run.
run() {
  printf '+ %s\n' "$*"
  if [ "$dry_run" -eq 0 ]; then "$@"; fi
}
# write PATH MODE < text
write() {
  local path=$1 mode=$2 text
  text=$(cat)
  printf '+ write %s (mode %s)\n' "$path" "$mode"
  if [ "$dry_run" -eq 0 ]; then
    printf '%s\n' "$text" > "$path.tmp.$$"
    chmod "$mode" "$path.tmp.$$"
    mv -f "$path.tmp.$$" "$path"
  fi
}
# render WHAT [ARGS...]: the generated file on stdout (read-only, also in --dry-run).
render() { "$node_bin" "$cli" render "$@" --cluster "$cluster"; }

if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then die "run as root (or with --dry-run)"; fi

# Validate first: an invalid cluster file stops here, before anything changes.
if [ "$role" = gateway ]; then
  render keepalived --node "$node" > /dev/null
  render systemd --node "$node" > /dev/null
else
  render haproxy > /dev/null
fi

export DEBIAN_FRONTEND=noninteractive
if [ "$role" = lb ]; then
  run apt-get install -y --no-install-recommends haproxy netcat-openbsd
  run install -d -m 0755 /var/lib/haproxy
  run touch /var/lib/haproxy/server-state
  render haproxy | write /etc/haproxy/haproxy.cfg 0644
  run install -m 0755 "$here/haproxy-save-state.sh" /usr/local/sbin/execgate-haproxy-save-state
  run install -d -m 0755 /etc/systemd/system/haproxy.service.d
  run install -m 0644 "$here/haproxy/execgate-state.conf" /etc/systemd/system/haproxy.service.d/execgate-state.conf
  run haproxy -c -q -f /etc/haproxy/haproxy.cfg
  run systemctl daemon-reload
  run systemctl enable --now haproxy
  run systemctl reload haproxy
  echo "install.sh: load balancer ready; Prometheus can scrape haproxy on its stats port at /metrics"
  exit 0
fi

run apt-get install -y --no-install-recommends nodejs keepalived curl util-linux
if ! getent passwd keepalived_script > /dev/null; then
  run useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin keepalived_script
fi
run install -d -m 0755 "$prefix"
run cp -a "$source_dir/dist" "$source_dir/node_modules" "$source_dir/package.json" "$prefix/"
run install -d -m 0750 "$etc"
run install -d -m 0700 "$etc/host-keys" /var/lib/execgate
run install -d -m 0750 /var/log/execgate
run install -m 0640 "$cluster" "$etc/cluster.yaml"
for key in "$host_keys"/ssh_host_*_key; do
  [ -e "$key" ] || die "no ssh_host_*_key in $host_keys"
  run install -m 0600 "$key" "$etc/host-keys/"
  run install -m 0644 "$key.pub" "$etc/host-keys/"
done
[ -e "$etc/authorized_keys" ] || run install -m 0644 /dev/null "$etc/authorized_keys"
# /run/execgate holds the track_file and keepalived's notify FIFO; keepalived may start first.
write /etc/tmpfiles.d/execgate.conf 0644 <<'CONF'
d /run/execgate 0755 root root -
CONF
run systemd-tmpfiles --create /etc/tmpfiles.d/execgate.conf
write /etc/sysctl.d/60-execgate.conf 0644 <<'CONF'
# execgate listens on the VIP before keepalived assigns it.
net.ipv4.ip_nonlocal_bind = 1
CONF
run sysctl -q -p /etc/sysctl.d/60-execgate.conf
render keepalived --node "$node" | write /etc/keepalived/keepalived.conf 0644
render systemd --node "$node" | write /etc/systemd/system/execgate.service 0644
run keepalived -t -e -f /etc/keepalived/keepalived.conf
run systemctl daemon-reload
run systemctl enable --now execgate.service keepalived.service
echo "install.sh: $node installed; check the whole cluster with: $node_bin $prefix/dist/src/cli.js doctor --cluster $etc/cluster.yaml --node $node"
