import type { BenchContext } from '../context.js';
import { inOrder, waitQuiet } from '../context.js';
import { runProcess, shq, sshArgs, type ProcessResult } from '../clients/openssh.js';
import type { BenchServer } from '../servers/types.js';
import type { Target } from '../results.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** "1 GiB", "256 MiB". */
export const sizeLabel = (bytes: number): string => (bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`);

/** "chacha20-poly1305@openssh.com" -> "chacha20-poly1305". */
export const short = (cipher: string) => cipher.replace(/@openssh\.com$/, '');

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
 * Runs one measured client run: waits until nothing is below the server, meters the
 * server's own CPU while `run` goes and until the server is quiet again.
 */
export async function metered<T>(server: BenchServer, run: () => Promise<T>): Promise<{ result: T; serverCpuSeconds: number; quiet: boolean }> {
  await waitQuiet(server);
  const meter = server.cpuMeter();
  const result = await run();
  const quiet = await waitQuiet(server);
  return { result, serverCpuSeconds: meter.stop(), quiet };
}

/** The OpenSSH client as a shell word list, pinned to one cipher, no compression. */
function sshCommand(server: BenchServer, key: string, cipher: string): string {
  return ['ssh', ...sshArgs(server, key, ['-c', cipher, '-o', 'Compression=no'])].map(shq).join(' ');
}

/** Shell line: remote `head -c N /dev/zero` into a local `wc -c` (the remote shell's `times` on stderr). */
export function stdoutLine(server: BenchServer, key: string, cipher: string, bytes: number): string {
  return `${sshCommand(server, key, cipher)} ${shq(`head -c ${bytes} /dev/zero; times >&2`)} | wc -c`;
}

function stdinLine(server: BenchServer, key: string, cipher: string, bytes: number): string {
  return `head -c ${bytes} /dev/zero | ${sshCommand(server, key, cipher)} ${shq('wc -c; times >&2')}`;
}

/** Why a stream's `wc -c` result is wrong, or null when it counted exactly `bytes`. */
export function countProblem(r: ProcessResult, bytes: number): string | null {
  if (Number(r.stdout.trim()) === bytes) return null;
  return `expected ${bytes} bytes, counted ${r.stdout.trim() || 'nothing'}: ${r.stderr.trim().slice(0, 300)}`;
}

/**
 * One stream through the OpenSSH client: `head -c N /dev/zero` remotely (stdout) or
 * locally into a remote `wc -c` (stdin). The remote shell prints `times` on stderr
 * (the command's own CPU, kept for reference).
 */
export async function transfer(server: BenchServer, key: string, cipher: string, direction: 'stdout' | 'stdin', bytes: number): Promise<Transfer> {
  const line = direction === 'stdout' ? stdoutLine(server, key, cipher, bytes) : stdinLine(server, key, cipher, bytes);
  const m = await metered(server, () => runProcess('sh', ['-c', line], 10 * 60_000));
  const problem = countProblem(m.result, bytes) ?? (m.quiet ? null : 'server not quiet afterwards');
  return {
    ok: problem === null,
    detail: problem ?? '',
    seconds: m.result.ms / 1000,
    serverCpuSeconds: m.serverCpuSeconds,
    commandCpuSeconds: parseTimes(m.result.stderr),
  };
}

/** The two table rows of one measured stream: MiB/s (with its target) and server CPU per GiB. */
export interface StreamRows {
  id: string;
  label: string;
  target: Target;
  cpuId: string;
  cpuLabel: string;
}

/** Records MiB/s and server CPU s/GiB of one transfer (NaN when it failed, with a note). */
export function recordStream(ctx: BenchContext, server: BenchServer, rows: StreamRows, bytes: number, t: Pick<Transfer, 'ok' | 'detail' | 'seconds' | 'serverCpuSeconds'>): void {
  if (!t.ok) {
    ctx.results.note(rows.id, `${server.name}: ${t.detail}`);
    ctx.log(`${rows.id} ${server.name}: FAILED ${t.detail}`);
  }
  const mibs = t.ok ? bytes / MiB / t.seconds : Number.NaN;
  const cpu = t.ok ? t.serverCpuSeconds / (bytes / GiB) : Number.NaN;
  ctx.results.add({ id: rows.id, label: rows.label, unit: 'MiB/s', combine: 'median', target: rows.target }, server.name, mibs);
  ctx.results.add({ id: rows.cpuId, label: rows.cpuLabel, unit: 's/GiB', combine: 'median' }, server.name, cpu);
  ctx.log(`${rows.id} ${server.name}: ${mibs.toFixed(0)} MiB/s, server CPU ${cpu.toFixed(2)} s/GiB`);
}

function targetFor(direction: 'stdout' | 'stdin', cipher: string): Target {
  if (direction === 'stdin') return { kind: 'ratio>=', value: 1.3 };
  return cipher.startsWith('chacha20') ? { kind: 'ratio>=', value: 0.95 } : { kind: 'ratio>=', value: 0.85 };
}

export async function throughput(ctx: BenchContext, round: number): Promise<void> {
  const { options } = ctx;
  let i = round;
  for (const cipher of options.ciphers) {
    for (const direction of ['stdout', 'stdin'] as const) {
      const bytes = direction === 'stdout' ? options.stdoutBytes : options.stdinBytes;
      const id = `${direction}.${short(cipher)}`;
      const rows: StreamRows = {
        id: `throughput.${id}`,
        label: `${direction} ${sizeLabel(bytes)}, ${short(cipher)}`,
        target: targetFor(direction, cipher),
        cpuId: `cpu.${id}`,
        cpuLabel: `server CPU per GiB, ${direction}, ${short(cipher)}`,
      };
      for (const s of inOrder(ctx.servers, i++)) recordStream(ctx, s, rows, bytes, await transfer(s, ctx.keys.clientEd25519, cipher, direction, bytes));
    }
  }
}
