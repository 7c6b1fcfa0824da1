import type { AuditEndFields, AuditStartFields } from '../../src/audit/auditLog.js';

/** Who ran it: the same in every test record. */
const IDENTITY = { user: 'rundeck', account: 'rundeck', uid: 1000, keyFingerprint: 'SHA256:x', client: '127.0.0.1:5000' };

/** Records for the audit tests. */
export function startFields(execId: string, extra: Partial<AuditStartFields> = {}): AuditStartFields {
  return {
    execId,
    ...IDENTITY,
    command: 'sleep 300',
    rdJobExecId: null,
    token: null,
    start: new Date().toISOString(),
    pid: process.pid,
    cgroup: null,
    ...extra,
  };
}

export function endFields(execId: string, extra: Partial<AuditEndFields> = {}): AuditEndFields {
  const now = new Date().toISOString();
  return {
    execId,
    ...IDENTITY,
    command: 'true',
    rdJobExecId: null,
    token: null,
    start: now,
    end: now,
    durationMs: 0,
    result: 'exited',
    exitStatus: 0,
    exitCode: 0,
    signal: null,
    killReason: null,
    leftoverKilled: 0,
    bytesOut: { stdout: 0, stderr: 0 },
    ...extra,
  };
}
