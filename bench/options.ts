import { parseArgs } from 'node:util';

export const SECTIONS = ['latency', 'kex', 'jsch', 'throughput', 'scp', 'parallel', 'jscrypto', 'forward', 'concurrency', 'memory'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchOptions {
  quick: boolean;
  rounds: number;
  latencyCount: number;
  jschSteps: number;
  stdoutBytes: number;
  stdinBytes: number;
  /** scp upload and download: one sparse file of this size. */
  scpBytes: number;
  /** parallel: this many stdout streams at once, each of parallelBytes. */
  parallelStreams: number;
  parallelBytes: number;
  ciphers: string[];
  concurrency: number[];
  memoryConnections: number;
  /** memory: how long both servers stay idle after the last round before "after load" is read again. */
  settleMs: number;
  sections: Section[];
  outDir: string;
}

const MiB = 1024 * 1024;
export const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'];

export const USAGE = `npm run bench [-- options]
  --quick            smoke run: 1 round, 30 connections, 64/32 MiB streams, 256 MiB scp,
                     4 x 64 MiB parallel streams, 50/100 sessions, 10 s memory settle
                     (full: 200, 1 GiB/512 MiB, 1 GiB, 4 x 256 MiB, 100/500, 60 s)
  --rounds N         rounds (default 3; 1 with --quick)
  --only a,b         sections: ${SECTIONS.join(',')}
  --out DIR          where the JSON goes (default artifacts/)
  --help`;

export function parseOptions(argv: string[]): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string', default: 'artifacts' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  const quick = values.quick === true;
  const sections = values.only ? values.only.split(',').map((s) => s.trim()) : [...SECTIONS];
  for (const s of sections) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`unknown section "${s}"; one of ${SECTIONS.join(', ')}`);
  const rounds = values.rounds !== undefined ? Number(values.rounds) : quick ? 1 : 3;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error('--rounds takes 1..20');
  return {
    quick,
    rounds,
    latencyCount: quick ? 30 : 200,
    jschSteps: quick ? 3 : 15,
    stdoutBytes: quick ? 64 * MiB : 1024 * MiB,
    stdinBytes: quick ? 32 * MiB : 512 * MiB,
    scpBytes: quick ? 256 * MiB : 1024 * MiB,
    parallelStreams: 4,
    parallelBytes: quick ? 64 * MiB : 256 * MiB,
    ciphers: CIPHERS,
    concurrency: quick ? [50, 100] : [100, 500],
    memoryConnections: quick ? 30 : 100,
    settleMs: quick ? 10_000 : 60_000,
    sections: sections as Section[],
    outDir: values.out ?? 'artifacts',
  };
}
