import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh, run } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('a real Prometheus scrapes a running gateway', () => {
  let gw: TestGateway;
  let prom: ChildProcess;
  let promUrl: string;
  let promLog = '';
  const dir = mkdtempSync(join(tmpdir(), 'execgate-prometheus-'));

  beforeAll(async () => {
    gw = await startTestGateway();
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [{ job_name: 'execgate', static_configs: [{ targets: [`127.0.0.1:${gw.httpPort}`] }] }],
    };
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    prom = spawn('/usr/bin/prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prom.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    const ready = await until(
      async () => {
        if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}:\n${promLog}`);
        return fetch(`${promUrl}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      30_000,
      100,
    );
    if (ready === null) throw new Error(`prometheus not ready after 30 s:\n${promLog}`);
  });
  afterAll(async () => {
    if (prom && prom.exitCode === null && prom.signalCode === null) {
      const exited = new Promise((r) => prom.once('exit', r));
      prom.kill('SIGTERM');
      const timer = setTimeout(() => prom.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a PromQL query for execgate_commands_total after a command ran', async () => {
    const r = await ssh(gw.port, gw.keys.ed25519, 'echo counted');
    expect(r.code).toBe(0);
    let samples: Sample[] = [];
    await until(
      async () => {
        const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('execgate_commands_total{result="completed"}')}`);
        const body = (await res.json()) as { status: string; data: { resultType: string; result: Sample[] } };
        expect(body.status).toBe('success');
        samples = body.data.result;
        return samples.some((s) => Number(s.value[1]) >= 1);
      },
      30_000,
      500,
    );
    console.log(`PromQL execgate_commands_total -> ${JSON.stringify(samples)}`);
    expect(samples).toHaveLength(1);
    expect(samples[0]!.metric).toMatchObject({ __name__: 'execgate_commands_total', job: 'execgate', node: 'gw-test', result: 'completed', instance: `127.0.0.1:${gw.httpPort}` });
    expect(Number(samples[0]!.value[1])).toBeGreaterThanOrEqual(1);

    const up = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('execgate_leader')}`).then((x) => x.json() as Promise<{ data: { result: Sample[] } }>);
    expect(up.data.result[0]!.value[1]).toBe('1');
    const targets = await fetch(`${promUrl}/api/v1/targets`).then((x) => x.json() as Promise<{ data: { activeTargets: Array<{ health: string; lastError: string }> } }>);
    expect(targets.data.activeTargets).toEqual([expect.objectContaining({ health: 'up', lastError: '' })]);
  });

  it('promtool check metrics passes on the scraped text', async () => {
    const text = await fetch(`${gw.httpUrl}/metrics`).then((r) => r.text());
    for (const name of [
      'execgate_ssh_connections_total',
      'execgate_ssh_sessions',
      'execgate_auth_failures_total',
      'execgate_commands_total',
      'execgate_commands_running',
      'execgate_command_duration_seconds',
      'execgate_output_bytes_total',
      'execgate_leader',
      'execgate_fencing_token',
      'execgate_leadership_transitions_total',
      'execgate_commands_refused_total',
      'execgate_build_info',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    const check = await run('/usr/bin/promtool', ['check', 'metrics'], { input: text });
    console.log(`promtool check metrics: exit ${check.code}${check.stdout.length || check.stderr ? `: ${check.stdout.toString()}${check.stderr}` : ''}`);
    expect(check.stdout.toString() + check.stderr).toBe('');
    expect(check.code).toBe(0);
  });
});
