import { defineConfig } from '@playwright/test';

// Debian's Chromium: Playwright cannot download its own browsers here.
const chromium = {
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

export default defineConfig({
  testDir: './tests',
  timeout: 90_000,
  expect: { timeout: 15_000 },
  // One server and one fleet are shared; tests change cluster state, so run them in order.
  workers: 1,
  fullyParallel: false,
  reporter: [['list']],
  use: {
    baseURL: process.env.GANTRY_URL,
    launchOptions: chromium,
    trace: 'retain-on-failure',
  },
  projects: [
    // The hydrated app: interactivity, server functions, live updates.
    { name: 'hydrated', testMatch: /.*\.hydrated\.spec\.ts/, use: { javaScriptEnabled: true } },
    // JavaScript off: the server-rendered HTML alone must work.
    { name: 'ssr', testMatch: /.*\.ssr\.spec\.ts/, use: { javaScriptEnabled: false } },
  ],
});
