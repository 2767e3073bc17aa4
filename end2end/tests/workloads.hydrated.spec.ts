// Issue 6: launching and changing a model deployment through the UI, and a
// job's streamed log. Every change is confirmed against the cluster.
import { expect, Page, test } from '@playwright/test';
import { jsonpath, kubectl, signIn, uniqueName, waitHydrated, waitLive } from './helpers';

const [context, namespace] = ['dev', 'vision-dev'];

/**
 * Waits until the deployment page shows a settled rollout, so no live
 * re-render replaces a form while the test fills it in.
 */
async function settled(page: Page, replicas: number) {
  await expect(page.getByTestId('replicas')).toHaveText(`${replicas}/${replicas}`, { timeout: 30_000 });
  await expect(page.getByTestId('rollout')).toContainText('complete', { timeout: 30_000 });
}

/** One of the deployment page's action panels, by its heading. */
function panel(page: Page, heading: string) {
  return page.locator('section.panel', { has: page.getByRole('heading', { level: 2, name: heading, exact: true }) });
}

test('a deployer launches, scales, updates and rolls back a deployment', async ({ page }) => {
  test.setTimeout(180_000);
  const name = uniqueName('e2e');
  const deployment = `deployment/${name}`;
  await signIn(page, 'alice');

  // Launch.
  await page.goto('/launch/deployment');
  await waitHydrated(page);
  const form = page.getByTestId('launch-form');
  await form.locator('select[name="input[cluster]"]').selectOption(context);
  await form.locator('select[name="input[namespace]"]').selectOption(namespace);
  await form.locator('input[name="input[name]"]').fill(name);
  await form.locator('input[name="input[image]"]').fill('ghcr.io/acme/e2e:1');
  await form.locator('input[name="input[model]"]').fill('e2e-model');
  await form.locator('input[name="input[model_version]"]').fill('v1');
  await form.locator('input[name="input[gpus]"]').fill('0');
  await form.locator('input[name="input[replicas]"]').fill('1');
  await expect(form.getByTestId('fit')).toBeVisible();
  await form.getByRole('button', { name: 'Launch' }).click();

  await expect(page).toHaveURL(new RegExp(`/clusters/${context}/namespaces/${namespace}/deployments/${name}$`), {
    timeout: 30_000,
  });
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
  expect(jsonpath(context, namespace, deployment, '{.metadata.labels.app\\.kubernetes\\.io/managed-by}')).toBe('gantry');
  expect(jsonpath(context, namespace, deployment, '{.spec.template.spec.containers[0].image}')).toBe(
    'ghcr.io/acme/e2e:1',
  );
  await waitHydrated(page);
  await waitLive(page);
  await expect(page.getByTestId('image')).toHaveText('ghcr.io/acme/e2e:1');
  await expect(page.getByTestId('revision')).toHaveText('1', { timeout: 30_000 });
  await settled(page, 1);

  // Scale to 2.
  await page.getByTestId('scale-replicas').fill('2');
  await page.getByTestId('scale-submit').click();
  await expect(panel(page, 'Scale').getByRole('status')).toHaveText('Scaled from 1 to 2 replicas');
  await expect.poll(() => jsonpath(context, namespace, deployment, '{.spec.replicas}')).toBe('2');
  await settled(page, 2);

  // Update the image: a new revision.
  await page.getByTestId('new-image').fill('ghcr.io/acme/e2e:2');
  await page.getByRole('button', { name: 'Start rolling update' }).click();
  await expect(panel(page, 'Update').getByRole('status')).toHaveText('Rolling update started');
  await expect(page.getByTestId('revision')).toHaveText('2', { timeout: 30_000 });
  await expect(page.getByTestId('image')).toHaveText('ghcr.io/acme/e2e:2');
  expect(jsonpath(context, namespace, deployment, '{.spec.template.spec.containers[0].image}')).toBe(
    'ghcr.io/acme/e2e:2',
  );
  await settled(page, 2);

  // Roll back to revision 1 from the history table: the controller makes it revision 3.
  const history = page.getByTestId('history');
  await expect(history.locator('tr[data-revision="1"]')).toContainText('ghcr.io/acme/e2e:1');
  await expect(history.locator('tr[data-revision="2"]')).toContainText('(current)');
  await page.getByTestId('rollback-1').click();
  await expect(page.getByRole('status').filter({ hasText: 'Rolled back' })).toHaveText(
    'Rolled back from revision 2 to the template of revision 1',
  );
  await expect(page.getByRole('alert')).toHaveCount(0);
  await expect(page.getByTestId('revision')).toHaveText('3', { timeout: 30_000 });
  await expect(page.getByTestId('image')).toHaveText('ghcr.io/acme/e2e:1');
  await expect(history.locator('tr[data-revision="3"]')).toContainText('(current)');
  await expect
    .poll(() => jsonpath(context, namespace, deployment, '{.spec.template.spec.containers[0].image}'))
    .toBe('ghcr.io/acme/e2e:1');
  await expect
    .poll(() => {
      const out = kubectl(context, '-n', namespace, 'rollout', 'history', deployment);
      return out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((r) => /^\d+$/.test(r));
    })
    .toContain('3');
  expect(jsonpath(context, namespace, deployment, '{.spec.replicas}')).toBe('2');

  // Leave the fleet as it was (best effort; names are unique anyway).
  kubectl(context, '-n', namespace, 'delete', deployment, '--ignore-not-found', '--wait=false');
});

test('a job page streams the training log', async ({ page }) => {
  // train-yolo (staging/vision-staging) runs for two hours; KWOK serves a log that grows every 2 s.
  await signIn(page, 'alice');
  await page.goto('/clusters/staging/namespaces/vision-staging/jobs/train-yolo');
  await waitHydrated(page);
  const logs = page.getByTestId('logs');
  await expect(logs).toContainText('starting training', { timeout: 30_000 });
  await expect(page.getByText('Following the log')).toBeVisible();
  const lastStep = async () => {
    const steps = [...(await logs.innerText()).matchAll(/step (\d+) loss/g)].map((m) => Number(m[1]));
    return steps.length ? Math.max(...steps) : 0;
  };
  const first = await lastStep();
  expect(first).toBeGreaterThan(0);
  // New lines arrive without a reload.
  await expect.poll(lastStep, { timeout: 20_000 }).toBeGreaterThan(first);

  // The same lines kubectl reads from the pod.
  const fromKubectl = kubectl('staging', '-n', 'vision-staging', 'logs', 'job/train-yolo', '--tail=100');
  const line = fromKubectl.split('\n').find((l) => /step \d+ loss/.test(l));
  expect(line).toBeTruthy();
  await expect(logs).toContainText(line!.trim());
});
