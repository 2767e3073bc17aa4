// Issue 6 without JavaScript: the launch and scale forms are plain HTML forms
// that post to the server functions, which redirect back.
import { expect, test } from '@playwright/test';
import { jsonpath, kubectl, signIn, uniqueName } from './helpers';

const [context, namespace] = ['dev', 'vision-dev'];

test('with JavaScript off a deployer launches and scales a deployment through plain form posts', async ({ page }) => {
  const name = uniqueName('e2e-ssr');
  const deployment = `deployment/${name}`;
  await signIn(page, 'alice', false);

  await page.goto('/launch/deployment');
  const form = page.getByTestId('launch-form');
  await expect(form, 'the launch form is server-rendered').toBeVisible({ timeout: 5_000 });
  await expect(form).toHaveAttribute('action', '/fn/launch_deployment');
  await form.locator('select[name="input[cluster]"]').selectOption(context);
  await form.locator('select[name="input[namespace]"]').selectOption(namespace);
  await form.locator('input[name="input[name]"]').fill(name);
  await form.locator('input[name="input[image]"]').fill('ghcr.io/acme/e2e:1');
  await form.locator('input[name="input[gpus]"]').fill('0');
  await form.locator('input[name="input[replicas]"]').fill('1');
  await form.getByRole('button', { name: 'Launch' }).click();

  await expect(page).toHaveURL(new RegExp(`/clusters/${context}/namespaces/${namespace}/deployments/${name}$`));
  expect(jsonpath(context, namespace, deployment, '{.metadata.labels.app\\.kubernetes\\.io/managed-by}')).toBe('gantry');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);
  await expect(page.getByTestId('image'), 'the deployment page is server-rendered').toHaveText('ghcr.io/acme/e2e:1', {
    timeout: 5_000,
  });

  await page.getByTestId('scale-replicas').fill('2');
  await page.getByTestId('scale-submit').click();
  await expect.poll(() => jsonpath(context, namespace, deployment, '{.spec.replicas}')).toBe('2');
  // The post comes back to the deployment page, rendered afresh.
  // (Leptos sends a plain post back to the page it came from, with an empty query.)
  await expect(page).toHaveURL(new RegExp(`/deployments/${name}\\??$`));
  await expect(page.getByTestId('replicas')).toHaveText(/^\d+\/2$/, { timeout: 5_000 });
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');

  kubectl(context, '-n', namespace, 'delete', deployment, '--ignore-not-found', '--wait=false');
});
