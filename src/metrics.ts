import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';
import { VERSION } from './version.js';

/**
 * Every metric execgate exports, on a dedicated registry (never prom-client's global
 * one). Labels are low-cardinality only: never a job, execution id or user.
 * `ssh2Crypto` is the backend ssh2 runs (src/ssh/cryptoBackend.ts), for execgate_build_info.
 */
export function createMetrics(node: string, ssh2Crypto: 'native' | 'javascript') {
  const registry = new Registry();
  registry.setDefaultLabels({ node });
  collectDefaultMetrics({ register: registry, prefix: 'execgate_' });

  const m = {
    registry,
    sshConnections: new Counter({
      name: 'execgate_ssh_connections_total',
      help: 'SSH connections by outcome (authenticated, auth_failed, refused_limit, closed_unauthenticated).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    sshSessions: new Gauge({
      name: 'execgate_ssh_sessions',
      help: 'Open SSH session channels.',
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'execgate_auth_failures_total',
      help: 'Failed authentication attempts by method and reason.',
      labelNames: ['method', 'reason'] as const,
      registers: [registry],
    }),
    commands: new Counter({
      name: 'execgate_commands_total',
      help: 'Finished commands by result (completed, killed, spawn_failed, refused).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    commandsRunning: new Gauge({
      name: 'execgate_commands_running',
      help: 'Commands running now.',
      registers: [registry],
    }),
    commandDuration: new Histogram({
      name: 'execgate_command_duration_seconds',
      help: 'Command duration from start to the process group gone.',
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800],
      registers: [registry],
    }),
    outputBytes: new Counter({
      name: 'execgate_output_bytes_total',
      help: 'Bytes of command output by stream.',
      labelNames: ['stream'] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'execgate_leader',
      help: '1 while this node is the leader, else 0.',
      registers: [registry],
    }),
    fencingToken: new Gauge({
      name: 'execgate_fencing_token',
      help: 'Fencing token of the current leadership term (0 when not leading).',
      registers: [registry],
    }),
    leadershipTransitions: new Counter({
      name: 'execgate_leadership_transitions_total',
      help: 'Leadership role changes by the role entered.',
      labelNames: ['to'] as const,
      registers: [registry],
    }),
    commandsRefused: new Counter({
      name: 'execgate_commands_refused_total',
      help: 'Commands refused before starting, by reason (standby, draining, fenced, limit names).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    runOnceClaims: new Counter({
      name: 'execgate_runonce_claims_total',
      help: 'Run-once claims by outcome (won, lost, waited, unknown).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    // Every completed key exchange, the initial one and each rekey, authenticated or not.
    // The algorithm labels take only names execgate offers (src/ssh/algorithms.ts): bounded.
    sshHandshakes: new Counter({
      name: 'execgate_ssh_handshakes_total',
      help: 'Completed SSH key exchanges by type (initial, rekey).',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    sshNegotiatedKex: new Counter({
      name: 'execgate_ssh_negotiated_kex_total',
      help: 'Completed SSH key exchanges by the key exchange algorithm negotiated.',
      labelNames: ['algorithm'] as const,
      registers: [registry],
    }),
    sshNegotiatedHostKey: new Counter({
      name: 'execgate_ssh_negotiated_host_key_total',
      help: 'Completed SSH key exchanges by the host key (signature) algorithm negotiated; ssh-rsa is SHA-1.',
      labelNames: ['algorithm'] as const,
      registers: [registry],
    }),
    sshNegotiatedCipher: new Counter({
      name: 'execgate_ssh_negotiated_cipher_total',
      help: 'Completed SSH key exchanges by cipher (counted once when both directions use the same).',
      labelNames: ['algorithm'] as const,
      registers: [registry],
    }),
    sshNegotiatedMac: new Counter({
      name: 'execgate_ssh_negotiated_mac_total',
      help: 'Completed SSH key exchanges by MAC; "implicit" with an AEAD cipher (GCM, ChaCha20-Poly1305), whose tag is the MAC.',
      labelNames: ['algorithm'] as const,
      registers: [registry],
    }),
    sshNegotiatedCompression: new Counter({
      name: 'execgate_ssh_negotiated_compression_total',
      help: 'Completed SSH key exchanges by compression (counted once when both directions use the same).',
      labelNames: ['algorithm'] as const,
      registers: [registry],
    }),
    sshUserAuthSignatures: new Counter({
      name: 'execgate_ssh_userauth_signatures_total',
      help: 'Successful public key authentications by signature algorithm; ssh-rsa is SHA-1.',
      labelNames: ['algorithm'] as const,
      registers: [registry],
    }),
    scriptReplication: new Counter({
      name: 'execgate_script_replication_total',
      help: 'Rundeck dispatch-script copies sent to peers, one per peer and upload: ok, refused (the peer answered 4xx), failed (unreachable, timeout, server error, or not sendable from here: too large, no token).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    // A draining node's new connections relayed at TCP level to the leader (src/ssh/forwarder.ts).
    forwardedConnections: new Counter({
      name: 'execgate_forwarded_connections_total',
      help: 'Connections forwarded to another node (drain) by outcome: relayed, broken (an error or reset after connecting), unreachable (the client was refused).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    forwardedOpen: new Gauge({
      name: 'execgate_forwarded_connections_open',
      help: 'Forwarded connections open now.',
      registers: [registry],
    }),
    buildInfo: new Gauge({
      name: 'execgate_build_info',
      help: 'Always 1; the version label says which execgate runs, ssh2_crypto whether ssh2 uses its native binding ("native") or its slower JavaScript fallback ("javascript": rebuild native modules, see the log).',
      labelNames: ['version', 'ssh2_crypto'] as const,
      registers: [registry],
    }),
  };
  m.buildInfo.set({ version: VERSION, ssh2_crypto: ssh2Crypto }, 1);
  // Both series exist from the start, so rate() and absent() work before the first rekey.
  for (const type of ['initial', 'rekey']) m.sshHandshakes.inc({ type }, 0);
  for (const result of ['relayed', 'broken', 'unreachable']) m.forwardedConnections.inc({ result }, 0);
  for (const result of ['ok', 'failed', 'refused']) m.scriptReplication.inc({ result }, 0);
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
