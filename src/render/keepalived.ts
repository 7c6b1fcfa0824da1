import type { Cluster } from '../config/cluster.js';
import { assertRenderable, findNode, header, TRACK_FILE_LEADER_VALUE } from './validate.js';
import { TRACK_STANDBY, TRACK_STEP_DOWN } from '../leadership/keepalived/trackValues.js';

/** keepalived prints advert_int as given; keep a stable, short form (0.2, 1). */
function seconds(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

/**
 * keepalived.conf for one node. Every choice here was measured (docs/failover.md, docs/lab.md):
 * - track_file is the fast path: execgate writes 100 (leader), 0 (standby) or -254
 *   (stepping down: FAULT and an immediate priority-0 advert); weight 1 adds the value.
 * - the /healthz vrrp_script is the slow backstop (whole-second interval) with
 *   weight 0, so `fall` failures mean FAULT (fast handoff) rather than a lower priority.
 * - vrrp_higher_prio_send_advert + vrrp_garp_lower_prio_repeat: without them a healed
 *   partition left clients on the wrong node for ~44 s.
 * - every node starts as BACKUP: the highest effective priority wins after the
 *   master-down timer, and nopreempt/preempt_delay require BACKUP anyway.
 * - nopreempt by default in vrrp mode: whichever backup becomes master keeps the VIP
 *   (vrrpSettingsSchema.nopreempt says why); etcd mode needs preemption, for the VIP
 *   follows the etcd leader.
 */
export function renderKeepalived(cluster: Cluster, nodeName: string, source?: string): string {
  assertRenderable(cluster, 'keepalived', source);
  const node = findNode(cluster, nodeName);
  const { vrrp, vip } = cluster;
  const peers = cluster.nodes.filter((n) => n.name !== node.name);
  const lines: string[] = [];
  const add = (...l: string[]) => lines.push(...l);
  add(
    header('#', cluster, `keepalived --node ${node.name}`),
    `# Node ${node.name} (${node.address}), leadership source: ${cluster.leadership.source}.`,
    '',
    'global_defs {',
    `    router_id execgate-${node.name}`,
    '    # The check runs as an unprivileged account; a script path writable by others',
    '    # would make keepalived refuse (-t) or silently disable the check at run time.',
    '    enable_script_security',
    `    script_user ${vrrp.scriptUser}`,
    '    # After a partition heals, the higher priority node re-asserts itself at once.',
    '    vrrp_higher_prio_send_advert true',
    '    vrrp_garp_lower_prio_repeat 3',
    `    # execgate reads state changes from here: INSTANCE "${vrrp.instance}" MASTER <prio>`,
    `    notify_fifo ${cluster.notifyFifo}`,
    '}',
    '',
    '# Slow backstop: the gateway answers /healthz (whole-second interval, tight curl timeout).',
    'vrrp_script execgate_healthz {',
    `    script "${vrrp.curl} -fsS -o /dev/null --max-time ${seconds(vrrp.healthCheckTimeoutSeconds)} http://${node.address}:${node.httpPort}/healthz"`,
    `    interval ${vrrp.healthCheckIntervalSeconds}`,
    `    timeout ${vrrp.healthCheckIntervalSeconds}`,
    `    fall ${vrrp.healthCheckFall}`,
    `    rise ${vrrp.healthCheckRise}`,
    '    # weight 0: after `fall` failures this node goes to FAULT and gives the VIP away now.',
    '    weight 0',
    '}',
    '',
    `# Fast path, written by execgate (temp file + rename): ${TRACK_FILE_LEADER_VALUE} leader, ${TRACK_STANDBY} standby, ${TRACK_STEP_DOWN} stepping down.`,
    'vrrp_track_file execgate_leader {',
    `    file ${cluster.trackFile}`,
    '    weight 1',
    '    # Until execgate writes it, this node counts as a standby.',
    '    init_file 0',
    '}',
    '',
    `vrrp_instance ${vrrp.instance} {`,
    '    state BACKUP',
    `    interface ${vip.interface}`,
    `    virtual_router_id ${vrrp.virtualRouterId}`,
    `    version ${vrrp.version}`,
    `    priority ${node.priority}`,
    `    advert_int ${seconds(vrrp.advertInterval)}`,
  );
  if (vrrp.nopreempt ?? cluster.leadership.source === 'vrrp') {
    add('    # vrrp mode: a backup does not take the VIP from a new master of lower priority (that move would reset its connections).', '    nopreempt');
  }
  if (vrrp.preemptDelaySeconds !== undefined) add(`    preempt_delay ${vrrp.preemptDelaySeconds}`);
  if (vrrp.unicast) {
    add(`    unicast_src_ip ${node.address}`, '    unicast_peer {', ...peers.map((p) => `        ${p.address}`), '    }');
  } else {
    add('    # multicast adverts to 224.0.0.18 (set vrrp.unicast: true where multicast is filtered)');
  }
  if (vrrp.authPassword !== undefined) {
    add('    authentication {', '        auth_type PASS', `        auth_pass ${vrrp.authPassword}`, '    }');
  }
  add(
    '    virtual_ipaddress {',
    `        ${vip.address}/${vip.prefixLength} dev ${vip.interface}`,
    '    }',
    '    track_script {',
    '        execgate_healthz',
    '    }',
    '    track_file {',
    '        execgate_leader weight 1',
    '    }',
    '}',
    '',
  );
  return lines.join('\n');
}
