import { readFileSync } from 'node:fs';
import ssh2, { type Client, type ClientChannel, type PseudoTtyOptions } from 'ssh2';

export function connectClient(port: number, keyPath: string, username = 'root', host = '127.0.0.1'): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({ host, port, username, privateKey: readFileSync(keyPath), readyTimeout: 20_000 });
  });
}

export interface ExecResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export function execOn(
  client: Client,
  command: string,
  opts: { pty?: PseudoTtyOptions; env?: Record<string, string>; input?: string; onChannel?: (ch: ClientChannel) => void } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, { pty: opts.pty, env: opts.env }, (err, channel) => {
      if (err) return reject(err);
      const out: Buffer[] = [];
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => out.push(d));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => resolve({ code, stdout: Buffer.concat(out), stderr }));
      opts.onChannel?.(channel);
      if (opts.input !== undefined) channel.end(opts.input);
    });
  });
}
