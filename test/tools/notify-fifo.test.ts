import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync, statSync, openSync, writeSync, closeSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNotifyLine, NotifyFifoReader, type NotifyEvent } from '../../src/leadership/keepalived/notifyFifo.js';
import { until } from '../helpers/until.js';

describe('parseNotifyLine', () => {
  it('reads instance and group lines', () => {
    expect(parseNotifyLine('INSTANCE "VI_1" MASTER 150')).toEqual({ kind: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 150 });
    expect(parseNotifyLine('INSTANCE "VI_1" BACKUP 100\n')).toEqual({ kind: 'INSTANCE', name: 'VI_1', state: 'BACKUP', priority: 100 });
    expect(parseNotifyLine('INSTANCE "VI_1" FAULT 0')?.state).toBe('FAULT');
    expect(parseNotifyLine('INSTANCE "VI_1" STOP 150')?.state).toBe('STOP');
    expect(parseNotifyLine('INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150')?.state).toBe('MASTER_RX_LOWER_PRI');
    expect(parseNotifyLine('GROUP "G1" MASTER')).toEqual({ kind: 'GROUP', name: 'G1', state: 'MASTER', priority: null });
    expect(parseNotifyLine('INSTANCE "my instance" BACKUP 1')?.name).toBe('my instance');
  });
  it('ignores anything else', () => {
    for (const line of ['', 'garbage', 'INSTANCE VI_1 MASTER 150', 'INSTANCE "VI_1" SLEEPING 1', 'VS [10.0.0.1]:tcp:80 UP', 'INSTANCE "VI_1" MASTER x']) {
      expect(parseNotifyLine(line)).toBeNull();
    }
  });
});

describe('NotifyFifoReader', () => {
  let dir = '';
  let reader: NotifyFifoReader | null = null;
  afterEach(() => {
    reader?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates the FIFO 0600, reads lines split across writes, and re-opens after EOF', async () => {
    dir = mkdtempSync(join(tmpdir(), 'eg-fifo-'));
    const path = join(dir, 'run', 'keepalived.fifo');
    const events: NotifyEvent[] = [];
    let eofs = 0;
    reader = new NotifyFifoReader({ path, reopenDelayMs: 10 });
    reader.onEvent((e) => events.push(e));
    reader.onEof(() => eofs++);
    reader.start();
    const st = statSync(path);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const waitFor = (n: number) => until(() => events.length >= n, 4000, 20);
    // first "keepalived": a line in two pieces, then it goes away
    let fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, 'INSTANCE "VI_1" BAC');
    await new Promise((r) => setTimeout(r, 50));
    writeSync(fd, 'KUP 100\nINSTANCE "VI_1" MASTER 150\n');
    await waitFor(2);
    closeSync(fd);
    await until(() => eofs >= 1, 2000, 20);
    expect(eofs).toBe(1);
    // the next "keepalived" finds a reader again
    await new Promise((r) => setTimeout(r, 100));
    fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(fd, 'INSTANCE "VI_1" STOP 150\n');
    await waitFor(3);
    closeSync(fd);
    expect(events.map((e) => e.state)).toEqual(['BACKUP', 'MASTER', 'STOP']);
  });
});
