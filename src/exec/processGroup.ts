import { readdirSync, readFileSync } from 'node:fs';

/**
 * Live (non-zombie) members of a process group, read from /proc. Zombies count as
 * gone: PID 1 in containers often never reaps orphans.
 */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return members;
  }
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] !== 'Z' && fields[0] !== 'X' && Number(fields[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

const STUCK_AFTER_KILL_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface GroupKillResult {
  /** SIGKILL was needed because SIGTERM did not end every member in time. */
  escalated: boolean;
  /** When the last member was seen gone (ms since epoch). */
  goneAt: number;
  /** Members still alive long after SIGKILL (stuck in uninterruptible sleep). */
  survivors: number[];
}

/** SIGTERM the whole group, SIGKILL whatever is left after the grace period. */
export async function killProcessGroup(pgid: number, graceMs: number, immediate = false, pollMs = 25): Promise<GroupKillResult> {
  let escalated = immediate;
  signalGroup(pgid, immediate ? 'SIGKILL' : 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let giveUpAt = immediate ? Date.now() + STUCK_AFTER_KILL_MS : Infinity;
  let members = processGroupMembers(pgid);
  while (members.length > 0) {
    if (Date.now() >= giveUpAt) return { escalated, goneAt: Date.now(), survivors: members };
    if (!escalated && Date.now() >= deadline) {
      escalated = true;
      giveUpAt = Date.now() + STUCK_AFTER_KILL_MS;
      signalGroup(pgid, 'SIGKILL');
    }
    await sleep(pollMs);
    members = processGroupMembers(pgid);
  }
  return { escalated, goneAt: Date.now(), survivors: [] };
}
