// Issue 18 with JavaScript off: every chart's frame, a static line and its
// value table come from the server, and the range picker is plain links
// and a GET form.
import { expect, test } from '@playwright/test';
import { signIn } from './helpers';
import { screenshots } from './screenshots';

test('without JavaScript a chart is a frame, a static line and a value table', async ({ page }) => {
  await signIn(page, 'admin', false);
  await page.goto('/costs?window=1h&aggregate=team');
  const chart = page.getByTestId('chart-spend');
  await expect(chart.locator('svg.chart-static path')).not.toHaveCount(0);
  const values = chart.getByTestId('chart-values');
  await expect(values.locator('thead')).toContainText('Total');
  for (const team of ['vision', 'nlp', 'idle']) {
    await expect(values.locator(`tr[data-series="${team}"] td.num`).nth(1)).toHaveText(/^\$[\d,]+(\.\d\d)?$/);
  }
  await expect(chart.locator('canvas')).toHaveCount(0);
  // The range picker works as links that keep the page's other choices.
  await page.getByTestId('range-bar').locator('a[data-range="6h"]').click();
  await expect(page).toHaveURL(/window=6h/);
  await expect(page).toHaveURL(/aggregate=team/);
  await expect(page.getByTestId('chart-spend').locator('.chart-meta')).toHaveAttribute('data-end', /\d+/);

  // An absolute range from the form, read as UTC without JavaScript.
  const form = page.getByTestId('absolute-range');
  const now = new Date();
  const iso = (d: Date) => d.toISOString().slice(0, 16);
  await form.locator('input[name=from]').fill(iso(new Date(now.getTime() - 30 * 60_000)));
  await form.locator('input[name=to]').fill(iso(now));
  await form.locator('button[type=submit]').click();
  await expect(page).toHaveURL(/from=/);
  const shown = page.getByTestId('chart-spend').locator('.chart-meta');
  const span = Number(await shown.getAttribute('data-end')) - Number(await shown.getAttribute('data-start'));
  expect(span).toBeLessThanOrEqual(30 * 60_000 + 60_000);
  expect(span).toBeGreaterThan(25 * 60_000);
});

test('without JavaScript the cost table is sorted, paged and filtered by the server', async ({ page }) => {
  await signIn(page, 'admin', false);
  await page.goto('/costs?window=1h&aggregate=workload&limit=2');
  const table = page.getByTestId('allocation');
  const rows = table.locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(table.locator('th[aria-sort="descending"]')).toHaveText('Cost ▼');
  const showing = page.getByTestId('costs-showing');
  await expect(showing).toHaveText(/^1–2 of \d+ groups$/);
  const groups = Number((await showing.innerText()).match(/of (\d+)/)![1]);
  expect(groups).toBeGreaterThan(2);
  const costs = async () =>
    (await rows.locator('td:nth-child(3)').allInnerTexts()).map((t) => Number(t.replace(/[$,]/g, '')));
  const [costliest, second] = await costs();
  expect(costliest).toBeGreaterThanOrEqual(second);
  await expect(page.getByTestId('costs-previous')).toHaveCount(0);

  // The next page carries on where the first ended.
  await page.getByTestId('costs-next').click();
  await expect(page).toHaveURL(/offset=2/);
  await expect(showing).toHaveText(new RegExp(`^3–4 of ${groups} groups$`));
  expect((await costs())[0]).toBeLessThanOrEqual(second);
  await expect(page.getByTestId('costs-previous')).toHaveCount(1);

  // A header sorts by its column (from the first page), and again the other way.
  await table.locator('thead th a', { hasText: 'GPU-hours' }).click();
  await expect(page).toHaveURL(/sort=gpu_hours&order=desc/);
  await expect(page).not.toHaveURL(/offset=/);
  await expect(table.locator('th[aria-sort="descending"]')).toHaveText('GPU-hours ▼');
  await table.locator('thead th a', { hasText: 'GPU-hours' }).click();
  await expect(page).toHaveURL(/sort=gpu_hours&order=asc/);
  await expect(table.locator('th[aria-sort="ascending"]')).toHaveText('GPU-hours ▲');
  const hours = (await rows.locator('td:nth-child(2)').allInnerTexts()).map(Number);
  expect(hours[0]).toBeLessThanOrEqual(hours[1]);

  // The filter keeps only groups whose name contains the text.
  await page.locator('input[name=q]').fill('serve');
  await page.locator('input[name=q]').press('Enter');
  await expect(page).toHaveURL(/q=serve/);
  for (const name of await rows.locator('td:first-child').allInnerTexts()) {
    expect(name).toContain('serve');
  }
  await page.goto('/costs?window=1h&aggregate=workload&q=zzz');
  await expect(table).toContainText('No group matches "zzz" in this window.');
});

test('without JavaScript the overview charts have their legends and values', async ({ page }) => {
  await signIn(page, 'admin', false);
  const gpus = page.getByTestId('chart-gpus');
  await expect(gpus.locator('tr[data-series="NVIDIA-L4 capacity"]')).toHaveCount(1);
  await expect(gpus.locator('tr[data-series="NVIDIA-L4 capacity"] td.num').nth(1)).toHaveText(/GPUs$/);
  await expect(page.getByTestId('chart-cost-rate').getByTestId('chart-values')).toContainText('/h');
});

test('screenshots without JavaScript at 1400 and 390 px', async ({ page }, testInfo) => {
  test.setTimeout(180_000);
  await signIn(page, 'admin', false);
  await screenshots(page, testInfo, [
    ['overview', '/'],
    ['costs', '/costs?window=1h&aggregate=team'],
    ['deployment', '/clusters/prod/namespaces/nlp/deployments/llama-serve?range=1h'],
  ], false);
});
