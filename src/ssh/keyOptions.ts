import { isIP } from 'node:net';
import { BlockList } from 'node:net';
import { unmapIPv4 } from '../address.js';

/** The authorized_keys options execgate understands (sshd(8) AUTHORIZED_KEYS FILE FORMAT). */
export interface KeyOptions {
  from: string[] | null;
  command: string | null;
  environment: Array<[string, string]>;
  expiresAt: Date | null;
  pty: boolean;
  /**
   * execgate-accounts="rundeck,deploy" (execgate's own; sshd has none): the local
   * accounts this key may log in as. Required on every key of one shared file that
   * could reach more than one account; null when absent.
   */
  accounts: string[] | null;
  /** Options we do not implement but that only restrict (forwarding etc.): accepted. */
  ignored: string[];
}

const RESTRICTING_NOOPS = new Set([
  'no-agent-forwarding',
  'no-port-forwarding',
  'no-x11-forwarding',
  'no-user-rc',
  'agent-forwarding',
  'port-forwarding',
  'x11-forwarding',
  'user-rc',
  'no-touch-required',
  'verify-required',
]);

/** Splits "a,b=\"x,y\",c" on commas outside double quotes. */
function splitTopLevel(options: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (c === '\\' && quoted && options[i + 1] === '"') {
      current += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (c === ',' && !quoted) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  if (quoted) throw new Error('unterminated quote in options');
  if (current) parts.push(current);
  return parts;
}

/** expiry-time="YYYYMMDD[HHMM[SS]][Z]": local time unless Z. */
function parseExpiry(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z)?$/.exec(value);
  if (!m) throw new Error(`expiry-time "${value}" is not YYYYMMDD[HHMM[SS]][Z]`);
  const [, y, mo, d, h = '00', mi = '00', s = '00', z] = m;
  const parts = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  return z ? new Date(Date.UTC(...parts)) : new Date(...parts);
}

/**
 * Parses the options field of one authorized_keys line. Unknown options are an error
 * (sshd refuses the key too): a typo must not silently widen access.
 */
export function parseKeyOptions(field: string, allowEnvironment: boolean): KeyOptions {
  const result: KeyOptions = { from: null, command: null, environment: [], expiresAt: null, pty: true, accounts: null, ignored: [] };
  if (!field) return result;
  for (const part of splitTopLevel(field)) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).toLowerCase();
    const value = eq === -1 ? null : part.slice(eq + 1);
    const need = () => {
      if (value === null) throw new Error(`option ${name} needs a value`);
      return value;
    };
    switch (name) {
      case 'from':
        result.from = need()
          .split(',')
          .map((p) => p.trim())
          .filter(Boolean);
        break;
      case 'command':
        result.command = need();
        break;
      case 'environment': {
        if (!allowEnvironment) throw new Error('environment= is disabled (auth.permitKeyEnvironment: false)');
        const v = need();
        const i = v.indexOf('=');
        if (i <= 0) throw new Error(`environment="${v}" is not NAME=value`);
        result.environment.push([v.slice(0, i), v.slice(i + 1)]);
        break;
      }
      case 'expiry-time':
        result.expiresAt = parseExpiry(need());
        break;
      case 'execgate-accounts': {
        const names = need()
          .split(',')
          .map((n) => n.trim());
        const bad = names.find((n) => !/^[A-Za-z0-9_.][A-Za-z0-9_.@-]*\$?$/.test(n));
        if (bad !== undefined) throw new Error(`execgate-accounts="${need()}" must list local account names separated by commas${bad ? ` ("${bad}" is not one)` : ''}`);
        if (result.accounts) throw new Error('execgate-accounts is given twice; list every account in one option');
        result.accounts = names;
        break;
      }
      case 'restrict':
      case 'no-pty':
        result.pty = false;
        break;
      case 'pty':
        result.pty = true;
        break;
      default:
        if (RESTRICTING_NOOPS.has(name)) result.ignored.push(name);
        else throw new Error(`unsupported option "${name}"`);
    }
  }
  return result;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(
    '^' +
      glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
    'i',
  );
}

/**
 * from="pattern-list": address globs and CIDRs, "!" negates and wins. Host names are
 * not resolved (as with sshd's UseDNS no); a name pattern never matches an address.
 */
export function addressMatchesFrom(address: string, patterns: string[]): boolean {
  const addr = unmapIPv4(address);
  const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    let hit: boolean;
    if (pattern.includes('/')) {
      const [net, bits] = pattern.split('/');
      const list = new BlockList();
      try {
        list.addSubnet(net!, Number(bits), isIP(net!) === 6 ? 'ipv6' : 'ipv4');
        hit = list.check(addr, family);
      } catch {
        hit = false;
      }
    } else {
      hit = globToRegExp(pattern).test(addr);
    }
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}
