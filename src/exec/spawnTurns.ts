/**
 * One command start per event-loop turn. Starting a command forks this process, and
 * the fork is synchronous: with ~130 MiB resident it took 10-40 ms per command in the
 * lab. When dozens of exec requests arrive in one poll phase (the connections a VIP
 * drain held reach the new leader together), starting them all in that phase stalled
 * the loop for seconds, and keepalived's /healthz backstop demoted a healthy leader.
 * Taking turns lets timers, lease renewals and /healthz run between two forks; the
 * commands start in the order they asked, and as fast as before when there is no queue.
 */
export class SpawnTurns {
  private last: Promise<void> = Promise.resolve();

  /** Resolves in a later turn of the event loop than the previous caller's turn. */
  next(): Promise<void> {
    const turn = this.last.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.last = turn;
    return turn;
  }
}
