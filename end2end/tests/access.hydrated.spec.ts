// Issue 4: who sees and may change what, as the browser shows it.
import { expect, test } from '@playwright/test';
import { rowPlaces, signIn, waitHydrated } from './helpers';

// The demo fleet's deployments per team (deploy/fleets/demo.yaml).
const VISION = ['resnet-serve', 'yolo-serve', 'detector-serve', 'clip-serve'];
const NLP_ONLY = ['bert-serve', 'embed-serve', 'llama-serve'];
const visionNamespace = /^(dev\/vision-dev|staging\/vision-staging|prod\/vision)$/;

test('a viewer sees only their team\'s deployments and cannot change them', async ({ page }) => {
  await signIn(page, 'bob');

  await page.goto('/workloads');
  await waitHydrated(page);
  const table = page.getByTestId('deployments');
  for (const name of VISION) await expect(table.locator(`tr[data-deployment="${name}"]`)).toHaveCount(1);
  for (const name of NLP_ONLY) await expect(table.locator(`tr[data-deployment="${name}"]`)).toHaveCount(0);
  const places = await rowPlaces(page, 'deployments', 'deployment');
  expect(places.length).toBeGreaterThanOrEqual(VISION.length);
  for (const [name, place] of places) expect(place, `row ${name}`).toMatch(visionNamespace);
  await expect(table).not.toContainText('nlp');

  // His own team's deployment: visible, read-only, no forms that change it.
  await page.goto('/clusters/dev/namespaces/vision-dev/deployments/resnet-serve');
  await waitHydrated(page);
  await expect(page.getByTestId('replicas')).toHaveText(/^\d+\/1$/);
  await expect(page.getByTestId('read-only')).toBeVisible();
  await expect(page.getByTestId('scale-replicas')).toHaveCount(0);
  await expect(page.getByTestId('scale-submit')).toHaveCount(0);
  await expect(page.getByTestId('new-image')).toHaveCount(0);
  await expect(page.locator('[data-testid^=rollback-]')).toHaveCount(0);

  // Another team's deployment is refused, not shown.
  await page.goto('/clusters/dev/namespaces/nlp-dev/deployments/bert-serve');
  await waitHydrated(page);
  await expect(page.getByRole('alert').first()).toBeVisible();
  await expect(page.getByRole('alert').first()).toHaveAttribute('data-kind', /^(forbidden|not_found)$/);
  await expect(page.getByTestId('replicas')).toHaveCount(0);

  // Nowhere to launch into.
  await page.goto('/launch/deployment');
  await waitHydrated(page);
  await expect(page.getByTestId('no-namespaces')).toBeVisible();
  await expect(page.getByTestId('launch-form')).toHaveCount(0);

  // The users page is for global admins: refused, and no user list.
  await expect(page.locator('nav.mainnav a[href="/users"]')).toHaveCount(0);
  await page.goto('/users');
  await waitHydrated(page);
  await expect(page.getByRole('alert').first()).toBeVisible();
  await expect(page.getByRole('alert').first()).toHaveAttribute('data-kind', 'forbidden');
  await expect(page.getByTestId('users')).toHaveCount(0);
});

test('a deployer gets the scale form on their team\'s deployment', async ({ page }) => {
  await signIn(page, 'alice');
  await page.goto('/clusters/dev/namespaces/vision-dev/deployments/resnet-serve');
  await waitHydrated(page);
  await expect(page.getByTestId('scale-replicas')).toBeVisible();
  await expect(page.getByTestId('scale-submit')).toBeVisible();
  await expect(page.getByTestId('new-image')).toBeVisible();
  await expect(page.getByTestId('read-only')).toHaveCount(0);
  // ...but not on the other team's.
  await page.goto('/clusters/dev/namespaces/nlp-dev/deployments/bert-serve');
  await waitHydrated(page);
  await expect(page.getByRole('alert').first()).toBeVisible();
  await expect(page.getByTestId('scale-replicas')).toHaveCount(0);
});

test('signing out ends the session in the browser and on the server', async ({ page }) => {
  await signIn(page, 'alice');
  await page.goto('/workloads');
  await waitHydrated(page);
  await expect(page.getByTestId('deployments').locator('tr[data-deployment="resnet-serve"]')).toHaveCount(1);
  await expect(page.locator('header a.username')).toHaveText('alice');

  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.locator('input[name=username]')).toBeVisible();
  // The header no longer shows who was signed in.
  await expect(page.locator('header a.username')).toHaveCount(0);
  await expect(page.getByTestId('sign-out')).toHaveCount(0);

  // Going back shows none of the signed-in page's data.
  await page.goBack();
  await expect(page.getByTestId('deployments')).toHaveCount(0);
  await expect(page.getByTestId('sign-out')).toHaveCount(0);

  // The session is gone on the server too: a fresh load of any page goes to sign-in.
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  await expect(page.getByRole('heading', { name: 'Fleet overview' })).toHaveCount(0);
  await page.goto('/clusters/dev/namespaces/vision-dev/deployments/resnet-serve');
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByTestId('scale-replicas')).toHaveCount(0);
});

test('a team admin sets the team budget against its cost rate; prices are a global admin\'s', async ({ page }) => {
  await signIn(page, 'carol');
  // The overview prices the GPUs of her team's namespaces at demo-setup's example prices.
  await expect(page.getByTestId('cost-rate')).toHaveText(/^\$[1-9][\d,]*\.\d{2,6}\/h$/);
  await page.goto('/teams');
  await waitHydrated(page);
  await page.getByTestId('teams').getByRole('link', { name: 'nlp' }).click();
  await expect(page.getByRole('heading', { name: 'Team nlp' })).toBeVisible();
  await waitHydrated(page);
  const budget = page.getByTestId('budget');
  // demo-setup's example budget, and the team's GPUs (bert-serve, embed-serve, llama-serve) at the example prices.
  await expect(page.getByTestId('budget-amount')).toHaveText('$15,000.00');
  await expect(page.getByTestId('cost-rate')).toHaveText(/^\$\d[\d,]*\.\d{2,6}\/hour, [1-9]\d* GPUs$/);

  await budget.locator('input[name=usd_per_month]').fill('$1,000');
  await budget.getByRole('button', { name: 'Set budget' }).click();
  await expect(page.getByTestId('budget-amount')).toHaveText('$1,000.00');
  await expect(page.getByTestId('cost-month')).toContainText('% of the budget');

  // Bad input: a clear message, and the budget stays as it was.
  await budget.locator('input[name=usd_per_month]').fill('-5');
  await budget.getByRole('button', { name: 'Set budget' }).click();
  await expect(budget.locator('.error[data-kind=invalid]')).toContainText('cannot be negative');
  await expect(page.getByTestId('budget-amount')).toHaveText('$1,000.00');

  // Prices: she reads them, but there is no form to change them.
  await page.goto('/prices');
  await waitHydrated(page);
  await expect(page.getByTestId('prices').locator('tr[data-price="NVIDIA-L4/on-demand"]')).toContainText('$0.80');
  await expect(page.locator('input[name=usd_per_gpu_hour]')).toHaveCount(0);
});

test('a global admin sets a GPU price; a viewer reads the budget without a form', async ({ page }) => {
  await signIn(page, 'admin');
  await page.goto('/prices');
  await waitHydrated(page);
  const form = page.getByTestId('set-price');
  await form.locator('input[name=model]').fill('NVIDIA-L4');
  await form.locator('select[name=capacity_type]').selectOption('spot');
  await form.locator('input[name=usd_per_gpu_hour]').fill('0.4125');
  await form.getByRole('button', { name: 'Save price' }).click();
  await expect(page.getByTestId('prices').locator('tr[data-price="NVIDIA-L4/spot"]')).toContainText('$0.4125');
  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/login$/);

  await signIn(page, 'bob');
  await page.goto('/teams');
  await waitHydrated(page);
  await page.getByTestId('teams').getByRole('link', { name: 'vision' }).click();
  await expect(page.getByRole('heading', { name: 'Team vision' })).toBeVisible();
  await waitHydrated(page);
  await expect(page.getByTestId('budget-amount')).toHaveText('$20,000.00');
  await expect(page.getByTestId('budget').locator('input[name=usd_per_month]')).toHaveCount(0);
});
