import type { Cluster } from '../config/cluster.js';
import { assertRenderable, header } from './validate.js';

/**
 * haproxy.cfg for the load balancers: one TCP frontend for SSH, one backend of every
 * gateway; `balance first` sends new connections to the first server that answers 200
 * on `GET /leader` (the leader). With `http-check disable-on-404` a 404 takes a server
 * out of balancing at once without closing its sessions (HAProxy "stopping"): a
 * drained leader leaves through it once the next in line is UP (see
 * http/leaderCheck.ts; a DOWN server stays DOWN on 404 and needs `rise` 200s, so
 * rise defaults to 1: only a leader answers 200). Measured here: with a
 * one-entry stick table a stopping server kept receiving every new
 * connection, so a drain could not move traffic without closing sessions; there is no
 * stick table. 503 marks a server down after `fall` checks and closes its sessions.
 * Servers count as UP until their first check completes (2.6 has no init-state): the
 * gateway's own leader gate covers that window.
 */
export function renderHaproxy(cluster: Cluster, source?: string): string {
  assertRenderable(cluster, 'haproxy', source);
  const h = cluster.haproxy;
  const timeout = `${h.timeoutHours}h`;
  const serverOpts = [`inter ${h.interMs}ms`, `fastinter ${h.fastinterMs}ms`, `downinter ${h.downinterMs}ms`, `fall ${h.fall}`, `rise ${h.rise}`, 'on-marked-down shutdown-sessions'];
  if (h.sendProxy) serverOpts.push('send-proxy-v2');
  const bind = (port: number) => (h.bind === '*' ? `*:${port}` : `${h.bind}:${port}`);
  const lines = [
    header('#', cluster, 'haproxy'),
    cluster.loadBalancers.length
      ? `# For the load balancers ${cluster.loadBalancers.join(', ')} (the gateways must trust them: gateway.proxyProtocol.trustedProxies).`
      : '# No loadBalancers listed in the cluster file.',
    '# HAProxy is itself a single point of failure unless it sits behind its own VIP.',
    '',
    'global',
    '    log /dev/log local0',
    '    maxconn 20000',
    '    user haproxy',
    '    group haproxy',
    '    # A reload keeps servers that were DOWN as DOWN (dump "show servers state" here first).',
    `    server-state-file ${h.stateFile}`,
    '    stats socket /run/haproxy/admin.sock mode 660 level admin',
    '',
    'defaults',
    '    mode tcp',
    '    log global',
    '    timeout connect 2s',
    '    # Jobs may run silently for hours; TCP keepalive finds dead peers meanwhile.',
    `    timeout client ${timeout}`,
    `    timeout server ${timeout}`,
    // Longer than a check interval: a gateway busy for a moment is not marked down (and its sessions kept).
    `    timeout check ${Math.max(h.interMs, h.checkTimeoutMs)}ms`,
    '    option clitcpka',
    '    option srvtcpka',
    '    load-server-state-from-file global',
    '',
    'frontend execgate_ssh',
    `    bind ${bind(h.sshPort)}`,
    '    option tcplog',
    '    default_backend execgate',
    '',
    '# Only the leader answers 200 on /leader; never round-robin: all connections of a',
    '# Rundeck step must reach the same node.',
    'backend execgate',
    '    balance first',
    '    option httpchk GET /leader',
    '    # 404: no new connections, keep the sessions (the next in line; a drained leader leaving).',
    '    http-check disable-on-404',
    '    http-check expect status 200',
    `    default-server ${serverOpts.join(' ')}`,
    ...cluster.nodes.map((n) => `    server ${n.name} ${n.address}:${n.sshPort} check port ${n.httpPort}`),
    '',
    'frontend stats',
    '    mode http',
    `    bind ${bind(h.statsPort)}`,
    '    timeout client 30s',
    '    no log',
    '    http-request use-service prometheus-exporter if { path /metrics }',
    '    stats enable',
    '    stats uri /stats',
    '    stats refresh 5s',
    '',
  ];
  return lines.join('\n');
}
