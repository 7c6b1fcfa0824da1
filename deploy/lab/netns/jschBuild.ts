import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JSCH_JAR, ROOT } from './paths.js';

/**
 * Compiles test/jsch/RundeckStep.java once per version of its source (javac against
 * Debian's JSch): the build directory is named after the source's hash, so an edited
 * harness is never run from a stale class, and two test files compiling at once each
 * build privately and rename into place.
 */
export function jschClasspath(root = ROOT): string {
  if (!existsSync(JSCH_JAR)) throw new Error(`${JSCH_JAR} is missing: apt-get install libjsch-java (.ci/install-debian-packages does)`);
  const source = join(root, 'test/jsch/RundeckStep.java');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const build = join(tmpdir(), `execgate-jsch-build-${hash}`);
  if (!existsSync(join(build, 'RundeckStep.class'))) {
    const staging = `${build}.${process.pid}`;
    mkdirSync(staging, { recursive: true });
    try {
      execFileSync('javac', ['-cp', JSCH_JAR, '-d', staging, source]);
      renameSync(staging, build);
    } catch (err) {
      if (!existsSync(join(build, 'RundeckStep.class'))) throw err; // lost a race: the winner's build is as good
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return `${JSCH_JAR}:${build}`;
}
