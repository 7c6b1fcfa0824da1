import type { CpuMeter } from '../cpuMeter.js';

/** What a scenario needs to know about a server under test. */
export interface BenchServer {
  readonly name: 'execgate' | 'sshd';
  readonly port: number;
  /** The listening process we started. */
  readonly pid: number;
  /** The account commands run as (same for both servers). */
  readonly user: string;
  /**
   * The processes that are the server itself, not the commands it runs:
   * execgate = its one Node process; sshd = the listener and every sshd below it.
   */
  serverPids(): number[];
  /** Live per-connection server processes (sshd children; none for execgate). */
  connectionProcesses(): number;
  /** Starts measuring the server's own CPU time (never the commands it runs). */
  cpuMeter(): CpuMeter;
  stop(): Promise<void>;
}
