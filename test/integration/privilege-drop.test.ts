import { describe, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'ssh2';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, execOn } from '../helpers/ssh2Client.js';
import { labIt, notRoot } from '../helpers/lab.js';
import { ensureAccount } from '../helpers/accounts.js';

/**
 * Finding 7 of the hostile review: nothing the client chose may reach a process that
 * runs as root. The variables are allow-listed on purpose (env.allowUnsafe) so the
 * test can send them; a process that sees them before the privilege drop records uid 0.
 */
const USER = 'egpriv';

describe('client environment reaches commands only after the privilege drop', () => {
  const missing = notRoot() ?? (existsSync('/usr/bin/gcc') || existsSync('/usr/bin/cc') ? null : 'needs a C compiler (gcc)');
  let gw: TestGateway | undefined;
  let client: Client | undefined;
  let work: string;
  let removeUser = () => {};

  beforeAll(async () => {
    if (missing) return;
    removeUser = ensureAccount(USER);
    work = mkdtempSync(join(tmpdir(), 'execgate-privdrop-'));
    chmodSync(work, 0o755);
    // A trojan setpriv and sh, found only through a PATH the client sends.
    const trojans = join(work, 'bin');
    execFileSync('mkdir', ['-m', '755', trojans]);
    for (const name of ['setpriv', 'sh', 'env']) {
      writeFileSync(join(trojans, name), `#!/bin/sh\necho "trojan ${name} uid=$(id -u)" >> ${work}/marks/trojan\nexec /usr/bin/${name} "$@"\n`, { mode: 0o755 });
    }
    // A preload library whose constructor records who loaded it.
    writeFileSync(
      join(work, 'evil.c'),
      `#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void mark(void) {\n  FILE *f = fopen("${work}/marks/preload", "a");\n  if (f) { fprintf(f, "uid=%d\\n", (int)getuid()); fclose(f); }\n}\n`,
    );
    execFileSync('cc', ['-shared', '-fPIC', '-o', join(work, 'evil.so'), join(work, 'evil.c')]);
    chmodSync(join(work, 'evil.so'), 0o755);
    execFileSync('mkdir', ['-m', '1777', join(work, 'marks')]);
    gw = await startTestGateway({ runAs: { accounts: { [USER]: USER } }, env: { allow: ['RD_*', 'PATH', 'LD_PRELOAD'], allowUnsafe: true } }, [], { inheritFd: 251 });
    client = await connectClient(gw.port, gw.keys.ed25519, USER);
  });
  afterAll(async () => {
    client?.end();
    await gw?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    removeUser();
  });

  const marks = (name: string) => {
    const p = join(work, 'marks', name);
    return existsSync(p) ? readFileSync(p, 'utf8').trim().split('\n') : [];
  };

  labIt('a PATH the client sends finds no trojan setpriv or shell running as root', missing, async () => {
    const r = await execOn(client!, 'id -u', { env: { PATH: `${work}/bin:/usr/bin:/bin` } });
    expect(r.code).toBe(0);
    const uid = execFileSync('id', ['-u', USER]).toString().trim();
    expect(r.stdout.toString()).toBe(`${uid}\n`);
    expect(marks('trojan').filter((l) => l.endsWith('uid=0'))).toEqual([]);
  });

  labIt('an LD_PRELOAD the client sends is loaded only by processes of the account', missing, async () => {
    const r = await execOn(client!, 'true', { env: { LD_PRELOAD: join(work, 'evil.so') } });
    expect(r.code).toBe(0);
    const lines = marks('preload');
    const uid = execFileSync('id', ['-u', USER]).toString().trim();
    expect(lines.length).toBeGreaterThan(0); // it reached the command, as the client asked
    expect(lines.filter((l) => l !== `uid=${uid}`)).toEqual([]);
  });

  labIt('a command inherits no descriptor beyond 0, 1 and 2', missing, async () => {
    // `ls` lists its own directory descriptor (3) as well.
    const r = await execOn(client!, 'ls /proc/self/fd | tr "\\n" " "');
    expect(r.stdout.toString()).toBe('0 1 2 3 ');
    expect(gw!.output()).toMatch(/"fds":\[[\d,]*251[\d,]*\],"msg":"closed file descriptors inherited from the parent/);
  });
});

describe('unsafe variables in env.allow', () => {
  labIt('are refused at start with the pattern, the names and the fix', null, async () => {
    await expect(startTestGateway({ env: { allow: ['RD_*', 'LD_*'] } })).rejects.toThrow(
      /env\.allow pattern "LD_\*" lets clients set LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, which change how programs load or run: remove it from env\.allow, or set env\.allowUnsafe: true/,
    );
  });
});
