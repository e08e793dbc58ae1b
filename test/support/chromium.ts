// Debian's headless Chromium for the tests that draw HTML pages (the run
// report, the usage and costs pages): where it is, how it is launched (no
// network of its own), and a browser plus a scratch folder per suite.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Inside a describe: a browser and a temporary folder for its pages, started before the suite's tests and removed after. */
export function chromiumPerSuite(prefix: string): { readonly browser: Browser; readonly dir: string } {
  let browser: Browser | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get browser() {
      if (!browser) throw new Error('the browser is not started yet');
      return browser;
    },
    get dir() {
      if (!dir) throw new Error('the folder is not made yet');
      return dir;
    },
  };
}
