import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The chart and page-weight benchmark (server/benches/charts.rs runs it
// through end2end/run.sh --config=bench.config.ts): not a test suite.
export default defineConfig({
  ...base,
  testDir: './bench',
  // No Playwright trace while measuring: its screencast encodes every frame,
  // which is itself most of a frame's time on this machine's two cores.
  use: { ...base.use, trace: 'off' },
  timeout: 300_000,
  projects: [{ name: 'bench', testMatch: /.*\.bench\.ts/, use: { javaScriptEnabled: true } }],
});
