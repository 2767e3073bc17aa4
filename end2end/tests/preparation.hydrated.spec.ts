// Issue 13: the banner that says what is still being prepared, and a fleet
// that arrives after the dashboard (see preparation.ts).
import { expect, test } from '@playwright/test';
import { copyFileSync, renameSync } from 'node:fs';
import { late, signInLate, STEPS, writeProgress } from './preparation';

test('while the fleet starts, the pages say so, and its clusters appear without a reload', async ({ page }) => {
  writeProgress(STEPS);
  await signInLate(page, true);
  const banner = page.getByTestId('preparing');
  await expect(banner).toContainText('step 3 of 5, start the demo fleet (applying fleet demo: 3 of 17 nodes Ready)');
  await expect(banner).toContainText('About 1m 35s to go');

  await page.getByRole('link', { name: 'Clusters', exact: true }).first().click();
  await expect(page.getByRole('heading', { name: 'Clusters' })).toBeVisible();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.live-dot.on')).toHaveCount(1, { timeout: 20_000 });
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
  await expect(page.locator('table[data-testid=clusters] tbody tr[data-cluster]')).toHaveCount(0);

  // The step moves on: the banner follows.
  writeProgress(STEPS.map((s) => (s.name === 'fleet' ? { ...s, detail: 'applying fleet demo: 17 of 17 nodes Ready' } : s)));
  await expect(page.getByTestId('preparing')).toContainText('17 of 17 nodes Ready');

  // The fleet is up: its kubeconfig appears, and so do its clusters.
  copyFileSync(late('KUBECONFIG'), `${late('GANTRY_LATE_KUBECONFIG')}.tmp`);
  renameSync(`${late('GANTRY_LATE_KUBECONFIG')}.tmp`, late('GANTRY_LATE_KUBECONFIG'));
  await expect(page.locator('table[data-testid=clusters] tr[data-cluster=dev]')).toBeVisible({ timeout: 60_000 });
  await expect(page.locator('table[data-testid=clusters] tr[data-cluster=dev]')).toContainText('live', { timeout: 60_000 });

  // All done: the banner goes.
  writeProgress(
    STEPS.map((s) => ({ ...s, state: 'done' })),
    { finished: true, remaining_seconds: 0 },
  );
  await expect(page.getByTestId('preparing')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
});
