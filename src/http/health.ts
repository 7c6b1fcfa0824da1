import { access, statfs, constants } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Thresholds of /healthz; an unhealthy node is what keepalived's vrrp_script sees. */
export const HEALTH_LIMITS = {
  /**
   * Event-loop lag beyond this means the process is stalled, not busy. Unhealthy moves
   * the VIP at once, which resets every connection on it: with 1000 ms a new leader
   * taking the burst of connections a VIP drain had held was declared unhealthy for a
   * second in the lab, and 240 commands were reset.
   */
  maxLagMs: 2500,
  /** Free space (for the non-root user) below this on the audit log's file system. */
  minFreeBytes: 64 * 1024 * 1024,
  /** How long a probe result is reused; probes are cheap but /healthz may be hammered. */
  probeCacheMs: 1000,
  /** A file-system probe slower than this (hung NFS, stalled disk) counts as failed. */
  probeTimeoutMs: 2000,
} as const;

export interface HealthSources {
  /** The SSH server: true while every listener accepts. */
  ssh: { readonly listening: boolean };
  /** The audit log: its path and its last write failure. */
  audit: { readonly path: string; readonly error: Error | null };
}

export interface HealthCheck {
  ok: boolean;
  detail: string;
}

export interface HealthReport {
  ok: boolean;
  /** First failing check, in words; null when healthy. */
  reason: string | null;
  checks: { ssh: HealthCheck; eventLoop: HealthCheck & { lagMs: number }; audit: HealthCheck; disk: HealthCheck & { freeBytes: number | null } };
}

interface Probe {
  at: number;
  audit: HealthCheck;
  disk: HealthCheck & { freeBytes: number | null };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;

/**
 * Can this process serve? SSH listener accepting, event loop responsive, audit log
 * writable, disk not full. The event loop is sampled by a timer; the file-system
 * probes run at most once a second in the background (a probe slower than
 * probeTimeoutMs counts as failed), and only the very first check waits for one.
 */
export class HealthMonitor {
  private lagMs = 0;
  private readonly sampler: NodeJS.Timeout;
  private probe: Probe | null = null;
  private probing: Promise<Probe> | null = null;

  constructor(
    private readonly sources: HealthSources,
    private readonly limits: typeof HEALTH_LIMITS = HEALTH_LIMITS,
    sampleMs = 250,
  ) {
    let expected = performance.now() + sampleMs;
    this.sampler = setInterval(() => {
      const now = performance.now();
      this.lagMs = Math.max(0, now - expected);
      expected = now + sampleMs;
    }, sampleMs);
    this.sampler.unref();
  }

  stop(): void {
    clearInterval(this.sampler);
  }

  private async runProbe(): Promise<Probe> {
    const { path } = this.sources.audit;
    let audit: HealthCheck;
    try {
      await withTimeout(access(path, constants.W_OK), this.limits.probeTimeoutMs, 'audit log probe');
      audit = { ok: true, detail: 'writable' }; // a write failure is overlaid live in check()
    } catch (err) {
      audit = { ok: false, detail: `audit log not writable: ${(err as Error).message}` };
    }
    let disk: Probe['disk'];
    try {
      const s = await withTimeout(statfs(dirname(path)), this.limits.probeTimeoutMs, 'disk probe');
      const free = s.bavail * s.bsize;
      disk =
        free < this.limits.minFreeBytes
          ? { ok: false, detail: `disk full: ${mib(free)} free for the audit log (need ${mib(this.limits.minFreeBytes)})`, freeBytes: free }
          : { ok: true, detail: `${mib(free)} free`, freeBytes: free };
    } catch (err) {
      disk = { ok: false, detail: `disk probe failed: ${(err as Error).message}`, freeBytes: null };
    }
    return { at: Date.now(), audit, disk };
  }

  async check(): Promise<HealthReport> {
    if (!this.probe || Date.now() - this.probe.at > this.limits.probeCacheMs) {
      this.probing ??= this.runProbe()
        .then((probe) => (this.probe = probe))
        .finally(() => (this.probing = null));
      // Only the first check waits for a probe. Later ones answer from the last result
      // while the next runs: the probes share libuv's thread pool with every file
      // operation, and HAProxy gives GET /leader 200 ms (measured: a busy new leader's
      // checks timed out behind its own file work, and HAProxy closed its sessions).
      if (!this.probe) await this.probing;
    }
    const probe = this.probe!;
    const lagMs = Math.round(this.lagMs);
    const checks: HealthReport['checks'] = {
      ssh: this.sources.ssh.listening ? { ok: true, detail: 'accepting' } : { ok: false, detail: 'ssh listener not accepting' },
      eventLoop: lagMs > this.limits.maxLagMs ? { ok: false, detail: `event loop lagging ${lagMs} ms (limit ${this.limits.maxLagMs} ms)`, lagMs } : { ok: true, detail: `lag ${lagMs} ms`, lagMs },
      // The last write's outcome is known in memory: reported at once, not after the probe cache.
      audit: this.sources.audit.error ? { ok: false, detail: `audit log write failed: ${this.sources.audit.error.message}` } : probe.audit,
      disk: probe.disk,
    };
    const failed = Object.values(checks).find((c) => !c.ok);
    return { ok: !failed, reason: failed ? failed.detail : null, checks };
  }
}
