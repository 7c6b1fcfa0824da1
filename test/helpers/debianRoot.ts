import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Fresh minimal Debian roots for install tests (issue 18), made by
 * `debootstrap --variant=minbase` from deb.debian.org and cached as one tar per suite:
 *
 *   $EXECGATE_CI_CACHE/roots/<suite>.tar     (default /var/cache/execgate-ci)
 *   $EXECGATE_CI_CACHE/apt/<suite>/          (downloaded .debs, reused across runs)
 *
 * A missing tar is rebuilt (written beside, then renamed: an interrupted build leaves no
 * half tar). Each test extracts its own copy, so nothing a test does reaches the cache.
 * Mounts inside a copy are the test's own: proc, a read-only sysfs, a tmpfs /dev with
 * a handful of device nodes and a private devpts instance (the host's /dev is never bound
 * in, so removing the copy cannot touch it), a tmpfs /run, and the apt archive cache.
 * Teardown unmounts in reverse order and refuses to delete a copy that still has a mount.
 */
export const MIRROR = 'http://deb.debian.org/debian';
export const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
export const CACHE = process.env.EXECGATE_CI_CACHE ?? '/var/cache/execgate-ci';
/** PATH inside the roots (no host environment leaks into a chroot). */
export const ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type Suite = 'bookworm' | 'trixie';

/** Does this host's keyring carry the suite's release key (bookworm's debian-archive-keyring 2023.3+deb12u1+ knows trixie)? */
export function keyringKnows(suite: Suite): boolean {
  const number = { bookworm: 12, trixie: 13 }[suite];
  const home = mkdtempSync('/tmp/execgate-gpg-');
  try {
    const r = spawnSync('gpg', ['--no-default-keyring', '--keyring', KEYRING, '--list-keys', '--with-colons'], { encoding: 'utf8', env: { ...process.env, GNUPGHOME: home } });
    return r.status === 0 && new RegExp(`Debian Stable Release Key \\(${number}/${suite}\\)`).test(r.stdout);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** What is missing to build or use roots here ([] when nothing). */
export function rootPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (chroot, mount)');
  for (const bin of ['/usr/sbin/debootstrap', '/usr/sbin/chroot', '/usr/bin/tar', '/usr/bin/gpg']) if (!existsSync(bin)) missing.push(`${bin} (.ci/install-debian-packages installs debootstrap)`);
  if (!existsSync(KEYRING)) missing.push(`${KEYRING} (debian-archive-keyring)`);
  return missing;
}

export interface RootTimings {
  suite: Suite;
  extractMs: number;
}

function sh(argv: string[], options: SpawnSyncOptions & { allowFail?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  const out = { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  if (!options.allowFail && r.status !== 0) {
    throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal ?? r.error?.message}):\n${out.stderr.slice(-4000)}${out.stdout.slice(-2000)}`);
  }
  return out;
}

function cachedTar(suite: Suite): string | null {
  const tar = join(CACHE, 'roots', `${suite}.tar`);
  return existsSync(tar) && statSync(tar).size > 0 ? tar : null;
}

/** Runs a program with its output in a file (no pipe for a blocked event loop to fill); rejects with its tail. */
function runLogged(argv: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) return resolve();
      reject(new Error(`${argv.join(' ')} failed (${code ?? signal}):\n${readFileSync(logFile, 'utf8').slice(-4000)}`));
    });
  });
}

/**
 * Builds the cached root of every suite that has none, all at once: debootstrap waits on
 * the mirror far more than on the CPU, and its output goes to a file, so the caller may
 * block its own event loop (a package build) meanwhile. Resolves to the build time per
 * suite built.
 */
export async function warmRoots(suites: Suite[], log: (line: string) => void = () => {}): Promise<Map<Suite, number>> {
  const built = new Map<Suite, number>();
  await Promise.all(
    suites
      .filter((suite) => cachedTar(suite) === null)
      .map(async (suite) => {
        if (!keyringKnows(suite)) {
          throw new Error(`${KEYRING} does not carry Debian ${suite}'s release key: install debian-archive-keyring from bookworm-backports (never debootstrap --no-check-gpg)`);
        }
        const dir = join(CACHE, 'roots');
        const tar = join(dir, `${suite}.tar`);
        mkdirSync(dir, { recursive: true });
        const started = Date.now();
        const build = mkdtempSync(join(dir, `.${suite}-build-`));
        chmodSync(build, 0o755); // the root's "/" (mkdtemp makes 0700: no other account could reach /usr/lib)
        const logFile = `${build}.log`;
        try {
          log(`debootstrap --variant=minbase ${suite} (cache miss: ${tar})`);
          await runLogged(['debootstrap', '--variant=minbase', `--keyring=${KEYRING}`, suite, build, MIRROR], logFile);
          // Package lists are fetched per test (a cached list goes stale when the mirror moves on).
          await runLogged(['tar', '-C', build, '--numeric-owner', '-cf', `${tar}.tmp`, '.'], logFile);
          renameSync(`${tar}.tmp`, tar);
        } finally {
          rmSync(`${tar}.tmp`, { force: true });
          rmSync(build, { recursive: true, force: true });
          rmSync(logFile, { force: true });
        }
        built.set(suite, Date.now() - started);
        log(`${suite} root built and cached in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }),
  );
  return built;
}

/** The cached tar of a suite's minbase root (warmRoots builds it). */
export function cachedRoot(suite: Suite): string {
  const tar = cachedTar(suite);
  if (tar === null) throw new Error(`no cached Debian ${suite} root in ${join(CACHE, 'roots')}: warmRoots() builds it`);
  return tar;
}

/** Mount points (absolute) at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const base = resolve(dir);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => Boolean(m))
    .map((m) => m.replace(/\\040/g, ' '))
    .filter((m) => m === base || m.startsWith(`${base}/`))
    .sort((a, b) => b.length - a.length);
}

export class DebianRoot {
  readonly dir: string;
  readonly timings: RootTimings;
  private readonly mounted: string[] = [];

  private constructor(
    readonly suite: Suite,
    readonly work: string,
    timings: RootTimings,
  ) {
    this.dir = join(work, 'root');
    this.timings = timings;
  }

  /** A fresh copy of the suite's cached root under a new directory of `parent`. */
  static fresh(suite: Suite, parent: string): DebianRoot {
    const tar = cachedRoot(suite);
    const work = mkdtempSync(join(parent, `execgate-${suite}-`));
    const started = Date.now();
    const root = new DebianRoot(suite, work, { suite, extractMs: 0 });
    mkdirSync(root.dir);
    sh(['tar', '-C', root.dir, '--numeric-owner', '-xf', tar]);
    chmodSync(root.dir, 0o755);
    root.timings.extractMs = Date.now() - started;
    return root;
  }

  private mount(argv: string[], target: string): void {
    const path = join(this.dir, target);
    mkdirSync(path, { recursive: true });
    sh(['mount', ...argv, path]);
    this.mounted.push(path);
  }

  /** proc, sysfs (ro), a private /dev, /run, the apt archive cache; DNS and a policy-rc.d that starts no daemon. */
  prepare(): void {
    this.mount(['-t', 'proc', 'proc'], 'proc');
    this.mount(['-t', 'sysfs', '-o', 'ro,nosuid,nodev,noexec', 'sysfs'], 'sys');
    this.mount(['-t', 'tmpfs', '-o', 'mode=0755,nosuid,size=16m', 'tmpfs'], 'dev');
    const dev = join(this.dir, 'dev');
    for (const [name, major, minor] of [
      ['null', 1, 3],
      ['zero', 1, 5],
      ['full', 1, 7],
      ['random', 1, 8],
      ['urandom', 1, 9],
      ['tty', 5, 0],
    ] as const) {
      sh(['mknod', '-m', '0666', join(dev, name), 'c', String(major), String(minor)]);
    }
    mkdirSync(join(dev, 'pts'));
    mkdirSync(join(dev, 'shm'));
    this.mount(['-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620,gid=5', 'devpts'], 'dev/pts');
    this.mount(['-t', 'tmpfs', '-o', 'mode=1777,nosuid,nodev,size=64m', 'tmpfs'], 'dev/shm');
    sh(['ln', '-s', 'pts/ptmx', join(dev, 'ptmx')]);
    for (const [link, to] of [
      ['fd', '/proc/self/fd'],
      ['stdin', '/proc/self/fd/0'],
      ['stdout', '/proc/self/fd/1'],
      ['stderr', '/proc/self/fd/2'],
    ])
      sh(['ln', '-s', to!, join(dev, link!)]);
    this.mount(['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev,size=64m', 'tmpfs'], 'run');
    const archives = join(CACHE, 'apt', this.suite);
    mkdirSync(join(archives, 'partial'), { recursive: true });
    this.mount(['--bind', archives], 'var/cache/apt/archives');
    copyFileSync('/etc/resolv.conf', join(this.dir, 'etc/resolv.conf'));
    // A throwaway root: dpkg need not fsync every file (minutes saved on a 2-core CI host).
    writeFileSync(join(this.dir, 'etc/dpkg/dpkg.cfg.d/execgate-ci-unsafe-io'), 'force-unsafe-io\n');
    // Like a container build: maintainer scripts of dependencies (keepalived, ...) start nothing.
    writeFileSync(join(this.dir, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n');
    chmodSync(join(this.dir, 'usr/sbin/policy-rc.d'), 0o755);
  }

  /** argv to run a command inside the root with a clean environment (prefix with `ip netns exec NS` for a namespace). */
  argv(command: string[], env: Record<string, string> = {}): string[] {
    const vars = { PATH: ROOT_PATH, HOME: '/root', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', ...env };
    return ['chroot', this.dir, '/usr/bin/env', '-i', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), ...command];
  }

  /** Runs a command inside the root (host network namespace: apt reaches the mirror). */
  run(command: string[], options: { allowFail?: boolean; env?: Record<string, string>; netns?: string; timeoutMs?: number } = {}) {
    const argv = this.argv(command, options.env);
    return sh(options.netns ? ['ip', 'netns', 'exec', options.netns, ...argv] : argv, { allowFail: options.allowFail, timeout: options.timeoutMs ?? 600_000 });
  }

  /** A path inside the root, seen from the host. */
  path(p: string): string {
    return join(this.dir, p);
  }

  /**
   * Unmounts everything (ours in reverse, then anything left below the root, lazily as a
   * last resort) and deletes the copy only when no mount is left under it.
   */
  teardown(): string[] {
    const problems: string[] = [];
    for (const m of [...this.mounted].reverse()) {
      const r = sh(['umount', m], { allowFail: true });
      if (r.status !== 0 && mountsUnder(m).includes(m)) problems.push(`umount ${m}: ${r.stderr.trim()}`);
    }
    this.mounted.length = 0;
    for (const m of mountsUnder(this.dir)) sh(['umount', '-l', m], { allowFail: true });
    const left = mountsUnder(this.work);
    if (left.length) {
      problems.push(`still mounted, not deleting ${this.work}: ${left.join(', ')}`);
      return problems;
    }
    rmSync(this.work, { recursive: true, force: true });
    return problems;
  }
}
