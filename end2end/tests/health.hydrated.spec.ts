// Issue 14, self-healing made visible. The demo fleet breaks two deployments on
// purpose (the testbed's KWOK stages): prod/nlp rerank-serve crash-loops and
// prod/vision ocr-serve is OOM-killed over and over.
import { expect, test } from '@playwright/test';
import { kubectl, signIn, waitHydrated } from './helpers';

test('the overview lists crash-looping and OOM-killed workloads, and their pages say why', async ({ page }) => {
  await signIn(page, 'admin');
  const panel = page.getByTestId('unhealthy');
  await expect(panel.locator('tr[data-workload="rerank-serve"] [data-trouble=CrashLooping]')).toHaveCount(1, { timeout: 30_000 });
  await expect(panel.locator('tr[data-workload="ocr-serve"] [data-trouble=OomKilled]')).toHaveCount(1);
  await expect(panel.locator('tr[data-workload="llama-serve"]')).toHaveCount(0);

  await panel.locator('tr[data-workload="ocr-serve"] a').click();
  await expect(page).toHaveURL(/\/clusters\/prod\/namespaces\/vision\/deployments\/ocr-serve$/);
  await expect(page.getByTestId('health')).toContainText('Unhealthy: ');
  await expect(page.getByTestId('health')).toContainText('OOM-killed');
  const restarts = page.getByTestId('restarts-table');
  await expect(restarts).toContainText('OOMKilled');
  await expect(restarts).toContainText('137');
  await expect(page.getByTestId('pod-table').getByTestId('last-termination')).toContainText('OOMKilled (exit 137)');

  // The deployments list marks them too.
  await page.goto('/workloads');
  await waitHydrated(page);
  await expect(page.locator('tr[data-deployment="rerank-serve"] [data-trouble=CrashLooping]')).toHaveCount(1);
  await expect(page.locator('tr[data-deployment="llama-serve"] [data-trouble]')).toHaveCount(0);

  // A healthy deployment says so.
  await page.goto('/clusters/prod/namespaces/nlp/deployments/llama-serve');
  await waitHydrated(page);
  await expect(page.getByTestId('health')).toContainText('Healthy');
});

test('a team sees only its own unhealthy workloads', async ({ page }) => {
  await signIn(page, 'bob'); // team vision
  const panel = page.getByTestId('unhealthy');
  await expect(panel.locator('tr[data-workload="ocr-serve"]')).toHaveCount(1, { timeout: 30_000 });
  await expect(panel.locator('tr[data-workload="rerank-serve"]')).toHaveCount(0);
});

test('a node made NotReady shows so on the cluster and node pages, and recovers', async ({ page }) => {
  const node = 'dev-cpu-0';
  await signIn(page, 'admin');
  await page.goto(`/clusters/dev/nodes/${node}`);
  await waitHydrated(page);
  await expect(page.getByTestId('node-status')).toContainText('Ready');
  await expect(page.getByTestId('node-status')).not.toContainText('NotReady');
  try {
    kubectl('dev', 'annotate', 'node', node, 'testbed.gantry.dev/not-ready=true', '--overwrite');
    // Live: the page follows the node's watch, no reload.
    await expect(page.getByTestId('node-status')).toContainText('NotReady', { timeout: 10_000 });
    await expect(page.getByTestId('node-conditions').locator('tr[data-condition=Ready]')).toContainText('KubeletNotReady');
    await expect(page.getByTestId('not-ready-note')).toBeVisible();
    await page.goto('/clusters/dev');
    await waitHydrated(page);
    await expect(page.locator(`tr[data-node="${node}"] [data-testid=node-status]`)).toContainText('NotReady');
  } finally {
    kubectl('dev', 'annotate', 'node', node, 'testbed.gantry.dev/not-ready-');
  }
  await expect(page.locator(`tr[data-node="${node}"] [data-testid=node-status]`)).not.toContainText('NotReady', { timeout: 15_000 });
});
