// Issue 4 without JavaScript: the server-rendered HTML is filtered the same way.
import { expect, test } from '@playwright/test';
import { rowPlaces, signIn } from './helpers';

test('with JavaScript off a viewer\'s deployments page lists only their team\'s deployments', async ({ page }) => {
  await signIn(page, 'bob', false);

  await page.goto('/workloads');
  const table = page.getByTestId('deployments');
  for (const name of ['resnet-serve', 'yolo-serve', 'detector-serve', 'clip-serve']) {
    await expect(table.locator(`tr[data-deployment="${name}"]`)).toHaveCount(1);
  }
  for (const name of ['bert-serve', 'embed-serve', 'llama-serve']) {
    await expect(table.locator(`tr[data-deployment="${name}"]`)).toHaveCount(0);
  }
  const places = await rowPlaces(page, 'deployments', 'deployment');
  expect(places.length).toBeGreaterThanOrEqual(4);
  for (const [name, place] of places) {
    expect(place, `row ${name}`).toMatch(/^(dev\/vision-dev|staging\/vision-staging|prod\/vision)$/);
  }
  await expect(table).not.toContainText('nlp');

  // A filter for another team's namespace finds nothing rather than leaking it.
  await page.goto('/workloads?namespace=nlp-dev');
  await expect(page.getByTestId('deployments').locator('tbody tr[data-deployment]')).toHaveCount(0);
});

test('with JavaScript off a viewer\'s deployment page is server-rendered, read-only', async ({ page }) => {
  await signIn(page, 'bob', false);
  // Several loads: a server-side rendering race has left this page at "Loading…" now and then.
  for (let i = 0; i < 5; i++) {
    await page.goto('/clusters/dev/namespaces/vision-dev/deployments/resnet-serve');
    await expect(page.getByTestId('replicas'), `load ${i + 1}`).toHaveText(/^\d+\/1$/, { timeout: 5_000 });
    await expect(page.getByTestId('read-only')).toBeVisible();
    await expect(page.getByTestId('scale-replicas')).toHaveCount(0);
    await expect(page.locator('main .loading')).toHaveCount(0);
  }
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
});
