import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';

const ARTIFACTS = join(ROOT, 'artifacts');

describe('the status page in headless Chromium', () => {
  let gw: TestGateway;
  let context: BrowserContext;
  const profile = mkdtempSync(join(tmpdir(), 'execgate-chromium-'));

  beforeAll(async () => {
    gw = await startTestGateway();
    // A persistent context is the way to give Chromium its own fresh user-data dir.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1100, height: 700 },
    });
  });
  afterAll(async () => {
    await context?.close();
    await gw?.stop();
    rmSync(profile, { recursive: true, force: true });
  });

  it('shows the role, then a running sleep appears by itself; a screenshot is saved', async () => {
    const page = await context.newPage();
    await page.goto(`${gw.httpUrl}/`);
    await expect.poll(() => page.locator('#role').textContent()).toBe('leader');
    expect(await page.locator('#token').textContent()).toBe('1');
    expect(await page.locator('#running-count').textContent()).toBe('0');
    expect(await page.title()).toBe('leader · gw-test · execgate');

    const marker = `page-${Date.now()}`;
    const job = ssh(gw.port, gw.keys.ed25519, `sleep 6 # ${marker}`);
    // No reload from the test: the page refreshes itself.
    await expect.poll(() => page.locator('#running td.cmd').allTextContents(), { timeout: 15_000, interval: 250 }).toContainEqual(`sleep 6 # ${marker}`);
    expect(await page.locator('#running-count').textContent()).toBe('1');
    expect(await page.locator('#role').getAttribute('data-role')).toBe('leader');

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(5000);
    console.log(`screenshot: ${shot}`);

    const r = await job;
    expect(r.code).toBe(0);
    await expect.poll(() => page.locator('#running-count').textContent(), { timeout: 15_000, interval: 250 }).toBe('0');
    await page.close();
  });
});
