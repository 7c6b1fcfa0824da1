/** Rundeck's identifiers, kept whatever the allow-list says (run-once needs them). */
const RUNDECK_HINTS = new Set(['RD_JOB_EXECID', 'RD_NODE_NAME', 'RD_NODE_HOSTNAME']);

export interface EnvPolicy {
  /** env.allow (and env.allowUnsafe). */
  allowed: (name: string) => boolean;
  maxEnvVars: number;
  maxEnvBytes: number;
}

/** One session's env requests: the allow-listed ones within limits.maxEnvVars/maxEnvBytes, and Rundeck's hints. */
export class ClientEnvironment {
  readonly allowed = new Map<string, string>();
  readonly rundeckHints = new Map<string, string>();
  private bytes = 0;
  private overflowMessage: string | null = null;

  constructor(private readonly policy: EnvPolicy) {}

  add(name: string, value: string): void {
    if (RUNDECK_HINTS.has(name)) this.rundeckHints.set(name, value);
    if (!this.policy.allowed(name)) return;
    const { maxEnvVars, maxEnvBytes } = this.policy;
    const size = name.length + value.length;
    if (this.allowed.size >= maxEnvVars || this.bytes + size > maxEnvBytes) {
      this.overflowMessage = `execgate: more than limits.maxEnvVars (${maxEnvVars}) variables or limits.maxEnvBytes (${maxEnvBytes}) bytes of environment; not running`;
      return;
    }
    this.allowed.set(name, value);
    this.bytes += size;
  }

  /** Why the command must not run (too much environment), or null. */
  get overflow(): string | null {
    return this.overflowMessage;
  }

  get rdJobExecId(): string | null {
    return this.rundeckHints.get('RD_JOB_EXECID') ?? null;
  }
}
