import { describe, it, expect } from 'vitest';
import { createServer, connect, type Socket } from 'node:net';
import fc from 'fast-check';
import { encodeProxyV2, parseProxyV2, readProxyHeader, readOptionalProxyHeader } from '../../src/ssh/proxyProtocol.js';

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

describe('encodeProxyV2: the exact bytes of the spec layout', () => {
  it('TCP over IPv4', () => {
    const header = encodeProxyV2({ source: { address: '198.18.0.77', port: 40123 }, destination: { address: '198.18.0.1', port: 22 } });
    // prettier-ignore
    expect([...header]).toEqual([
      ...SIGNATURE,
      0x21, // version 2 (high nibble), command PROXY (low nibble)
      0x11, // AF_INET (high nibble), STREAM (low nibble)
      0x00, 0x0c, // 12 address bytes follow
      198, 18, 0, 77, // source address
      198, 18, 0, 1, // destination address
      0x9c, 0xbb, // source port 40123
      0x00, 0x16, // destination port 22
    ]);
  });

  it('TCP over IPv6', () => {
    const header = encodeProxyV2({ source: { address: '2001:db8::7:1234', port: 50000 }, destination: { address: '2001:db8::1', port: 2222 } });
    // prettier-ignore
    expect([...header]).toEqual([
      ...SIGNATURE,
      0x21, // version 2, PROXY
      0x21, // AF_INET6, STREAM
      0x00, 0x24, // 36 address bytes follow
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x07, 0x12, 0x34, // source address
      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01, // destination address
      0xc3, 0x50, // source port 50000
      0x08, 0xae, // destination port 2222
    ]);
  });

  it('IPv4-mapped addresses go as IPv4; a mixed pair goes as IPv6 with the IPv4 one mapped', () => {
    const mapped = encodeProxyV2({ source: { address: '::ffff:10.1.2.3', port: 1 }, destination: { address: '10.0.0.1', port: 2 } });
    expect(mapped[13]).toBe(0x11);
    expect(parseProxyV2(mapped)!.info).toEqual({ address: '10.1.2.3', port: 1 });
    const mixed = encodeProxyV2({ source: { address: '10.1.2.3', port: 1 }, destination: { address: '2001:db8::1', port: 2 } });
    expect(mixed[13]).toBe(0x21);
    expect([...mixed.subarray(16, 32)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
  });

  it('refuses what it cannot encode, naming the field', () => {
    expect(() => encodeProxyV2({ source: { address: 'example.com', port: 1 }, destination: { address: '10.0.0.1', port: 2 } })).toThrow(/source address "example.com"/);
    expect(() => encodeProxyV2({ source: { address: '10.0.0.2', port: 1 }, destination: { address: '10.0.0.1', port: 70000 } })).toThrow(/destination port 70000/);
  });
});

const endpoint = (address: fc.Arbitrary<string>) => fc.record({ address, port: fc.integer({ min: 0, max: 65535 }) });
const anyAddress = fc.oneof(fc.ipV4(), fc.ipV6());

describe('parseProxyV2 against encodeProxyV2 (fast-check)', () => {
  it('round trip: IPv4 exactly, IPv6 to the same 16 bytes', () => {
    fc.assert(
      fc.property(endpoint(fc.ipV4()), endpoint(fc.ipV4()), (source, destination) => {
        const header = encodeProxyV2({ source, destination });
        expect(parseProxyV2(header)).toEqual({ info: source, length: header.length });
      }),
    );
    fc.assert(
      fc.property(endpoint(anyAddress), endpoint(anyAddress), (source, destination) => {
        const header = encodeProxyV2({ source, destination });
        const parsed = parseProxyV2(header)!;
        expect(parsed.length).toBe(header.length);
        expect(parsed.info.port).toBe(source.port);
        // the parsed (uncompressed) address encodes to the very same header
        const again = encodeProxyV2({ source: { address: parsed.info.address!, port: source.port }, destination });
        expect(again.equals(header)).toBe(true);
      }),
    );
  });

  it('bytes after the declared length are never read: the SSH stream that follows changes nothing', () => {
    fc.assert(
      fc.property(endpoint(anyAddress), endpoint(anyAddress), fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 64 }), (source, destination, a, b) => {
        const header = encodeProxyV2({ source, destination });
        const first = parseProxyV2(Buffer.concat([header, a]));
        const second = parseProxyV2(Buffer.concat([header, b]));
        expect(first).toEqual(second);
        expect(first!.length).toBe(header.length);
      }),
    );
  });

  it('a truncated header asks for more bytes (null), never returns an address', () => {
    fc.assert(
      fc.property(endpoint(anyAddress), endpoint(anyAddress), fc.nat(), (source, destination, cut) => {
        const header = encodeProxyV2({ source, destination });
        expect(parseProxyV2(header.subarray(0, cut % header.length))).toBeNull();
      }),
    );
  });

  it('mutated, truncated and random input: null, a result within the input, or a clear Error; nothing else', () => {
    const outcome = (buf: Buffer) => {
      let result;
      try {
        result = parseProxyV2(buf);
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
        expect((err as Error).message).toMatch(/PROXY/);
        return;
      }
      if (result === null) return;
      expect(result.length).toBeGreaterThanOrEqual(16);
      expect(result.length).toBe(16 + buf.readUInt16BE(14));
      expect(result.length).toBeLessThanOrEqual(buf.length);
      // the result depends on the declared bytes only
      const rest = Buffer.alloc(buf.length - result.length, 0xa5);
      expect(parseProxyV2(Buffer.concat([buf.subarray(0, result.length), rest]))).toEqual(result);
    };
    const mutation = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(endpoint(anyAddress), endpoint(anyAddress), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.nat(), fc.boolean(), (source, destination, mutations, cut, truncate) => {
        const header = Buffer.from(encodeProxyV2({ source, destination }));
        for (const m of mutations) header[m.at % header.length] = m.value;
        outcome(truncate ? header.subarray(0, cut % (header.length + 1)) : header);
      }),
      { numRuns: 2000 },
    );
    // the mutations that matter most: family, command, version and length bytes
    fc.assert(
      fc.property(fc.integer({ min: 12, max: 15 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 1100 }), (at, value, tail) => {
        const header = Buffer.from(encodeProxyV2({ source: { address: '10.0.0.1', port: 1 }, destination: { address: '10.0.0.2', port: 2 } }));
        header[at] = value;
        outcome(Buffer.concat([header, tail]));
      }),
      { numRuns: 2000 },
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => outcome(Buffer.from(bytes))));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => outcome(Buffer.concat([Buffer.from(SIGNATURE), Buffer.from(bytes)]))));
  });
});

/** A connected loopback pair: `server` is the accepted side, paused as the SSH listener's are. */
async function socketPair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  const listener = createServer({ pauseOnConnect: true });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => listener.once('connection', r));
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const server = await accepted;
  listener.close();
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
    },
  };
}

const readAll = (socket: Socket, bytes: number) =>
  new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes) resolve(Buffer.concat(chunks));
    });
    socket.resume();
  });

describe('reading the header from a socket: strict for load balancers, optional for cluster peers', () => {
  const header = encodeProxyV2({ source: { address: '198.18.0.9', port: 41000 }, destination: { address: '198.18.0.1', port: 22 } });
  const version = Buffer.from('SSH-2.0-OpenSSH_9.2\r\n');

  it('a peer that sends a header: the real client, and the SSH bytes after it are put back', async () => {
    const { client, server, close } = await socketPair();
    try {
      client.write(Buffer.concat([header, version]));
      expect(await readOptionalProxyHeader(server, 2000, 1000)).toEqual({ address: '198.18.0.9', port: 41000 });
      expect((await readAll(server, version.length)).equals(version)).toBe(true);
    } finally {
      close();
    }
  });

  it('a peer that connects directly ("SSH-"): no header, every byte put back', async () => {
    const { client, server, close } = await socketPair();
    try {
      client.write(version);
      expect(await readOptionalProxyHeader(server, 2000, 1000)).toBeNull();
      expect((await readAll(server, version.length)).equals(version)).toBe(true);
    } finally {
      close();
    }
  });

  it('a peer whose client waits for the server to speak first is direct after directAfterMs', async () => {
    const { server, close } = await socketPair();
    try {
      const started = Date.now();
      expect(await readOptionalProxyHeader(server, 5000, 200)).toBeNull();
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      close();
    }
  });

  it('a peer that starts a header must finish it correctly', async () => {
    const { client, server, close } = await socketPair();
    try {
      const bad = Buffer.from(header);
      bad[12] = 0x31; // version 3
      client.write(bad);
      await expect(readOptionalProxyHeader(server, 2000, 1000)).rejects.toThrow(/unsupported PROXY protocol version 3/);
    } finally {
      close();
    }
  });

  it('a load balancer (strict) that sends "SSH-" is refused', async () => {
    const { client, server, close } = await socketPair();
    try {
      client.write(version);
      await expect(readProxyHeader(server, 2000)).rejects.toThrow(/not a PROXY v2 header/);
    } finally {
      close();
    }
  });
});
