/**
 * Every exit status execgate gives, in one place: those of its own CLI and those a
 * client sees when the gateway (not the command) ends a session.
 */

/** CLI: done, or every check passed. */
export const EXIT_OK = 0;
/** CLI: a check failed (doctor, status against a peer). */
export const EXIT_CHECK_FAILED = 1;
/** CLI: an unexpected error (a bug, not an operator's mistake), or serve ended by a second signal before it stopped cleanly. */
export const EXIT_FAILURE = 1;
/** CLI: wrong usage or a config that cannot be used. */
export const EXIT_USAGE = 2;
/** EX_TEMPFAIL (sysexits.h): nothing ran; the scheduler may retry elsewhere or later. */
export const EXIT_TEMPFAIL = 75;
/** The shell's "found but cannot run": the gateway could not start the command. */
export const EXIT_CANNOT_RUN = 126;
