#!/usr/bin/env bash
# Installs execgate on one Debian node from a built source tree (npm ci && npm run build).
#
#   deploy/install.sh --cluster cluster.yaml --node gw1 --host-keys DIR [--source DIR] [--dry-run]
#   deploy/install.sh --cluster cluster.yaml --role lb [--dry-run]     (an HAProxy node)
#   more options: --authorized-keys FILE [--ssh-user NAME] (the keys that may log in as the
#   SSH user NAME, default rundeck; installed as gateway.authorizedKeys with %u = NAME, by
#   default /etc/execgate/authorized_keys/NAME), --etcd-member (this gateway also runs the
#   etcd member named by leadership.etcd.endpoints), --sshd-not-on ADDR (sshd keeps port 22
#   on every other address, so execgate or haproxy can bind ADDR:22), --apt-update
#   (apt-get update first, e.g. on a fresh VM)
#
# Gateway nodes get: nodejs, keepalived, curl; the keepalived_script account; /etc/execgate
# with the cluster file and the ONE host key set of the cluster (execgate keygen --cluster,
# never per node: strict host key checking must survive a failover); the rendered
# keepalived.conf, systemd unit and audit logrotate config; net.ipv4.ip_nonlocal_bind=1 (execgate listens on the
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
authorized_keys=""
ssh_user=rundeck
etcd_member=0
sshd_not_on=""
apt_update=0
prefix=/opt/execgate
etc=/etc/execgate

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) cluster=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    --host-keys) host_keys=$2; shift 2 ;;
    --source) source_dir=$2; shift 2 ;;
    --role) role=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --authorized-keys) authorized_keys=$2; shift 2 ;;
    --ssh-user) ssh_user=$2; shift 2 ;;
    --etcd-member) etcd_member=1; shift ;;
    --sshd-not-on) sshd_not_on=$2; shift 2 ;;
    --apt-update) apt_update=1; shift ;;
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
  lb) if [ "$etcd_member" -eq 1 ] || [ -n "$authorized_keys" ]; then die "--etcd-member and --authorized-keys are for gateways"; fi ;;
  *) die "--role is gateway or lb" ;;
esac
[ -z "$authorized_keys" ] || [ -r "$authorized_keys" ] || die "cannot read $authorized_keys"
case "$ssh_user" in
  ''|-*|.|..|*/*|*:*|*[[:space:]]*) die "--ssh-user $ssh_user is not an account name" ;;
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
# etcd_env: /etc/default/etcd for this node's member (its address is in leadership.etcd.endpoints).
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
etcd_env() {
  "$node_bin" --input-type=module -e '
    const [lib, file, name] = process.argv.slice(1);
    const { loadClusterFile } = await import(lib);
    const c = loadClusterFile(file);
    const urls = (c.leadership.etcd?.endpoints ?? []).map((u) => new URL(u));
    const members = c.nodes.filter((n) => urls.some((u) => u.hostname === n.address));
    const me = members.find((n) => n.name === name);
    const client = urls.find((u) => u.hostname === me?.address);
    if (!me || !client) {
      console.error(`install.sh: node ${name} has no etcd endpoint in leadership.etcd.endpoints`);
      process.exit(2);
    }
    const peer = (n) => `http://${n.address}:2380`;
    console.log([
      `ETCD_NAME=${me.name}`,
      "ETCD_DATA_DIR=/var/lib/etcd/execgate",
      `ETCD_LISTEN_PEER_URLS=${peer(me)}`,
      `ETCD_INITIAL_ADVERTISE_PEER_URLS=${peer(me)}`,
      `ETCD_LISTEN_CLIENT_URLS=${client.origin},http://127.0.0.1:${client.port || 2379}`,
      `ETCD_ADVERTISE_CLIENT_URLS=${client.origin}`,
      `ETCD_INITIAL_CLUSTER=${members.map((n) => `${n.name}=${peer(n)}`).join(",")}`,
      "ETCD_INITIAL_CLUSTER_STATE=new",
      `ETCD_INITIAL_CLUSTER_TOKEN=${c.cluster}`,
    ].join("\n"));
  ' "$source_dir/dist/src/config/clusterLoad.js" "$cluster" "$node"
}
# keys_target: "per-user|shared|home" and the file --authorized-keys goes to: the cluster's
# gateway.authorizedKeys with %u = --ssh-user (one file per SSH user by default).
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
keys_target() {
  "$node_bin" --input-type=module -e '
    const [lib, paths, file, user] = process.argv.slice(1);
    const { loadClusterFile } = await import(lib);
    const { isPerUserPath, expandAuthorizedKeysPath } = await import(paths);
    const pattern = loadClusterFile(file).gateway.authorizedKeys;
    const kind = pattern.startsWith("%h/") ? "home" : isPerUserPath(pattern) ? "per-user" : "shared";
    console.log(`${kind}|${expandAuthorizedKeysPath(pattern, { user, home: "" })}`);
  ' "$source_dir/dist/src/config/clusterLoad.js" "$source_dir/dist/src/ssh/keysPath.js" "$cluster" "$ssh_user"
}
# sshd_listen ADDR: an sshd drop-in listening on every IPv4 address of this host but ADDR.
sshd_listen() {
  echo "# execgate: port 22 on $1 belongs to execgate/haproxy; sshd keeps the other addresses."
  ip -4 -o addr show | awk -v skip="$1" '{ split($4, a, "/"); if (a[1] != skip) print "ListenAddress " a[1] }'
  echo "ListenAddress ::"
}

if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then die "run as root (or with --dry-run)"; fi

# Validate first: an invalid cluster file stops here, before anything changes.
if [ "$role" = gateway ]; then
  render keepalived --node "$node" > /dev/null
  render systemd --node "$node" > /dev/null
  render logrotate > /dev/null
  [ "$etcd_member" -eq 0 ] || etcd_env > /dev/null
else
  render haproxy > /dev/null
fi

export DEBIAN_FRONTEND=noninteractive
[ "$apt_update" -eq 0 ] || run apt-get update -q
# Keep the node's sshd off ADDR:22 (a wildcard listener would refuse execgate's or haproxy's bind).
if [ -n "$sshd_not_on" ]; then
  sshd_listen "$sshd_not_on" | write /etc/ssh/sshd_config.d/60-execgate-listen.conf 0644
  run sshd -t
  run systemctl restart ssh.service
fi
if [ "$role" = lb ]; then
  run apt-get install -y --no-install-recommends haproxy netcat-openbsd
  run install -d -m 0755 /var/lib/haproxy
  run touch /var/lib/haproxy/server-state
  render haproxy | write /etc/haproxy/haproxy.cfg 0644
  run install -m 0755 "$source_dir/deploy/haproxy-save-state.sh" /usr/local/sbin/execgate-haproxy-save-state
  run install -d -m 0755 /etc/systemd/system/haproxy.service.d
  run install -m 0644 "$source_dir/deploy/haproxy/execgate-state.conf" /etc/systemd/system/haproxy.service.d/execgate-state.conf
  run haproxy -c -q -f /etc/haproxy/haproxy.cfg
  run systemctl daemon-reload
  run systemctl enable --now haproxy
  run systemctl reload haproxy
  echo "install.sh: load balancer ready; Prometheus can scrape haproxy on its stats port at /metrics"
  exit 0
fi

run apt-get install -y --no-install-recommends nodejs keepalived curl util-linux logrotate
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
# authorized_keys: root-owned and not group/world-writable, file and directories (execgate
# checks like sshd's StrictModes and refuses anything else).
keys=$(keys_target)
keys_kind=${keys%%|*}
keys_file=${keys#*|}
case "$keys_kind" in
  home) [ -z "$authorized_keys" ] || die "gateway.authorizedKeys is in each account's home (%h): put the keys there instead of --authorized-keys" ;;
  per-user)
    run install -d -m 0755 "$(dirname "$keys_file")"
    [ -z "$authorized_keys" ] || run install -m 0644 "$authorized_keys" "$keys_file" ;;
  shared)
    if [ -n "$authorized_keys" ]; then
      run install -m 0644 "$authorized_keys" "$keys_file"
    else
      [ -e "$keys_file" ] || run install -m 0644 /dev/null "$keys_file"
    fi ;;
esac
# The bearer token for /admin/* and command lines (gateway.http.tokenFile: /etc/execgate/http-token
# in the cluster file); kept across reinstalls, readable by root only.
if [ ! -e "$etc/http-token" ]; then
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' | write "$etc/http-token" 0600
fi
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
# The audit log: rotated by rename, the gateway reopens it (never copytruncate).
render logrotate | write /etc/logrotate.d/execgate 0644
run keepalived -t -e -f /etc/keepalived/keepalived.conf
if [ "$etcd_member" -eq 1 ]; then
  # A fresh data dir of its own: the package's first start made a one-member cluster.
  run apt-get install -y --no-install-recommends etcd-server
  etcd_env | write /etc/default/etcd 0644
  run systemctl enable etcd.service
  # --no-block: the member waits for its peers, which may not be installed yet.
  run systemctl restart --no-block etcd.service
fi
run systemctl daemon-reload
run systemctl enable --now execgate.service keepalived.service
echo "install.sh: $node installed; check the whole cluster with: $node_bin $prefix/dist/src/cli.js doctor --cluster $etc/cluster.yaml --node $node"
