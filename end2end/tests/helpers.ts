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
