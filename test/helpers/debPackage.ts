import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The Debian package the tests install: $EXECGATE_PACKAGE_DEB, else
 * artifacts/execgate_<version>_<arch>.deb, built here with deploy/package/build.sh
 * (npm run package, about 2 minutes) unless it is newer than everything it is built from.
 * The same rule as test/tools/package.test.ts, so a run builds it at most once.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const INPUTS = ['src', 'deploy/package', 'patches', 'package.json', 'package-lock.json', 'tsconfig.json', 'deploy/example-cluster.yaml'];

export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
export const DEB_ARCH = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout?.trim() || 'amd64';
export const DEFAULT_PACKAGE = join(ROOT, 'artifacts', `execgate_${PACKAGE_VERSION}_${DEB_ARCH}.deb`);

function newestInput(): number {
  let newest = 0;
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of INPUTS) if (existsSync(join(ROOT, p))) walk(join(ROOT, p));
  return newest;
}

/** Why the package cannot be had here (null: it can). */
export function packagePrerequisite(): string | null {
  const given = process.env.EXECGATE_PACKAGE_DEB;
  if (given) return existsSync(given) ? null : `EXECGATE_PACKAGE_DEB=${given} does not exist`;
  const tools = ['npm', 'dpkg-deb', 'dpkg-shlibdeps', 'g++', 'make', 'strip'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (tools.length && !existsSync(DEFAULT_PACKAGE)) return `${DEFAULT_PACKAGE} is missing and cannot be built here (no ${tools.join(', ')}: apt-get install build-essential dpkg-dev)`;
  return null;
}

let built: { file: string; buildMs: number | null } | null = null;

/** The package file; builds it when missing or older than its inputs (throws with the build's output). */
export function debPackage(): { file: string; buildMs: number | null } {
  if (built) return built;
  const given = process.env.EXECGATE_PACKAGE_DEB;
  if (given) return (built = { file: resolve(given), buildMs: null });
  if (existsSync(DEFAULT_PACKAGE) && statSync(DEFAULT_PACKAGE).mtimeMs > newestInput()) return (built = { file: DEFAULT_PACKAGE, buildMs: null });
  const started = Date.now();
  const b = spawnSync('bash', [join(ROOT, 'deploy/package/build.sh')], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 900_000 });
  if (b.status !== 0 || !existsSync(DEFAULT_PACKAGE)) throw new Error(`npm run package failed (${b.status ?? b.signal}):\n${b.stdout}\n${b.stderr}`);
  return (built = { file: DEFAULT_PACKAGE, buildMs: Date.now() - started });
}
