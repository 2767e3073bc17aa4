// Issue 13: the demo's dashboard answers before its fleet runs. end2end/run.sh
// starts a second Gantry (GANTRY_LATE_URL) whose --kubeconfig does not exist
// yet and whose --progress-file the preparation tests write, as scripts/run.sh would.
import { expect, Page } from '@playwright/test';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { password } from './helpers';

export function late(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; run the tests through end2end/run.sh`);
  return value;
}

type Step = { name: string; title: string; state: string; seconds?: number; estimate_seconds?: number; detail?: string };

/** Writes the progress file as scripts/progress.py does: whole, by a rename. */
export function writeProgress(steps: Step[], extra: Record<string, unknown> = {}) {
  const path = late('GANTRY_LATE_PROGRESS');
  const value = {
    title: 'Starting the Gantry demo',
    updated_ms: Date.now(),
    finished: false,
    remaining_seconds: 95,
    failed: null,
    steps: steps.map((s) => ({ seconds: 0, estimate_seconds: 30, detail: null, ...s })),
    ...extra,
  };
  writeFileSync(`${path}.tmp`, JSON.stringify(value));
  renameSync(`${path}.tmp`, path);
}

export const STEPS: Step[] = [
  { name: 'server', title: 'build the dashboard server', state: 'done', seconds: 300 },
  { name: 'dashboard', title: 'start the dashboard', state: 'done', seconds: 2 },
  { name: 'fleet', title: 'start the demo fleet', state: 'running', seconds: 41, detail: 'applying fleet demo: 3 of 17 nodes Ready' },
  { name: 'teams', title: 'map the demo teams', state: 'pending', estimate_seconds: 5 },
  { name: 'bundle', title: 'build the browser bundle', state: 'pending', estimate_seconds: 90 },
];

export async function signInLate(page: Page, hydrated: boolean) {
  await page.goto(`${late('GANTRY_LATE_URL')}/login`);
  if (hydrated) await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', password());
  await page.click('form button[type=submit]');
  await expect(page.getByRole('heading', { name: 'Fleet overview' })).toBeVisible();
}

