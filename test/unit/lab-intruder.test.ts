import { describe, expect, it } from 'vitest';
import { etcdRefusal, handshakeRefusal } from '../../deploy/lab/netns/intruder.js';

/** The intruder scenario counts an attack refused only when the refusal is a real one, not "nobody answered". */
describe('failover lab: how the intruder scenario reads a refusal', () => {
  it('a TLS alert or a connection reset during the handshake is a refused handshake', () => {
    expect(
      handshakeRefusal({
        status: 0,
        code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
        error: 'C0:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/record/rec_layer_s3.c:1',
      }),
    ).toBe('TLS alert "certificate required"');
    expect(
      handshakeRefusal({
        status: 0,
        code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
        error: '80:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1',
      }),
    ).toBe('TLS alert "bad certificate"');
    expect(handshakeRefusal({ status: 0, code: 'ECONNRESET', error: 'socket hang up' })).toBe('socket hang up');
  });

  it('no member listening, an unreachable host or a timeout is not a refusal (the attack proved nothing)', () => {
    expect(handshakeRefusal({ status: 0, code: 'ECONNREFUSED', error: 'connect ECONNREFUSED 198.18.0.12:2379' })).toBeNull();
    expect(handshakeRefusal({ status: 0, code: null, error: 'timed out' })).toBeNull();
    expect(handshakeRefusal({ status: 200, body: '{}' })).toBeNull();
  });

  it("etcd's error message is the refusal; a success is none", () => {
    expect(etcdRefusal({ status: 400, body: '{"error":"etcdserver: user name is empty","code":3,"message":"etcdserver: user name is empty"}' })).toBe('HTTP 400 "etcdserver: user name is empty"');
    expect(etcdRefusal({ status: 403, body: '{"error":"etcdserver: permission denied","code":7}' })).toBe('HTTP 403 "etcdserver: permission denied"');
    expect(etcdRefusal({ status: 200, body: '{"header":{"revision":"12"}}' })).toBeNull();
    expect(etcdRefusal({ status: 0, error: 'socket hang up' })).toBeNull();
  });
});
