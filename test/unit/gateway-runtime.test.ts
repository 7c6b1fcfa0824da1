import { describe, it, expect } from 'vitest';
import { resolve } from 'node:path';
import type { Socket } from 'node:net';
import { loadClusterFile, nodeConfigFromCluster, parseCluster } from '../../src/config/clusterLoad.js';
import { parseConfig } from '../../src/config/load.js';
import { nodeRuntime } from '../../src/gateway/nodeRuntime.js';
import { LateSshConnections } from '../../src/gateway/sshConnections.js';

const EXAMPLE = resolve(import.meta.dirname, '../../deploy/example-cluster.yaml');
const socketFrom = (remoteAddress: string) => ({ remoteAddress }) as Socket;
const peer = { address: '203.0.113.9', port: 5000 };

describe('a node runtime derived from the config', () => {
  it('a single gateway: no peers, no VIP, no track file, no forwarding, no gate wait', () => {
    const config = parseConfig({ authorizedKeys: '/etc/keys', hostKeys: ['/etc/host_key'], audit: { path: '/var/log/execgate/audit.jsonl' } }, 'test', '/');
    const runtime = nodeRuntime(config, 'solo');
    expect(runtime).toMatchObject({
      source: undefined,
      vipAddress: null,
      peerProxies: [],
      gateWaitMs: 0,
      trackFile: null,
      stepsDownWhenUnhealthy: false,
      finishOnLeadershipLoss: false,
      vipLocal: undefined,
      loadBalancers: [],
    });
    expect(runtime.drain).toEqual({ timeoutSeconds: 600, handoverMs: 0, mode: 'strict', vipHoldMs: 0, vipHasListener: false });
    expect(runtime.posturePath).toBe('/var/log/execgate/algorithm-posture.json');
    expect(runtime.forwardTo({ forwardTarget: () => 'x' })).toBeUndefined();
  });

  it('an etcd cluster node: peers and the VIP, the track file, fast handover, etcd always terminates', () => {
    const cluster = loadClusterFile(EXAMPLE);
    const [me, other] = cluster.nodes;
    const config = nodeConfigFromCluster(cluster, me!.name, EXAMPLE);
    const runtime = nodeRuntime(config, me!.name, cluster);
    expect(runtime.source).toBe('etcd');
    expect(runtime.peerProxies).toEqual([...cluster.nodes.map((n) => n.address), cluster.vip.address]);
    expect(runtime).toMatchObject({
      vipAddress: cluster.vip.address,
      trackFile: cluster.trackFile,
      stepsDownWhenUnhealthy: true,
      finishOnLeadershipLoss: false,
      gateWaitMs: cluster.leadership.gateWaitMs,
    });
    expect(runtime.drain).toMatchObject({ mode: cluster.leadership.handover, vipHasListener: cluster.vip.bind === 'nonlocal', handoverMs: cluster.leadership.handoverMs });
    expect(runtime.handoverAnnounceMs).toBe(cluster.haproxy.rise * cluster.haproxy.interMs + 100);
    expect(runtime.posturePath).toMatch(new RegExp(`-${me!.name}\\.json$`));
    let target: string | null = other!.name;
    const forwardTo = runtime.forwardTo({ forwardTarget: () => target })!;
    expect(forwardTo(socketFrom('::ffff:198.51.100.1'), peer)).toEqual({ host: other!.address, port: other!.sshPort, name: other!.name });
    expect(forwardTo(socketFrom(`::ffff:${other!.address}`), peer)).toBeNull(); // forwarded by a peer already: stays here
    target = null;
    expect(forwardTo(socketFrom('198.51.100.1'), peer)).toBeNull();
  });

  it('vrrp with onLeadershipLoss: finish lets commands outlive a lost lead; strict drains', () => {
    const example = loadClusterFile(EXAMPLE);
    const raw = JSON.parse(JSON.stringify(example));
    const cluster = parseCluster({ ...raw, leadership: { ...raw.leadership, source: 'vrrp', etcd: undefined, onLeadershipLoss: 'finish' } }, 'test');
    const runtime = nodeRuntime(nodeConfigFromCluster(cluster, cluster.nodes[0]!.name, EXAMPLE), cluster.nodes[0]!.name, cluster);
    expect(runtime).toMatchObject({ source: 'vrrp', finishOnLeadershipLoss: true, stepsDownWhenUnhealthy: true, trackFile: cluster.trackFile });
    expect(runtime.drain.mode).toBe('strict');
  });
});

describe('the SSH server as the drain sees it before and after it is built', () => {
  it('says so when read before the server exists, and reads the server once bound', () => {
    const late = new LateSshConnections();
    expect(() => late.openVia('192.0.2.1')).toThrow(/not built yet/);
    late.bind({ undecidedBefore: () => true, openVia: () => 3, forwardedCount: 2, holdNewConnections: async () => {}, describeConnections: () => [], destroyConnections: () => {} });
    expect([late.openVia('192.0.2.1'), late.forwardedCount, late.undecidedBefore(0)]).toEqual([3, 2, true]);
  });
});
