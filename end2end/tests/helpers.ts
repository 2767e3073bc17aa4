import { expect, Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';

export const password = () => {
  const p = process.env.GANTRY_DEMO_PASSWORD;
  if (!p) throw new Error('GANTRY_DEMO_PASSWORD is not set; run the tests through end2end/run.sh');
  return p;
};

/** Signs in through the login form and waits for the overview. */
export async function signIn(page: Page, username: string, hydrated = true) {
  await page.goto('/login');
  if (hydrated) await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password());
  await page.click('form button[type=submit]');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Fleet overview' })).toBeVisible();
  if (hydrated) await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Runs the testbed's kubectl against a demo cluster and returns stdout. */
export function kubectl(context: string, ...args: string[]): string {
  const bin = process.env.KUBECTL;
  if (!bin) throw new Error('KUBECTL is not set; run the tests through end2end/run.sh');
  return execFileSync(bin, ['--context', context, ...args], { encoding: 'utf8', env: process.env });
}

/** Waits until the browser has hydrated the page (the app marks `<body>`). */
export async function waitHydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Waits until the live-update stream is connected (the header's dot turns on). */
export async function waitLive(page: Page) {
  await expect(page.locator('.live-dot.on')).toHaveCount(1, { timeout: 20_000 });
}

/** `kubectl get ... -o jsonpath=...` against a demo cluster, trimmed. */
export function jsonpath(context: string, namespace: string, resource: string, path: string): string {
  return kubectl(context, '-n', namespace, 'get', resource, '-o', `jsonpath=${path}`).trim();
}

/** A name no other test (or earlier run against the same fleet) uses: a DNS label. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}

/**
 * The "cluster/namespace" line under each row's name in a list table, keyed
 * by the row's `data-<key>` attribute, as the user sees it.
 */
export async function rowPlaces(page: Page, table: string, key: string): Promise<Array<[string, string]>> {
  return page.locator(`table[data-testid=${table}] tbody tr`).evaluateAll(
    (rows, key) =>
      rows.map((row) => [
        row.getAttribute(`data-${key}`) ?? '',
        (row.querySelector('td .muted.small')?.textContent ?? '').trim(),
      ]),
    key,
  ) as Promise<Array<[string, string]>>;
}
