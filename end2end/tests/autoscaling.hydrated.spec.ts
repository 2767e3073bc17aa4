// Issue 14, node autoscaling. The demo fleet runs Karpenter (its KWOK cloud provider) in prod with
// three GPU NodePools; sdxl-serve asks for more A100s than prod's fixed nodes have, so the
// a100-spot pool launches a gpu-a100-8x spot node. train-giant asks for 16 GPUs on one node, which
// no instance type has: Karpenter says so.
import { expect, test } from '@playwright/test';
import { signIn, waitHydrated } from './helpers';

test('a cluster page shows its node pools against their limits, the NodeClaims and the scale events', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/clusters/prod');
  await waitHydrated(page);
  const pools = page.getByTestId('node-pools');
  for (const pool of ['h100-on-demand', 'a100-spot', 'l4-spot']) {
    await expect(pools.locator(`tr[data-pool="${pool}"]`)).toHaveCount(1, { timeout: 60_000 });
  }
  const a100 = pools.locator('tr[data-pool="a100-spot"]');
  await expect(a100).toContainText('NVIDIA-A100-SXM4-80GB');
  await expect(a100).toContainText('gpu-a100-8x');
  await expect(a100.getByTestId('pool-gpus')).toHaveText('8 / 16', { timeout: 120_000 });
  const claim = page.getByTestId('node-claims').locator('tr[data-claim^="a100-spot-"]');
  await expect(claim.getByTestId('claim-instance-type')).toHaveText('gpu-a100-8x');
  await expect(claim.getByTestId('claim-state')).toContainText('Ready', { timeout: 60_000 });
  await expect(claim).toContainText('spot');
  await expect(page.getByTestId('autoscaling').getByTestId('events')).toContainText('Nominated');

  // The claim's node is a node of the cluster, with its GPUs.
  await claim.locator('a').first().click();
  await expect(page).toHaveURL(/\/clusters\/prod\/nodes\//);
  await expect(page.locator('dl.facts')).toContainText('gpu-a100-8x');
});

test('the pending page says when the autoscaler makes no node for a pod, and why', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/pending?q=train-giant');
  await waitHydrated(page);
  const row = page.getByTestId('pending').locator('tr[data-pod^="train-giant-"]');
  await expect(row.getByTestId('autoscaler')).toContainText('The autoscaler makes no node for it', { timeout: 60_000 });
});

test('a team member sees the pools but not other teams\' pods in the scale events', async ({ page }) => {
  await signIn(page, 'bob'); // viewer in vision
  await page.goto('/clusters/prod');
  await waitHydrated(page);
  await expect(page.getByTestId('node-pools').locator('tr[data-pool="a100-spot"]')).toHaveCount(1, { timeout: 60_000 });
  await expect(page.getByTestId('autoscaling').getByTestId('events')).not.toContainText('pod/train-giant');
});

test('without Karpenter, a cluster\'s nodes are grouped into pools by their node-group label', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/clusters/dev');
  await waitHydrated(page);
  await expect(page.getByTestId('autoscaling')).toContainText('No node autoscaler that Gantry reads');
  const l4 = page.getByTestId('node-pools').locator('tr[data-pool="l4-spot"]');
  await expect(l4).toContainText('eks.amazonaws.com/nodegroup');
  await expect(l4).toContainText('NVIDIA-L4');
  await expect(page.getByTestId('node-claims')).toHaveCount(0);
});
