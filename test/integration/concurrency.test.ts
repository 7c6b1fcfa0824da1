import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { connectClient, execOn } from '../helpers/ssh2Client.js';

describe('default limits let a scheduler burst through', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('500 concurrent `sleep 1; echo ok` sessions from one source all succeed', async () => {
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 500 }, async () => {
        const client = await connectClient(gw.port, gw.keys.ed25519);
        try {
          return await execOn(client, 'sleep 1; echo ok');
        } finally {
          client.end();
        }
      }),
    );
    console.log(`500 concurrent sessions: ${Date.now() - started} ms wall time`);
    expect(results.filter((r) => r.code === 0 && r.stdout.toString() === 'ok\n')).toHaveLength(500);
  }, 180_000);
});
