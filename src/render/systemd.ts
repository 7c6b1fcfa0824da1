import { dirname } from 'node:path';
import type { Cluster } from '../config/cluster.js';
import { assertRenderable, findNode, header, watchdogSeconds } from './validate.js';

export interface SystemdRenderOptions {
  /** Override the node binary / CLI path (tests render with paths that exist). */
  nodeBinary?: string;
  cli?: string;
  source?: string;
}

/** Quote one argument for an Exec*= line (systemd's own word splitting). */
function arg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a.replace(/%/g, '%%') : `"${a.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

function ms(seconds: number): string {
  return `${Math.round(seconds * 1000)}ms`;
}

/**
 * The execgate unit for one node. What it guarantees:
 * - Restart=always: a crashed gateway is back within a second; ExecStopPost writes
 *   -254 to the track_file first, so its keepalived gives the VIP away at once.
 * - Type=notify + WatchdogSec (below lease TTL - margin in etcd mode) +
 *   WatchdogSignal=SIGKILL + KillMode=control-group: a gateway that stalls (GC pause,
 *   swap, SIGSTOP) is killed together with every command it started before its lease
 *   can expire and another node can lead.
 * - Hardening that commands cannot notice (they inherit the unit's sandbox).
 */
export function renderSystemd(cluster: Cluster, nodeName: string, options: SystemdRenderOptions = {}): string {
  assertRenderable(cluster, 'systemd', options.source);
  const node = findNode(cluster, nodeName);
  const s = cluster.systemd;
  const wd = watchdogSeconds(cluster);
  const etcd = cluster.leadership.source === 'etcd' ? cluster.leadership.etcd : undefined;
  const track = cluster.trackFile;
  const trackTmp = `${track}.tmp`;
  const runDir = dirname(track);
  const runtimeDirectory = runDir.startsWith('/run/') && runDir.split('/').length === 3 ? runDir.slice('/run/'.length) : null;
  const stateDirectory = cluster.stateDir.startsWith('/var/lib/') ? cluster.stateDir.slice('/var/lib/'.length) : null;
  const stopSeconds = Math.ceil(cluster.gateway.exec.killGraceSeconds) + 10;
  const execStart = [options.nodeBinary ?? s.nodeBinary, options.cli ?? s.cli, 'serve', '--cluster', s.clusterFile, '--node', node.name].map(arg).join(' ');
  const lines = [
    header('#', cluster, `systemd --node ${node.name}`),
    '[Unit]',
    `Description=execgate SSH execution gateway (cluster ${cluster.cluster}, node ${node.name})`,
    'Documentation=https://github.com/execgate/execgate',
    'After=network-online.target',
    'Wants=network-online.target',
    '# Never give up restarting: a stopped gateway only costs the cluster a standby.',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=notify',
    '# execgate sends READY=1 / WATCHDOG=1 / STOPPING=1 through a short-lived systemd-notify',
    '# child (Node has no unix datagram sockets), so the sender is not the main PID.',
    'NotifyAccess=all',
    `ExecStart=${execStart}`,
    '# Whatever ended the gateway (crash, watchdog, stop), its keepalived gives the VIP away now.',
    `ExecStopPost=/bin/sh -c 'echo -254 > ${trackTmp} && mv -f ${trackTmp} ${track}'`,
    "# systemctl reload (logrotate's postrotate): the gateway reopens its audit log on SIGHUP.",
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=always',
    'RestartSec=1',
    etcd
      ? `# Lease TTL ${etcd.ttlSeconds} s - margin ${etcd.marginSeconds} s = ${etcd.ttlSeconds - etcd.marginSeconds} s: a stalled leader is killed well before another can lead.`
      : '# A stalled gateway is killed (with its commands) and restarted.',
    `WatchdogSec=${ms(wd)}`,
    '# SIGKILL, not SIGABRT: a SIGSTOPped process cannot act on a catchable signal.',
    'WatchdogSignal=SIGKILL',
    '# Every process of the unit - the gateway and every command it started - dies with it.',
    'KillMode=control-group',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${stopSeconds}s`,
    'TimeoutStartSec=60s',
    '# Root: commands run as gateway.runAs accounts through setpriv (needs CAP_SETUID/CAP_SETGID).',
    'User=root',
    ...(runtimeDirectory
      ? [`RuntimeDirectory=${runtimeDirectory}`, 'RuntimeDirectoryMode=0755', '# Keep the track_file (and its -254) after the gateway stops; keepalived reads it.', 'RuntimeDirectoryPreserve=yes']
      : []),
    ...(stateDirectory ? [`StateDirectory=${stateDirectory}`, 'StateDirectoryMode=0700'] : []),
    'LogsDirectory=execgate',
    'LimitNOFILE=65536',
    '',
    '# Hardening. Commands inherit the unit\'s sandbox, so "standard" only sets what a job',
    '# cannot notice. Not set, on purpose:',
    '# - NoNewPrivileges: it would not break setpriv (dropping privileges is allowed under',
    '#   it), but it is inherited by every command, so sudo, su and ping inside jobs would fail.',
    '# - ProtectSystem/ProtectHome/PrivateTmp/PrivateDevices: jobs deploy software, use',
    '#   their home directories and leave files in /tmp for other programs.',
    '# - MemoryDenyWriteExecute: breaks the V8 JIT.',
    '# - UMask, OOMScoreAdjust: inherited by commands.',
    'LockPersonality=yes',
    'RestrictRealtime=yes',
    'SystemCallArchitectures=native',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectClock=yes',
  ];
  if (s.hardening === 'strict') {
    const rw = [...new Set([runDir, dirname(cluster.notifyFifo), cluster.stateDir, '/var/log/execgate', dirname(cluster.gateway.audit.path), ...s.readWritePaths])];
    lines.push(
      '# strict (systemd.hardening): commands can no longer use sudo/su, load modules or',
      '# write outside ReadWritePaths. setpriv still works: dropping privileges needs no new ones.',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=read-only',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'ProtectKernelTunables=yes',
      'ProtectControlGroups=yes',
      'RestrictSUIDSGID=yes',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
      `ReadWritePaths=${rw.map(arg).join(' ')}`,
      '# setpriv needs SETUID/SETGID; KILL signals commands of other accounts; the SSH port may be < 1024.',
      'CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_KILL CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH CAP_CHOWN CAP_FOWNER',
    );
  }
  lines.push('', '[Install]', 'WantedBy=multi-user.target', '');
  return lines.join('\n');
}
