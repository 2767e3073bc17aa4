// Issue 5: the fleet as the dashboard shows it, and live updates.
import { expect, test } from '@playwright/test';
import { jsonpath, kubectl, signIn, waitHydrated, waitLive } from './helpers';

/** GPUs requested by the running or pending-bound pods on each node, per kubectl. */
function gpusByNode(context: string): Map<string, number> {
  const pods = JSON.parse(kubectl(context, 'get', 'pods', '-A', '-o', 'json')).items as any[];
  const byNode = new Map<string, number>();
  for (const pod of pods) {
    const node = pod.spec?.nodeName;
    if (!node || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const gpus = (pod.spec.containers as any[])
      .map((c) => Number(c.resources?.requests?.['nvidia.com/gpu'] ?? c.resources?.limits?.['nvidia.com/gpu'] ?? 0))
      .reduce((a, b) => a + b, 0);
    byNode.set(node, (byNode.get(node) ?? 0) + gpus);
  }
  return byNode;
}

test('a cluster page shows each GPU node\'s model and allocation as the cluster has it', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/clusters/prod');
  await waitHydrated(page);
  const nodes = page.getByTestId('nodes');
  // prod has three H100 nodes (h100-spot ×2, h100 ×1), 8 GPUs each.
  const h100 = ['prod-h100-spot-0', 'prod-h100-spot-1', 'prod-h100-0'];
  for (const name of h100) {
    const row = nodes.locator(`tr[data-node="${name}"]`);
    await expect(row.getByTestId('gpu-model')).toHaveText('NVIDIA-H100-80GB-HBM3');
    await expect(row.locator('.gpubar .text')).toHaveText(/^\d+\/8$/);
  }
  await expect(nodes.locator('tr[data-node="prod-cpu-0"]').getByTestId('gpu-model')).toHaveText('—');
  await expect(nodes.locator('tr[data-node="prod-l4-0"]').getByTestId('gpu-model')).toHaveText('NVIDIA-L4');

  // The bars agree with what kubectl says is bound to each node
  // (llama-serve's 2 replicas and pretrain-llm's 8 GPUs; train-giant never fits).
  await expect
    .poll(
      async () => {
        const expected = gpusByNode('prod');
        const shown = await Promise.all(
          h100.map((n) => nodes.locator(`tr[data-node="${n}"] .gpubar .text`).innerText()),
        );
        return h100.map((n, i) => `${n} ${shown[i]} (kubectl ${expected.get(n) ?? 0}/8)`);
      },
      { timeout: 20_000 },
    )
    .toEqual(h100.map((n) => expect.stringMatching(new RegExp(`^${n} (\\d+)/8 \\(kubectl \\1/8\\)$`))));
  const total = (await Promise.all(h100.map((n) => nodes.locator(`tr[data-node="${n}"] .gpubar .text`).innerText())))
    .map((t) => Number(t.split('/')[0]))
    .reduce((a, b) => a + b, 0);
  expect(total).toBe(10);

  // The overview sums the same allocation per model.
  await page.goto('/');
  await waitHydrated(page);
  const h100Row = page.getByTestId('gpu-models').locator('tr', { hasText: 'NVIDIA-H100-80GB-HBM3' });
  await expect(h100Row.locator('.gpubar .text')).toHaveText(/^\d+\/\d+$/);
  await expect(page.getByTestId('gpu-allocated')).toHaveText(/^\d+\/\d+$/);
});

test('a deployment scaled with kubectl updates the open deployments page live, without a reload', async ({ page }) => {
  // detector-serve (prod/vision, 2 replicas of 1 L4): prod has 16 L4s, so 3 fit.
  const [context, namespace, name] = ['prod', 'vision', 'detector-serve'];
  const before = Number(jsonpath(context, namespace, `deployment/${name}`, '{.spec.replicas}'));
  const target = before + 1;
  await signIn(page, 'admin');
  await page.goto('/workloads');
  await waitHydrated(page);
  await waitLive(page);
  const ready = page.getByTestId('deployments').locator(`tr[data-deployment="${name}"]`).getByTestId('ready');
  await expect(ready).toHaveText(`${before}/${before}`, { timeout: 30_000 });

  // Anything that reloads or navigates the page drops this marker.
  await page.evaluate(() => ((window as any).__e2eNoReload = 'still-here'));
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });

  try {
    kubectl(context, '-n', namespace, 'scale', `deployment/${name}`, `--replicas=${target}`);
    // desired changes first, then KWOK makes the new pod ready.
    await expect(ready).toHaveText(new RegExp(`^\\d+/${target}$`), { timeout: 15_000 });
    await expect(ready).toHaveText(`${target}/${target}`, { timeout: 30_000 });

    kubectl(context, '-n', namespace, 'scale', `deployment/${name}`, `--replicas=${before}`);
    await expect(ready).toHaveText(`${before}/${before}`, { timeout: 30_000 });
  } finally {
    kubectl(context, '-n', namespace, 'scale', `deployment/${name}`, `--replicas=${before}`);
  }
  expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe('still-here');
  expect(navigations).toBe(0);
  await expect(page.locator('.live-dot.on')).toHaveCount(1);
});

test('the pending page shows the job that cannot fit with the scheduler\'s reason', async ({ page }) => {
  // train-giant asks for 16 GPUs on one node; no node has more than 8.
  const pod = kubectl('prod', '-n', 'nlp', 'get', 'pods', '-l', 'job-name=train-giant', '-o', 'jsonpath={.items[0].metadata.name}').trim();
  expect(pod).toMatch(/^train-giant-/);
  expect(jsonpath('prod', 'nlp', `pod/${pod}`, '{.status.phase}')).toBe('Pending');

  await signIn(page, 'admin');
  await page.goto('/pending');
  await waitHydrated(page);
  const row = page.getByTestId('pending').locator(`tr[data-pod="${pod}"]`);
  await expect(row).toContainText('prod/nlp');
  await expect(row.getByTestId('reason')).toContainText('Insufficient nvidia.com/gpu', { timeout: 30_000 });
  await expect(row.locator('td').nth(1)).toHaveText('16');

  // The GPU filter keeps it; a name filter for something else drops it.
  await page.goto('/pending?status=gpu');
  await expect(page.getByTestId('pending').locator(`tr[data-pod="${pod}"]`)).toHaveCount(1);
  await page.goto('/pending?q=no-such-pod');
  await expect(page.getByTestId('pending').locator(`tr[data-pod="${pod}"]`)).toHaveCount(0);
});
