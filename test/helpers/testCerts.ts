import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Certificates made by openssl for the etcd TLS tests: a CA, then leaves signed by it
 * (P-256 keys, private keys 0600). `ext` is an openssl extension file's text, e.g.
 * "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".
 */
export class TestCerts {
  constructor(readonly dir: string) {}

  file(name: string): string {
    return join(this.dir, name);
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** ca.pem and ca-key.pem. */
  ca(days = 3650, subject = '/CN=execgate test CA'): this {
    this.openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      this.file('ca-key.pem'),
      '-out',
      this.file('ca.pem'),
      '-days',
      String(days),
      '-subj',
      subject,
    );
    chmodSync(this.file('ca-key.pem'), 0o600);
    return this;
  }

  /** <name>.pem and <name>-key.pem, signed by the CA. */
  leaf(name: string, subject: string, days: number, ext: string): this {
    this.openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', this.file(`${name}-key.pem`), '-out', this.file(`${name}.csr`), '-subj', subject);
    writeFileSync(this.file(`${name}.ext`), ext);
    this.openssl(
      'x509',
      '-req',
      '-in',
      this.file(`${name}.csr`),
      '-CA',
      this.file('ca.pem'),
      '-CAkey',
      this.file('ca-key.pem'),
      '-CAcreateserial',
      '-out',
      this.file(`${name}.pem`),
      '-days',
      String(days),
      '-extfile',
      this.file(`${name}.ext`),
    );
    chmodSync(this.file(`${name}-key.pem`), 0o600);
    return this;
  }
}
