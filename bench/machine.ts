import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem, release, availableParallelism, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { sshdVersion } from './servers/sshd.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  openssh: string;
  sshd: string;
  ssh2: string;
  ssh2NativeCrypto: boolean;
  loadavgAtStart: number[];
}

function sshVersion(): string {
  // ssh -V prints on stderr
  const r = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n')[0] ?? '';
}

function ssh2Info(): { version: string; native: boolean } {
  const require = createRequire(import.meta.url);
  try {
    const pkgPath = require.resolve('ssh2/package.json');
    const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
    let native = false;
    try {
      require(pkgPath.replace(/package\.json$/, 'lib/protocol/crypto/build/Release/sshcrypto.node'));
      native = true;
    } catch {
      native = false;
    }
    return { version, native };
  } catch {
    return { version: 'unknown', native: false };
  }
}

export function describeMachine(): Machine {
  const openssh = sshVersion() || 'unknown';
  const s = ssh2Info();
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    openssh,
    sshd: sshdVersion(),
    ssh2: s.version,
    ssh2NativeCrypto: s.native,
    loadavgAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
