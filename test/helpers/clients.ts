import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { describe, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { jschClasspath } from '../../deploy/lab/netns/jschBuild.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  stderrBytes: Buffer;
}

/** An OpenSSH client that uses only this key, never prompts and trusts a test server's new host key. */
export function batchKeyArgs(key: string): string[] {
  return ['-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null'];
}

export function sshArgs(port: number, key: string, extra: string[] = []): string[] {
  return [...batchKeyArgs(key), '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10', '-p', String(port), ...extra];
}

/** Runs a process to completion, collecting stdout as bytes. */
export function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: Buffer | string } = {}): Promise<RunResult> & { child: ChildProcess } {
  const child = spawn(file, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => chunks.push(d));
  child.stderr!.on('data', (d: Buffer) => errChunks.push(d));
  child.stdin!.on('error', () => {});
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const promise = new Promise<RunResult>((resolve) =>
    child.once('close', (code, signal) => {
      const stderrBytes = Buffer.concat(errChunks);
      resolve({ code, signal, stdout: Buffer.concat(chunks), stderr: stderrBytes.toString(), stderrBytes });
    }),
  ) as Promise<RunResult> & { child: ChildProcess };
  promise.child = child;
  return promise;
}

/** The real OpenSSH client against a gateway on loopback (the system's, or `options.client`'s ssh). */
export function ssh(port: number, key: string, command: string, options: { extra?: string[]; env?: NodeJS.ProcessEnv; input?: Buffer | string; user?: string; client?: SshClientFlavour } = {}) {
  const user = options.user ?? 'root';
  return run(options.client?.ssh ?? 'ssh', [...sshArgs(port, key, options.extra), `${user}@127.0.0.1`, command], options);
}

/**
 * An OpenSSH client build the suite runs the same checks with (issue 16): the system's
 * (Debian 12: 9.2, from PATH) and a private OpenSSH 10 that .ci/install-openssh10 unpacks
 * from bookworm-backports. Both scp and sftp start /usr/bin/ssh unless given `-S`, so a
 * flavour's `viaSsh` goes on every scp/sftp command line (scpWith/sftpWith do it).
 * Both default to the SFTP protocol for scp (OpenSSH 9.0+); `scp -O` is the legacy one.
 */
export interface SshClientFlavour {
  name: 'openssh-9.2' | 'openssh-10';
  ssh: string;
  scp: string;
  sftp: string;
  /** `-S <this ssh>` for scp and sftp; empty for the system client (its default is /usr/bin/ssh). */
  viaSsh: string[];
  /** What the first line of `ssh -V` must match. */
  version: RegExp;
  /** null when usable; otherwise why not, and the fix. */
  missing: string | null;
}

export const OPENSSH10_DIR = process.env.EXECGATE_OPENSSH10_DIR ?? '/opt/execgate-test/openssh-10';
export const OPENSSH10_INSTALL = 'sudo bash .ci/install-openssh10';

/** The first line of `<ssh> -V` (printed on stderr), or null when the binary does not run. */
export function sshVersion(sshPath: string): string | null {
  const r = spawnSync(sshPath, ['-V'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error || r.status !== 0) return null;
  return `${r.stderr}${r.stdout}`.split('\n')[0]!.trim();
}

/** The system's OpenSSH client, from PATH (9.2 on Debian 12, which CI runs). */
export function systemOpenssh(): SshClientFlavour {
  return { name: 'openssh-9.2', ssh: 'ssh', scp: 'scp', sftp: 'sftp', viaSsh: [], version: /^OpenSSH_9\.2/, missing: null };
}

/** The private OpenSSH 10 client's binaries by path (EXECGATE_OPENSSH10_DIR); `missing` says why it cannot run. */
export function openssh10(): SshClientFlavour {
  const bin = join(OPENSSH10_DIR, 'usr/bin');
  const flavour: SshClientFlavour = {
    name: 'openssh-10',
    ssh: join(bin, 'ssh'),
    scp: join(bin, 'scp'),
    sftp: join(bin, 'sftp'),
    viaSsh: ['-S', join(bin, 'ssh')],
    version: /^OpenSSH_10\./,
    missing: null,
  };
  const got = existsSync(flavour.ssh) ? sshVersion(flavour.ssh) : null;
  if (got === null) flavour.missing = `no working OpenSSH 10 client at ${flavour.ssh} (EXECGATE_OPENSSH10_DIR): run \`${OPENSSH10_INSTALL}\``;
  else if (!flavour.version.test(got)) flavour.missing = `${flavour.ssh} -V says "${got}", not OpenSSH_10: run \`${OPENSSH10_INSTALL}\``;
  else if (!existsSync(flavour.scp) || !existsSync(flavour.sftp)) flavour.missing = `scp or sftp missing beside ${flavour.ssh}: run \`${OPENSSH10_INSTALL}\``;
  return flavour;
}

let flavours: SshClientFlavour[] | undefined;
/** Every OpenSSH client flavour, the system's first. */
export function sshClients(): readonly SshClientFlavour[] {
  return (flavours ??= [systemOpenssh(), openssh10()]);
}

/**
 * Registers `describe('<title> [<flavour>]', body)` once per OpenSSH client. A flavour
 * that is not installed fails its block under EXECGATE_REQUIRE_LAB=1 (as CI sets) and is
 * skipped with the reason otherwise; never silently.
 */
export function describeEachClient(title: string, body: (client: SshClientFlavour) => void): void {
  for (const client of sshClients()) {
    const name = `${title} [${client.name}]`;
    if (client.missing === null) {
      describe(name, () => body(client));
    } else if (process.env.EXECGATE_REQUIRE_LAB === '1') {
      describe(name, () =>
        it(`has the ${client.name} client`, () => {
          throw new Error(`${client.missing} (EXECGATE_REQUIRE_LAB=1 makes a missing client a failure)`);
        }),
      );
    } else {
      console.warn(`${name} skipped: ${client.missing} (set EXECGATE_REQUIRE_LAB=1 to make this a failure)`);
      describe.skip(`${name} [skipped: ${client.missing}]`, () => body(client));
    }
  }
}

/** scp's and sftp's spelling of sshArgs (`-P` for the port); `extra` is appended as is. */
export function scpArgs(port: number, key: string, extra: string[] = []): string[] {
  return [...sshArgs(port, key).map((a) => (a === '-p' ? '-P' : a)), ...extra];
}

/** Runs a flavour's scp against a gateway: `scp -S <its ssh> <scpArgs> ...args`. */
export function scpWith(client: SshClientFlavour, port: number, key: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  return run(client.scp, [...client.viaSsh, ...scpArgs(port, key), ...args], options);
}

/** Runs a flavour's sftp against a gateway: `sftp -S <its ssh> <scpArgs> ...args`. */
export function sftpWith(client: SshClientFlavour, port: number, key: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}) {
  return run(client.sftp, [...client.viaSsh, ...scpArgs(port, key), ...args], options);
}

/**
 * The key exchange a verbose client reports: `ssh -v` prints
 * "debug1: kex: algorithm: mlkem768x25519-sha256" once the KEXINITs are compared.
 */
export function negotiatedKex(verboseStderr: string): string | null {
  return /^debug1: kex: algorithm: (\S+)/m.exec(verboseStderr)?.[1] ?? null;
}

export { jschClasspath };

export interface JschOp {
  op: string;
  exit?: number;
  stdout?: string;
  stderr?: string;
  command?: string;
  path?: string;
  message?: string;
}

/**
 * The Rundeck client profile the JSch harness reproduces: jsch-ssh / jsch-scp of Rundeck
 * 2.x-5.9 on JSch 0.1.55. The other profile, `sshj` (Rundeck 4.16+'s default), is
 * test/helpers/sshjProfile.ts; test/integration/rundeck-profiles.test.ts runs both.
 */
export const JSCH_PROFILE = 'jsch-0.1.55';

/** Runs the Rundeck-like JSch harness (profile JSCH_PROFILE); returns its JSON lines. */
export async function jsch(args: string[]): Promise<{ code: number | null; ops: JschOp[]; stderr: string }> {
  const result = await run('java', ['-cp', jschClasspath(), 'RundeckStep', '--profile', JSCH_PROFILE, ...args]);
  const ops = result.stdout
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JschOp);
  return { code: result.code, ops, stderr: result.stderr };
}
