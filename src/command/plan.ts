import { existsSync } from 'node:fs';
import { buildEnvironment } from '../exec/environment.js';
import { planLaunch, type LaunchPlan } from '../exec/launch.js';
import type { CommandRequest } from './request.js';

/** The exec settings a plan uses (config.exec, and the node's name for EXECGATE_NODE). */
export interface PlanSettings {
  node: string;
  shell: string;
  sftpServer: string;
  /** PATH of every command. */
  path: string;
}

export interface CommandPlan extends LaunchPlan {
  cwd: string;
  /** A line for the client's stderr before the command starts (its home is missing), or null. */
  notice: string | null;
}

/** The program to start as the account (before any user switch), and what the client asked for under a forced command. */
export function program(settings: PlanSettings, request: CommandRequest): { argv: string[]; forcedFrom: string | null } {
  const { account } = request.requester.runAs;
  const forced = request.requester.forcedCommand;
  let argv: string[];
  if (forced !== null) argv = [settings.shell, '-c', forced];
  else if (request.kind === 'exec') argv = [settings.shell, '-c', request.requested ?? ''];
  else if (request.kind === 'shell') argv = [account.shell, '-l'];
  else argv = [settings.sftpServer];
  return { argv, forcedFrom: forced !== null ? (request.requested ?? '') : null };
}

/** The command's whole environment: execgate's own, the client's allow-listed, the key's. */
export function commandEnvironment(settings: PlanSettings, request: CommandRequest, execId: string, token: bigint | null, forcedFrom: string | null): Record<string, string> {
  const env = buildEnvironment(request.requester.runAs.account, settings.path, request.env.allowed, {
    node: settings.node,
    fencingToken: token,
    execId,
    clientAddress: request.clientAddress,
    clientPort: request.clientPort,
    serverAddress: request.serverAddress,
    serverPort: request.serverPort,
  });
  for (const [name, value] of request.requester.keyEnvironment) env[name] = value;
  if (forcedFrom !== null) env.SSH_ORIGINAL_COMMAND = forcedFrom;
  return env;
}

/** What to start, as whom (setpriv when the user switches), where. Throws when it cannot be planned (no setpriv). */
export function planCommand(settings: PlanSettings, request: CommandRequest, execId: string, token: bigint | null, dirExists: (path: string) => boolean = existsSync): CommandPlan {
  const { account, switchUser } = request.requester.runAs;
  const { argv, forcedFrom } = program(settings, request);
  const launch = planLaunch(argv, commandEnvironment(settings, request, execId, token, forcedFrom), switchUser ? account : null);
  if (dirExists(account.home)) return { ...launch, cwd: account.home, notice: null };
  return { ...launch, cwd: '/', notice: `execgate: could not chdir to home directory ${account.home}: no such directory\n` };
}
