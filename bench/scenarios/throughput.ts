import type { BenchContext } from '../context.js';
import { inOrder, waitQuiet } from '../context.js';
import { runProcess, shq, sshArgs } from '../clients/openssh.js';
import type { BenchServer } from '../servers/types.js';
import type { Target } from '../results.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Sums the times printed by the shell's `times` builtin (shell + children, user + sys). */
export function parseTimes(text: string): number {
  let total = 0;
  for (const m of text.matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2]);
  return total;
}

export interface Transfer {
  ok: boolean;
  detail: string;
  seconds: number;
  /** Server CPU: execgate's process; sshd's listener and every sshd process below it. */
  serverCpuSeconds: number;
  /** The remote command's CPU (shell `times`), for reference: it is not server CPU. */
  commandCpuSeconds: number;
}

/**
 * One stream through the OpenSSH client: `head -c N /dev/zero` remotely (stdout) or
 * locally into a remote `wc -c` (stdin). The remote shell prints `times` on stderr
 * (the command's own CPU, kept for reference).
 */
export async function transfer(server: BenchServer, key: string, cipher: string, direction: 'stdout' | 'stdin', bytes: number): Promise<Transfer> {
  await waitQuiet(server);
  const ssh = ['ssh', ...sshArgs(server, key, ['-c', cipher, '-o', 'Compression=no'])].map(shq).join(' ');
  const remote = direction === 'stdout' ? `head -c ${bytes} /dev/zero; times >&2` : `wc -c; times >&2`;
  const line = direction === 'stdout' ? `${ssh} ${shq(remote)} | wc -c` : `head -c ${bytes} /dev/zero | ${ssh} ${shq(remote)}`;
  const meter = server.cpuMeter();
  const r = await runProcess('sh', ['-c', line], 10 * 60_000);
  const quiet = await waitQuiet(server);
  const serverCpu = meter.stop();
  const counted = Number(r.stdout.trim());
  const ok = counted === bytes && quiet;
  return {
    ok,
    detail: ok ? '' : `expected ${bytes} bytes, counted ${r.stdout.trim() || 'nothing'}${quiet ? '' : ' (server not quiet)'}: ${r.stderr.trim().slice(0, 300)}`,
    seconds: r.ms / 1000,
    serverCpuSeconds: serverCpu,
    commandCpuSeconds: parseTimes(r.stderr),
  };
}

const short = (cipher: string) => cipher.replace(/@openssh\.com$/, '');

function targetFor(direction: 'stdout' | 'stdin', cipher: string): Target {
  if (direction === 'stdin') return { kind: 'ratio>=', value: 1.5 };
  return cipher.startsWith('chacha20') ? { kind: 'ratio>=', value: 1.0 } : { kind: 'ratio>=', value: 0.9 };
}

export async function throughput(ctx: BenchContext, round: number): Promise<void> {
  const { options, results } = ctx;
  let i = round;
  for (const cipher of options.ciphers) {
    for (const direction of ['stdout', 'stdin'] as const) {
      const bytes = direction === 'stdout' ? options.stdoutBytes : options.stdinBytes;
      const size = bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`;
      const id = `${direction}.${short(cipher)}`;
      for (const s of inOrder(ctx.servers, i++)) {
        const t = await transfer(s, ctx.keys.clientEd25519, cipher, direction, bytes);
        if (!t.ok) {
          results.note(`throughput.${id}`, `${s.name}: ${t.detail}`);
          ctx.log(`${id} ${s.name}: FAILED ${t.detail}`);
        }
        const mibs = t.ok ? bytes / MiB / t.seconds : Number.NaN;
        results.add({ id: `throughput.${id}`, label: `${direction} ${size}, ${short(cipher)}`, unit: 'MiB/s', combine: 'median', target: targetFor(direction, cipher) }, s.name, mibs);
        results.add({ id: `cpu.${id}`, label: `server CPU per GiB, ${direction}, ${short(cipher)}`, unit: 's/GiB', combine: 'median' }, s.name, t.ok ? t.serverCpuSeconds / (bytes / GiB) : Number.NaN);
        ctx.log(`${id} ${s.name}: ${mibs.toFixed(0)} MiB/s, server CPU ${(t.serverCpuSeconds / (bytes / GiB)).toFixed(2)} s/GiB`);
      }
    }
  }
}
