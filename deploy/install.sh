#!/usr/bin/env bash
# Installs execgate on one Debian node: the execgate package, then this node's cluster part.
#
#   deploy/install.sh --cluster cluster.yaml --node gw1 --host-keys DIR [--package FILE] [--dry-run]
#   deploy/install.sh --cluster cluster.yaml --role lb [--package FILE] [--dry-run]   (an HAProxy node)
#   more options: --authorized-keys FILE [--ssh-user NAME] (the keys that may log in as the
#   SSH user NAME, default rundeck; installed as gateway.authorizedKeys with %u = NAME, by
#   default /etc/execgate/authorized_keys/NAME), --etcd-member (this gateway also runs the
#   etcd member named by leadership.etcd.endpoints), --etcd-certs DIR (what "execgate certs
#   --cluster FILE --dir DIR" made: this node's etcd client certificate, the CA and the etcd
#   password; required when the etcd endpoints are https), --token-file FILE (the cluster's
#   token, the same file on every node: installed as /etc/execgate/http-token; without it the
#   first install writes a random one, copy it to the others), --etcd-setup (after this node,
#   run "execgate etcd-setup --apply" with DIR/etcd-root-password, retried while etcd forms its
#   quorum: give it on the last node installed), --sshd-not-on ADDR (sshd keeps port 22
#   on every other address, so execgate or haproxy can bind ADDR:22), --apt-update
#   (apt-get update first, e.g. on a fresh VM), --source DIR (the checkout; default: this one)
#
# Gateway nodes get the execgate package (--package FILE, or the checkout's
# artifacts/execgate_<version>_<arch>.deb from "npm run package") through apt-get, so Debian
# resolves its dependencies, with keepalived, curl and logrotate; then /etc/execgate/cluster.yaml,
# the ONE host key set of the cluster (execgate keygen --cluster, never per node: strict host
# key checking must survive a failover), the authorized keys, the run-as accounts the cluster
# names (created when missing), the rendered keepalived.conf, systemd unit and audit
# logrotate config, and the etcd member config. Load balancer nodes get haproxy and the
# haproxy.cfg the package's runtime renders (unpacked, not installed). With --etcd-certs the
# node's etcd TLS files and password go to /etc/execgate/etcd/ (and, with --etcd-member, the
# member's certificate to /etc/etcd/execgate/; the member then serves only mutual TLS); run
# "execgate etcd-setup --cluster FILE --apply" once for the cluster afterwards
# (docs/etcd-security.md). Works in a root
# without a running systemd (chroot, image build): systemctl steps are then skipped with a
# line saying so. --dry-run prints every step instead.
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
etcd_certs=""
token_file=""
etcd_setup=0
sshd_not_on=""
apt_update=0
package=""
prefix=/opt/execgate
etc=/etc/execgate
member_dir=/etc/etcd/execgate
etcd_mode=none

usage() { sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cluster) cluster=$2; shift 2 ;;
    --node) node=$2; shift 2 ;;
    --host-keys) host_keys=$2; shift 2 ;;
    --source) source_dir=$2; shift 2 ;;
    --package) package=$2; shift 2 ;;
    --role) role=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --authorized-keys) authorized_keys=$2; shift 2 ;;
    --ssh-user) ssh_user=$2; shift 2 ;;
    --etcd-member) etcd_member=1; shift ;;
    --etcd-certs) etcd_certs=$2; shift 2 ;;
    --token-file) token_file=$2; shift 2 ;;
    --etcd-setup) etcd_setup=1; shift ;;
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
  lb) if [ "$etcd_member" -eq 1 ] || [ -n "$authorized_keys" ] || [ -n "$etcd_certs" ]; then die "--etcd-member, --etcd-certs and --authorized-keys are for gateways"; fi ;;
  *) die "--role is gateway or lb" ;;
esac
[ -z "$authorized_keys" ] || [ -r "$authorized_keys" ] || die "cannot read $authorized_keys"
[ -z "$token_file" ] || [ -r "$token_file" ] || die "cannot read --token-file $token_file"
case "$ssh_user" in
  ''|-*|.|..|*/*|*:*|*[[:space:]]*) die "--ssh-user $ssh_user is not an account name" ;;
esac
[ -z "$package" ] || [ -r "$package" ] || die "cannot read --package $package"

# The package: --package FILE, else the one "npm run package" builds in the checkout.
if [ -z "$package" ]; then
  arch=$(dpkg --print-architecture 2> /dev/null || echo amd64)
  version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$source_dir/package.json" 2> /dev/null | head -1)
  package="$source_dir/artifacts/execgate_${version:-VERSION}_$arch.deb"
fi
case "$package" in /*) ;; *) package="$PWD/$package" ;; esac
# The renderer: the package's own runtime and dist/, unpacked in a scratch directory (what
# will be installed renders and validates, before anything changes). A dry run without a
# package renders with the checkout's dist/ and this host's node.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/execgate-install.XXXXXX")
policy_made=0
cleanup() {
  rm -rf "$scratch"
  if [ "$policy_made" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
if [ -f "$package" ]; then
  dpkg-deb -x "$package" "$scratch" || die "$package is not a Debian package (dpkg-deb -x failed)"
  app="$scratch$prefix"
  node_bin="$app/node/bin/node"
  if [ ! -x "$node_bin" ] || [ ! -f "$app/dist/src/cli.js" ]; then
    die "$package is not an execgate package (no $prefix/node/bin/node, $prefix/dist/src/cli.js)"
  fi
elif [ "$dry_run" -eq 1 ] && [ -f "$source_dir/dist/src/cli.js" ]; then
  app="$source_dir"
  node_bin=$(command -v node || echo /usr/bin/node)
  echo "install.sh: dry run without $package: rendering with $node_bin and $source_dir/dist"
else
  die "no package at $package: build it (npm run package, on a host with Node 20 and build tools) or give --package FILE"
fi
cli="$app/dist/src/cli.js"

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
# apt_install PACKAGES...: apt-get install. Without a running systemd (chroot, image
# build) no package may start its service there: a policy-rc.d refuses for the duration.
apt_install() {
  if [ "$dry_run" -eq 0 ] && [ ! -d /run/systemd/system ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    echo "install.sh: systemd is not running here: the packages' services are not started (a temporary /usr/sbin/policy-rc.d)"
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy_made=1
  fi
  run apt-get install -y --no-install-recommends "$@"
  if [ "$policy_made" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; policy_made=0; fi
}
# sysd ARGS...: systemctl ARGS, or a line saying why not when systemd is not running
# (chroot, container or image build): enable and start it on the booted host instead.
sysd() {
  if [ "$dry_run" -eq 1 ] || [ -d /run/systemd/system ]; then
    run systemctl "$@"
  else
    echo "install.sh: systemd is not running here (no /run/systemd/system): skipped: systemctl $*"
  fi
}
# etcd_env: /etc/default/etcd for this node's member (its address is in leadership.etcd.endpoints).
# https endpoints: mutual TLS for clients and peers with the files of $member_dir (the loopback
# listener is dropped: the member's certificate need not name 127.0.0.1, and every client needs
# a certificate anyway); http endpoints (insecure: true): the plain configuration.
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
etcd_env() {
  "$node_bin" --input-type=module -e '
    const [lib, file, name, dir] = process.argv.slice(1);
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
    const tls = client.protocol === "https:";
    const scheme = tls ? "https" : "http";
    const peer = (n) => `${scheme}://${n.address}:2380`;
    console.log([
      `ETCD_NAME=${me.name}`,
      "ETCD_DATA_DIR=/var/lib/etcd/execgate",
      `ETCD_LISTEN_PEER_URLS=${peer(me)}`,
      `ETCD_INITIAL_ADVERTISE_PEER_URLS=${peer(me)}`,
      `ETCD_LISTEN_CLIENT_URLS=${client.origin}${tls ? "" : `,http://127.0.0.1:${client.port || 2379}`}`,
      `ETCD_ADVERTISE_CLIENT_URLS=${client.origin}`,
      `ETCD_INITIAL_CLUSTER=${members.map((n) => `${n.name}=${peer(n)}`).join(",")}`,
      "ETCD_INITIAL_CLUSTER_STATE=new",
      `ETCD_INITIAL_CLUSTER_TOKEN=${c.cluster}`,
      ...(tls
        ? [
            `ETCD_CERT_FILE=${dir}/server.pem`,
            `ETCD_KEY_FILE=${dir}/server-key.pem`,
            `ETCD_TRUSTED_CA_FILE=${dir}/ca.pem`,
            "ETCD_CLIENT_CERT_AUTH=true",
            `ETCD_PEER_CERT_FILE=${dir}/server.pem`,
            `ETCD_PEER_KEY_FILE=${dir}/server-key.pem`,
            `ETCD_PEER_TRUSTED_CA_FILE=${dir}/ca.pem`,
            "ETCD_PEER_CLIENT_CERT_AUTH=true",
          ]
        : []),
    ].join("\n"));
  ' "$app/dist/src/config/clusterLoad.js" "$cluster" "$node" "${member_dir:-/etc/etcd/execgate}"
}
# etcd_transport: "https", "http" (insecure: true) or "none": how the cluster's gateways reach
# etcd (leadership.etcd in etcd mode, and run-once's: gateway.runOnce.etcd, else leadership.etcd).
etcd_transport() {
  "$node_bin" --input-type=module -e '
    const { loadClusterFile } = await import(process.argv[1]);
    const c = loadClusterFile(process.argv[2]);
    const runOnce = c.gateway.runOnce.enabled ? (c.gateway.runOnce.etcd ?? c.leadership.etcd) : undefined;
    const blocks = [c.leadership.source === "etcd" ? c.leadership.etcd : undefined, runOnce].filter(Boolean);
    const urls = blocks.flatMap((b) => b.endpoints);
    console.log(urls.length === 0 ? "none" : urls.some((u) => u.startsWith("https:")) ? "https" : "http");
  ' "$app/dist/src/config/clusterLoad.js" "$cluster"
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
  ' "$app/dist/src/config/clusterLoad.js" "$app/dist/src/config/authorizedKeysPath.js" "$cluster" "$ssh_user"
}
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
# run_as_accounts: the local accounts commands run as, one a line: runAs.user, the
# runAs.accounts targets, or (neither: the SSH username is the account) --ssh-user.
run_as_accounts() {
  "$node_bin" --input-type=module -e '
    const [lib, file, sshUser] = process.argv.slice(1);
    const { loadClusterFile } = await import(lib);
    const r = loadClusterFile(file).gateway.runAs;
    const names = r.user ? [r.user] : r.accounts ? Object.values(r.accounts) : [sshUser];
    for (const n of new Set(names)) console.log(`${n}\t${r.user ? "runAs.user" : r.accounts ? "runAs.accounts" : "the SSH user, --ssh-user"}`);
  ' "$app/dist/src/config/clusterLoad.js" "$cluster" "$ssh_user"
}
# vrrp_script_user: keepalived's vrrp_script account (vrrp.scriptUser).
vrrp_script_user() {
  "$node_bin" --input-type=module -e '
    const { loadClusterFile } = await import(process.argv[1]);
    console.log(loadClusterFile(process.argv[2]).vrrp?.scriptUser ?? "keepalived_script");
  ' "$app/dist/src/config/clusterLoad.js" "$cluster"
}
# single_gateway: "yes" for one node with static leadership: a single gateway, no VRRP
# (keepalived has no peer; the renderer refuses a keepalived.conf for fewer than 2 nodes).
single_gateway() {
  "$node_bin" --input-type=module -e '
    const { loadClusterFile } = await import(process.argv[1]);
    const c = loadClusterFile(process.argv[2]);
    console.log(c.nodes.length === 1 && c.leadership.source === "static" ? "yes" : "no");
  ' "$app/dist/src/config/clusterLoad.js" "$cluster"
}
# sshd_listen ADDR: an sshd drop-in listening on every IPv4 address of this host but ADDR.
sshd_listen() {
  echo "# execgate: port 22 on $1 belongs to execgate/haproxy; sshd keeps the other addresses."
  ip -4 -o addr show | awk -v skip="$1" '{ split($4, a, "/"); if (a[1] != skip) print "ListenAddress " a[1] }'
  echo "ListenAddress ::"
}

if [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then die "run as root (or with --dry-run)"; fi

# Validate first: an invalid cluster file stops here, before anything changes.
single=no
if [ "$role" = gateway ]; then
  single=$(single_gateway)
  [ "$single" = no ] || echo "install.sh: one node with static leadership: a single gateway, no keepalived.conf (no VIP failover)"
  [ "$single" = yes ] || render keepalived --node "$node" > /dev/null
  render systemd --node "$node" > /dev/null
  render logrotate > /dev/null
  [ "$etcd_member" -eq 0 ] || etcd_env > /dev/null
  etcd_mode=$(etcd_transport)
  if [ "$etcd_mode" = https ]; then
    [ -n "$etcd_certs" ] || die "the cluster's etcd endpoints are https: give --etcd-certs DIR, the directory \"execgate certs --cluster $cluster --dir DIR\" made (once, for the whole cluster; docs/etcd-security.md)"
    for f in ca.pem "gateways/$node.pem" "gateways/$node-key.pem" etcd-password; do
      [ -r "$etcd_certs/$f" ] || die "no $etcd_certs/$f: --etcd-certs is the directory execgate certs --cluster $cluster --dir DIR made (is $node in the cluster file it was made from?)"
    done
    if [ "$etcd_member" -eq 1 ]; then
      for f in "etcd/$node.pem" "etcd/$node-key.pem"; do
        [ -r "$etcd_certs/$f" ] || die "no $etcd_certs/$f: the etcd member certificate of $node (execgate certs names each member after the node whose address is its endpoint)"
      done
    fi
    if [ "$etcd_setup" -eq 1 ] && [ ! -r "$etcd_certs/etcd-root-password" ]; then die "--etcd-setup needs $etcd_certs/etcd-root-password (execgate certs writes it)"; fi
  elif [ -n "$etcd_certs" ]; then
    echo "install.sh: the cluster's etcd endpoints are not https ($etcd_mode): --etcd-certs is not used"
    etcd_certs=""
  fi
else
  render haproxy > /dev/null
fi

export DEBIAN_FRONTEND=noninteractive
[ "$apt_update" -eq 0 ] || run apt-get update -q
# Keep the node's sshd off ADDR:22 (a wildcard listener would refuse execgate's or haproxy's bind).
if [ -n "$sshd_not_on" ]; then
  sshd_listen "$sshd_not_on" | write /etc/ssh/sshd_config.d/60-execgate-listen.conf 0644
  run sshd -t
  sysd restart ssh.service
fi
if [ "$role" = lb ]; then
  apt_install haproxy netcat-openbsd
  run install -d -m 0755 /var/lib/haproxy
  run touch /var/lib/haproxy/server-state
  render haproxy | write /etc/haproxy/haproxy.cfg 0644
  run install -m 0755 "$source_dir/deploy/haproxy-save-state.sh" /usr/local/sbin/execgate-haproxy-save-state
  run install -d -m 0755 /etc/systemd/system/haproxy.service.d
  run install -m 0644 "$source_dir/deploy/haproxy/execgate-state.conf" /etc/systemd/system/haproxy.service.d/execgate-state.conf
  run haproxy -c -q -f /etc/haproxy/haproxy.cfg
  sysd daemon-reload
  sysd enable --now haproxy
  sysd reload haproxy
  echo "install.sh: load balancer ready; Prometheus can scrape haproxy on its stats port at /metrics"
  exit 0
fi

# The package brings /opt/execgate, /usr/bin/execgate, the directories and the system
# account keepalived_script; it never starts the gateway.
[ -f "$package" ] || echo "install.sh: (dry run) the package would be $package"
apt_install "$package" keepalived curl logrotate
script_user=$(vrrp_script_user)
if [ "$script_user" != keepalived_script ] && ! getent passwd "$script_user" > /dev/null; then
  echo "install.sh: creating the account $script_user (vrrp.scriptUser: keepalived runs the /healthz check as it)"
  run useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$script_user"
fi
# The accounts commands run as: created when missing (the gateway refuses to start without them).
# (A file, not <(...): a fresh root may have no /dev/fd.)
run_as_accounts > "$scratch/accounts"
while IFS=$'\t' read -r account why; do
  [ "$account" != root ] || continue
  if getent passwd "$account" > /dev/null; then
    echo "install.sh: commands run as $account ($why): the account exists"
  else
    echo "install.sh: creating the account $account ($why in $cluster): commands run as it, home /home/$account, shell /bin/bash"
    run useradd --create-home --user-group --shell /bin/bash "$account"
  fi
done < "$scratch/accounts"
# Made by the package; again here for a dry run's record and a node whose operator removed one.
run install -d -m 0750 "$etc"
run install -d -m 0700 "$etc/host-keys"
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
# The cluster's token (gateway.http.tokenFile: /etc/execgate/http-token in the cluster file):
# admin calls and command lines need it, and peers send it to each other, so every node has the
# same one: --token-file FILE, else kept across reinstalls, else a random one to copy to the others.
token_made=0
if [ -n "$token_file" ]; then
  run install -m 0600 "$token_file" "$etc/http-token"
elif [ ! -e "$etc/http-token" ]; then
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' | write "$etc/http-token" 0600
  token_made=1
fi
# etcd: this node's client certificate (no CN), the CA and the etcd user's password, at the
# paths leadership.etcd.tls and auth default to; the key and password readable by root only.
if [ -n "$etcd_certs" ]; then
  run install -d -m 0700 "$etc/etcd"
  run install -m 0644 "$etcd_certs/ca.pem" "$etc/etcd/ca.pem"
  run install -m 0644 "$etcd_certs/gateways/$node.pem" "$etc/etcd/client.pem"
  run install -m 0600 "$etcd_certs/gateways/$node-key.pem" "$etc/etcd/client-key.pem"
  run install -m 0600 "$etcd_certs/etcd-password" "$etc/etcd/password"
fi
# /run/execgate (tmpfiles), net.ipv4.ip_nonlocal_bind (sysctl.d) and /etc/logrotate.d come
# with the package; the unit, keepalived.conf and logrotate config are this cluster's.
# /run/execgate (tmpfiles.d makes it at boot) for the track_file and notify FIFO now.
run install -d -m 0755 /run/execgate /etc/keepalived
[ "$single" = yes ] || render keepalived --node "$node" | write /etc/keepalived/keepalived.conf 0644
run install -d -m 0755 /etc/systemd/system
render systemd --node "$node" | write /etc/systemd/system/execgate.service 0644
# The audit log: rotated by rename, the gateway reopens it (never copytruncate).
render logrotate | write /etc/logrotate.d/execgate 0644
# keepalived's own check. keepalived 2.2.7 (Debian 12) -t SIGTERMs its whole process group
# when script_user is not root: check the same file with script_user root, in a session of
# its own, so that bug can neither fail the check nor kill this script.
if [ "$single" = no ]; then
  render keepalived --node "$node" | sed 's/^\([[:space:]]*script_user\)[[:space:]].*$/\1 root/' > "$scratch/keepalived-check.conf"
  run setsid --wait keepalived -t -e -f "$scratch/keepalived-check.conf"
fi
if [ "$etcd_member" -eq 1 ]; then
  # A fresh data dir of its own: the package's first start made a one-member cluster.
  apt_install etcd-server
  if [ -n "$etcd_certs" ]; then
    # The member's server and peer certificate: readable by the etcd account (the package made it).
    run install -d -m 0750 -o root -g etcd "$member_dir"
    run install -m 0644 "$etcd_certs/ca.pem" "$member_dir/ca.pem"
    run install -m 0644 "$etcd_certs/etcd/$node.pem" "$member_dir/server.pem"
    run install -m 0640 -o root -g etcd "$etcd_certs/etcd/$node-key.pem" "$member_dir/server-key.pem"
  fi
  etcd_env | write /etc/default/etcd 0644
  sysd enable etcd.service
  # --no-block: the member waits for its peers, which may not be installed yet.
  sysd restart --no-block etcd.service
fi
sysd daemon-reload
units=(execgate.service)
[ "$single" = yes ] || units+=(keepalived.service)
sysd enable --now "${units[@]}"
if [ "$dry_run" -eq 0 ] && [ ! -d /run/systemd/system ]; then
  echo "install.sh: not started (no systemd here); on the booted host: systemctl enable --now ${units[*]}"
fi
echo "install.sh: $node installed; check the whole cluster with: execgate doctor --cluster $etc/cluster.yaml --node $node"
if [ "$etcd_mode" = https ] && [ "$etcd_setup" -eq 1 ]; then
  # The members start together: retry while they form a quorum (up to about a minute).
  setup=(execgate etcd-setup --cluster "$etc/cluster.yaml" --apply --root-password-file "$etcd_certs/etcd-root-password")
  printf '+ %s\n' "${setup[*]}"
  if [ "$dry_run" -eq 0 ]; then
    tries=0
    until "${setup[@]}"; do
      tries=$((tries + 1))
      [ "$tries" -lt 30 ] || die "execgate etcd-setup kept failing; run it by hand once every etcd member is up: ${setup[*]}"
      sleep 2
    done
  fi
  etcd_mode=set-up
fi
if [ "$token_made" -eq 1 ]; then
  echo "install.sh: wrote a new cluster token to $etc/http-token: every node needs the same one (peers refuse each other otherwise); install the others with --token-file pointing to a copy of it"
fi
if [ "$etcd_mode" = https ]; then
  echo "install.sh: once every etcd member is installed, run once for the cluster (it makes the etcd user and role and turns authentication on): execgate etcd-setup --cluster $etc/cluster.yaml --apply --root-password-file $etcd_certs/etcd-root-password"
fi
