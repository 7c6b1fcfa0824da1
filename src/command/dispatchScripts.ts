import type { Writable } from 'node:stream';
import { dispatchScriptTransfer } from '../exec/dispatchScript.js';
import type { ScriptReplicaPort } from '../cluster/scriptReplica.js';
import { ScpAckGate } from '../cluster/scpAckGate.js';
import type { CommandRequest } from './request.js';

/**
 * Rundeck's upload of a dispatch script (`scp -t <script>`): the sink's last acknowledgement,
 * which the client takes as "uploaded" (JSch hangs up right after it), waits for the peer copies.
 */
export function dispatchUploadGate(replica: ScriptReplicaPort | undefined, request: CommandRequest, pty: boolean, out: Writable): ScpAckGate | null {
  if (!replica || request.kind !== 'exec' || pty || request.requester.forcedCommand !== null) return null;
  const transfer = dispatchScriptTransfer(request.requested ?? '');
  if (transfer?.op !== 'upload') return null;
  const { uid } = request.requester.runAs.account;
  return new ScpAckGate(out, () => replica.afterUpload(transfer.path, uid));
}

/** After Rundeck's `chmod +x` or `rm -f` of its script succeeded here: the same on the other nodes. */
export async function followDispatchScriptChange(replica: ScriptReplicaPort | undefined, request: CommandRequest, commandLine: string): Promise<void> {
  if (!replica || request.requester.forcedCommand !== null) return;
  const transfer = dispatchScriptTransfer(commandLine);
  const { uid } = request.requester.runAs.account;
  if (transfer?.op === 'remove') await replica.afterRemove(transfer.path, uid);
  else if (transfer?.op === 'mode') await replica.afterUpload(transfer.path, uid); // the copies take the new mode
}
