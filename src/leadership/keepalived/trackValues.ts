/**
 * The values execgate writes to keepalived's track_file (weight 1), in one place:
 * trackFile.ts decides when each applies, render/ sizes the priority spread by them.
 */
export const TRACK_LEADER = 100;
export const TRACK_SUCCESSOR = 50;
export const TRACK_STANDBY = 0;
export const TRACK_BEHIND = -50;
export const TRACK_STEP_DOWN = -254;
