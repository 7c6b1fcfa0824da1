import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';

/**
 * Byte-exact streams at the edges of SSH's framing, through the real OpenSSH client:
 * one byte either side of a channel packet (32 KiB with OpenSSH) and of the channel
 * window (2 MiB), for every cipher family (each pads and frames differently). The
 * write path coalesces packets per event-loop turn and pads them from a bulk CSPRNG
 * block; a byte lost, doubled or reordered anywhere fails here.
 */
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZES = [0, 1, 32 * KiB - 1, 32 * KiB, 32 * KiB + 1, 64 * KiB + 1, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 3 * MiB + 12_345];
const CIPHERS = ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr'];

describe('streams at packet and window edges stay byte-exact', () => {
  let gw: TestGateway;
  let blob: Buffer;
  let file: string;
  beforeAll(async () => {
    gw = await startTestGateway();
    blob = randomBytes(4 * MiB);
    file = join(gw.dir, 'edges.bin');
    writeFileSync(file, blob);
  });
  afterAll(async () => {
    await gw?.stop();
  });

  describe.each(CIPHERS)('%s', (cipher) => {
    const extra = ['-c', cipher, ...(cipher.endsWith('-ctr') ? ['-o', 'MACs=hmac-sha2-256-etm@openssh.com'] : [])];

    it('stdout: every size arrives whole and identical', async () => {
      for (const n of SIZES) {
        const r = await ssh(gw.port, gw.keys.ed25519, `head -c ${n} ${file}`, { extra });
        expect(r.code, `${n} bytes: ${r.stderr}`).toBe(0);
        expect(r.stdout.length, `${n} bytes`).toBe(n);
        expect(sha256(r.stdout), `${n} bytes`).toBe(sha256(blob.subarray(0, n)));
      }
    });

    it('stdin: every size reaches the command whole and identical', async () => {
      for (const n of SIZES) {
        const input = blob.subarray(0, n);
        const piped = await ssh(gw.port, gw.keys.ed25519, 'sha256sum', { extra, input });
        expect(piped.code, `${n} bytes: ${piped.stderr}`).toBe(0);
        expect(piped.stdout.toString().split(' ')[0], `${n} bytes`).toBe(sha256(input));
      }
    });
  });

  it('thousands of tiny writes on stdout and stderr keep their order within each stream', async () => {
    // One byte per write, alternating streams: many packets per event-loop turn, all coalesced.
    const script = 'i=0; while [ $i -lt 3000 ]; do printf "%d," $i; printf "%d;" $i >&2; i=$((i+1)); done';
    const r = await ssh(gw.port, gw.keys.ed25519, script, { extra: ['-c', 'chacha20-poly1305@openssh.com'] });
    expect(r.code).toBe(0);
    const expected = (sep: string) => Array.from({ length: 3000 }, (_, i) => `${i}${sep}`).join('');
    expect(r.stdout.toString()).toBe(expected(','));
    expect(r.stderrBytes.toString()).toBe(expected(';'));
  });
});
