import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { jsch } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

/** JSch 0.1.5x (Debian libjsch-java) driven the way Rundeck's jsch-ssh/jsch-scp executors drive it. */
describe('Rundeck JSch script step', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const common = () => ['--host', '127.0.0.1', '--port', String(gw.port), '--user', 'root', '--key', gw.keys.rsaPem, '--node', 'gw-test'];

  it('uploads with scp -t, chmods, runs and removes the script; sees exit code and output', async () => {
    const script = join(gw.dir, 'job.sh');
    writeFileSync(script, '#!/bin/sh\necho "exec=$RD_JOB_EXECID args=$*"\necho oops >&2\nexit 3\n');
    const r = await jsch([...common(), '--mode', 'step', '--script', script, '--execid', '5150', '--args', 'a b', '--env', 'RD_JOB_EXECID=5150']);
    expect(r.ops.find((o) => o.op === 'error')).toBeUndefined();
    expect(r.code).toBe(0);
    const [scp, chmod, exec, rm, done] = r.ops;
    expect(scp).toMatchObject({ op: 'scp', exit: 0 });
    expect(chmod).toMatchObject({ op: 'exec', exit: 0 });
    expect(exec).toMatchObject({ op: 'exec', exit: 3, stdout: 'exec=5150 args=a b\n', stderr: 'oops\n' });
    expect(rm).toMatchObject({ op: 'exec', exit: 0 });
    expect(done).toMatchObject({ op: 'done', exit: 3 });
    expect(existsSync(scp!.path!)).toBe(false);

    // JSch closes the scp channel right after the last ack: that upload completed, it was not killed.
    await until(() => gw.audit().some((a) => String(a.command).startsWith('scp -t')), 5000);
    const upload = gw.audit().find((a) => String(a.command).startsWith('scp -t'))!;
    expect(upload).toMatchObject({ result: 'completed', exitStatus: 0, killReason: null });
    const run = gw.audit().find((a) => a.rdJobExecId === '5150' && String(a.command).endsWith('dispatch-script.tmp.sh a b'));
    expect(run).toMatchObject({ result: 'completed', exitStatus: 3 });
  });

  it('runs a plain exec with env sent with want-reply', async () => {
    const r = await jsch([...common(), '--mode', 'exec', '--command', 'echo "$RD_JOB_ID/$RD_OPTION_X/${HOSTILE:-none}"', '--env', 'RD_JOB_ID=j1', '--env', 'RD_OPTION_X=y', '--env', 'HOSTILE=1']);
    expect(r.code).toBe(0);
    expect(r.ops[0]).toMatchObject({ op: 'exec', exit: 0, stdout: 'j1/y/none\n' });
  });
});
