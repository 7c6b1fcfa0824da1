import { describe, it, expect } from 'vitest';
import ssh2 from 'ssh2';
import { parseAuthorizedKeys } from '../../src/ssh/authorizedKeys.js';

const ed = ssh2.utils.generateKeyPairSync('ed25519').public;
const rsa = ssh2.utils.generateKeyPairSync('rsa', { bits: 2048 }).public;

describe('authorized_keys parsing', () => {
  it('reads keys with comments and options, skipping blanks and comments', () => {
    const text = `# team keys\n\n${ed} alice@laptop\nfrom="10.0.0.1,198.18.0.0/15",no-pty ${rsa} rundeck\n`;
    const { keys, problems } = parseAuthorizedKeys(text);
    expect(problems).toEqual([]);
    expect(keys.map((k) => [k.line, k.type])).toEqual([
      [3, 'ssh-ed25519'],
      [4, 'ssh-rsa'],
    ]);
    expect(keys[1]!.options).toBe('from="10.0.0.1,198.18.0.0/15",no-pty');
    expect(keys[0]!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('options with quoted spaces stay one field', () => {
    const { keys } = parseAuthorizedKeys(`command="echo hi there",restrict ${ed}`);
    expect(keys[0]!.options).toBe('command="echo hi there",restrict');
  });

  it('reports a bad line by number and keeps the others', () => {
    const { keys, problems } = parseAuthorizedKeys(`${ed}\nssh-rsa AAAAnotbase64!!\ngarbage\n${rsa}\n`, 'ak');
    expect(keys).toHaveLength(2);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^ak:2: /);
    expect(problems[1]).toMatch(/^ak:3: /);
  });
});
