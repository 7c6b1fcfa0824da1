import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { inOrder } from '../context.js';
import { runProcess, scpArgs, remotePath } from '../clients/openssh.js';
import type { BenchServer } from '../servers/types.js';
import { metered, recordStream, sizeLabel, type StreamRows, type Transfer } from './throughput.js';

/** The cipher Rundeck's file copier gets by default from both servers. */
const SCP_CIPHER = 'chacha20-poly1305@openssh.com';

/**
 * The file both directions copy: sparse (`truncate -s`), so reading it costs no disk;
 * made once per run in the bench dir (0755), readable by the login user (0644).
 */
function sourceFile(ctx: BenchContext, bytes: number): string {
  const path = join(ctx.dir, `scp-source-${bytes}`);
  if (!existsSync(path)) {
    execFileSync('truncate', ['-s', String(bytes), path]);
    chmodSync(path, 0o644);
  }
  return path;
}

/**
 * One copy with OpenSSH's `scp -O`: the legacy SCP protocol (`scp -t` / `scp -f` on
 * the server), which is what JSch and sshj speak; upload into the server's /dev/null,
 * download of the same sparse file into the local /dev/null. Success is exit 0, and for
 * the upload also nothing printed (the remote `scp -t` reports its errors through the
 * client, which may still exit 0 on some of them).
 */
async function scpCopy(server: BenchServer, key: string, direction: 'upload' | 'download', source: string): Promise<Transfer> {
  const operands = direction === 'upload' ? [source, remotePath(server, '/dev/null')] : [remotePath(server, source), '/dev/null'];
  const args = ['-O', ...scpArgs(server, key, ['-c', SCP_CIPHER, '-o', 'Compression=no']), ...operands];
  const m = await metered(server, () => runProcess('scp', args, 10 * 60_000));
  const r = m.result;
  const output = `${r.stdout}${r.stderr}`.trim();
  const problem =
    r.code !== 0
      ? `scp exit ${r.code ?? r.signal}: ${output.slice(0, 300)}`
      : direction === 'upload' && output !== ''
        ? `scp printed: ${output.slice(0, 300)}`
        : m.quiet
          ? null
          : 'server not quiet afterwards';
  return { ok: problem === null, detail: problem ?? '', seconds: r.ms / 1000, serverCpuSeconds: m.serverCpuSeconds, commandCpuSeconds: Number.NaN };
}

/** scp upload and download of one large file, the Rundeck file-copier path. */
export async function scp(ctx: BenchContext, round: number): Promise<void> {
  const bytes = ctx.options.scpBytes;
  const source = sourceFile(ctx, bytes);
  let i = round;
  for (const direction of ['upload', 'download'] as const) {
    const rows: StreamRows = {
      id: `scp.${direction}`,
      label: `scp ${direction} ${sizeLabel(bytes)}`,
      target: { kind: 'ratio>=', value: 0.9 },
      cpuId: `cpu.scp.${direction}`,
      cpuLabel: `server CPU per GiB, scp ${direction}`,
    };
    for (const s of inOrder(ctx.servers, i++)) recordStream(ctx, s, rows, bytes, await scpCopy(s, ctx.keys.clientEd25519, direction, source));
  }
}
