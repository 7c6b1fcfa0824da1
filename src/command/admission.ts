import { admitWaiting } from '../leadership/gate.js';
import { EXIT_TEMPFAIL } from '../exitCodes.js';
import { dispatchScriptMessage, missingDispatchScript } from '../exec/dispatchScript.js';
import type { RunOnceDecision } from '../runonce/coordinator.js';
import { commandLineOf, type CommandRequest } from './request.js';

export interface CommandLimits {
  maxCommandBytes: number;
  maxCommands: number;
  maxCommandsPerUser: number;
}

/** Concurrent commands, total and per SSH user (limits.maxCommands*). */
export interface CommandSlots {
  tryAcquire(user: string): { ok: true; release: () => void } | { ok: false; limit: 'total' | 'perKey' };
}

/** What the leader gate reads (a Leadership, or the DrainController overlaid on one). */
export type GateLeadership = Parameters<typeof admitWaiting>[1];

export interface RunOnceDecider {
  decide(command: string, env: ReadonlyMap<string, string>, cancelled: () => boolean): Promise<RunOnceDecision>;
}

export interface AdmissionPorts {
  node: string;
  limits: CommandLimits;
  leadership: GateLeadership;
  /** How long a standby waits for the lead before refusing (0: refuse at once). */
  gateWaitMs: number;
  /** Set on run-once nodes: they use claims instead of the leader gate. */
  runOnce: RunOnceDecider | null;
  audit: { refusal(): string | null };
  slots: CommandSlots;
  /** One command start per event-loop turn (absent: no pacing). */
  spawnTurns?: { next(): Promise<void> };
  /** Cluster nodes: why a dispatch script has no copy here, when known. */
  scriptReplica?: { whyMissing(path: string): string | null };
}

/** A run-once claim this node won: whoever holds it finishes it with the exit status. */
export interface Claim {
  finish(status: number): Promise<void>;
}

/**
 * What admission decided. A refusal after a won claim carries the claim (finish it with
 * 75 once the refusal is out); a run carries the slot and the claim, both to give back.
 */
export type Admission =
  | { verdict: 'refuse'; reason: string; message: string; claim: Claim | null }
  | { verdict: 'answer'; status: number; line: string; outcome: 'skipped' | 'mirrored' | 'unknown' }
  | { verdict: 'run'; token: bigint | null; slot: { release(): void }; claim: Claim | null };

type Refusal = Extract<Admission, { verdict: 'refuse' }>;

const refusal = (reason: string, message: string, claim: Claim | null = null): Refusal => ({ verdict: 'refuse', reason, message, claim });

/** The leader gate, or on run-once nodes the step's claim. */
async function decide(
  ports: AdmissionPorts,
  request: CommandRequest,
  commandLine: string,
  closed: Promise<void>,
): Promise<Refusal | Extract<Admission, { verdict: 'answer' }> | { verdict: 'decided'; token: bigint | null; claim: Claim | null }> {
  if (ports.runOnce) {
    if (request.kind === 'shell') {
      return refusal('run-once-shell', 'execgate: run-once cannot deduplicate a shell session (sshj sudo/always-set-pty); use exec for this node; not running');
    }
    let gone = false;
    void closed.then(() => (gone = true));
    const ro = request.kind === 'sftp' ? ({ action: 'run-local' } as const) : await ports.runOnce.decide(commandLine, request.env.rundeckHints, () => gone);
    request.activity.commandDecided();
    if (ro.action === 'refuse') return refusal(ro.reason, ro.message);
    if (ro.action === 'answer') return { verdict: 'answer', status: ro.status, line: ro.line, outcome: ro.outcome };
    return ro.action === 'run-claimed' ? { verdict: 'decided', token: ro.token, claim: ro } : { verdict: 'decided', token: null, claim: null };
  }
  const gate = await admitWaiting(ports.node, ports.leadership, ports.gateWaitMs);
  request.activity.commandDecided();
  if (!gate.admitted) return refusal(gate.reason, gate.message);
  return { verdict: 'decided', token: gate.token, claim: null };
}

/** Why this node refuses a command it may run by leadership (or claim), or a slot to run it in. */
function checkAndTakeSlot(ports: AdmissionPorts, request: CommandRequest, commandLine: string): Refusal | { release(): void } {
  const { node, limits } = ports;
  // A script step whose upload went to another node before a failover: a clear failure, never a wrong run.
  const missingScript = request.kind === 'exec' && request.requester.forcedCommand === null ? missingDispatchScript(commandLine) : null;
  if (missingScript) return refusal('dispatch-script-missing', dispatchScriptMessage(node, missingScript, ports.scriptReplica?.whyMissing(missingScript) ?? null));
  const auditProblem = ports.audit.refusal();
  if (auditProblem) return refusal('audit-unwritable', `execgate: ${auditProblem}; not running`);
  const user = request.requester.username;
  const slot = ports.slots.tryAcquire(user);
  if (slot.ok) return slot;
  return slot.limit === 'total'
    ? refusal('max-commands', `execgate: ${limits.maxCommands} commands are running on ${node} (limits.maxCommands); not running`)
    : refusal('max-commands-per-user', `execgate: user ${user} already runs ${limits.maxCommandsPerUser} commands (limits.maxCommandsPerUser); not running`);
}

/**
 * Admission of one command, in order: environment and command-line limits, the start's
 * turn, the leader gate (or the run-once claim), a missing dispatch script, an
 * unwritable audit log, the command slots.
 */
export async function admitCommand(ports: AdmissionPorts, request: CommandRequest, closed: Promise<void>): Promise<Admission> {
  const commandLine = commandLineOf(request);
  if (request.env.overflow) return refusal('env-limit', request.env.overflow);
  const maxBytes = ports.limits.maxCommandBytes;
  if (Buffer.byteLength(commandLine) > maxBytes) {
    return refusal('command-too-long', `execgate: command is ${Buffer.byteLength(commandLine)} bytes, over limits.maxCommandBytes (${maxBytes}); not running`);
  }
  // Wait for this command's turn first and ask the gate after it: the start then follows its admission in the same turn.
  await ports.spawnTurns?.next();
  const decision = await decide(ports, request, commandLine, closed);
  if (decision.verdict !== 'decided') return decision;
  const { token, claim } = decision;
  // From here on the run-once claim (if any) has one owner: it goes out with the verdict, or is finished here.
  let checked: Refusal | { release(): void };
  try {
    checked = checkAndTakeSlot(ports, request, commandLine);
  } catch (err) {
    await claim?.finish(EXIT_TEMPFAIL);
    throw err;
  }
  if ('verdict' in checked) return { ...checked, claim };
  return { verdict: 'run', token, slot: checked, claim };
}
