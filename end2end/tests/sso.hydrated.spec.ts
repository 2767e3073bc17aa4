// Issue 17: single sign-on through a real OpenID provider (Ory Hydra with the
// testbed's login pages, started by end2end/run.sh): eve is in the group
// vision-deployers, nora in none. Passwords at the provider are `<name>-password`.
import { APIRequestContext, Browser, expect, Page, test } from '@playwright/test';
import { signIn, waitHydrated } from './helpers';
import { screenshotDir } from './screenshots';

const VISION = ['resnet-serve', 'yolo-serve', 'detector-serve', 'clip-serve'];
const NLP_ONLY = ['bert-serve', 'embed-serve', 'llama-serve'];

/** The admin maps vision-deployers to deployer in team vision (idempotent). */
async function mapVisionDeployers(browser: Browser) {
  // Its own context, with JavaScript on whatever the calling test uses.
  const context = await browser.newContext({ javaScriptEnabled: true });
  const page = await context.newPage();
  await signIn(page, 'admin');
  const csrf = await page.evaluate(async () => {
    const me = await (await fetch('/api/v1/me')).json();
    return me.csrf as string;
  });
  const request: APIRequestContext = page.request;
  const teams = await (await request.get('/api/v1/teams')).json();
  const vision = teams.find((t: { name: string }) => t.name === 'vision');
  const put = await request.put(`/api/v1/teams/${vision.id}/group-mappings/vision-deployers`, {
    data: { role: 'deployer' },
    headers: { 'x-csrf-token': csrf },
  });
  expect(put.status(), await put.text()).toBe(200);
  await context.close();
}

/** From Gantry's sign-in page through the provider's form, back to Gantry's overview. */
async function signInThroughProvider(page: Page, user: string, hydrated: boolean) {
  await page.goto('/login');
  if (hydrated) await waitHydrated(page);
  const button = page.getByTestId('sso');
  await expect(button).toHaveText('Sign in with Testbed IdP');
  await button.click();
  await expect(page).toHaveTitle('Testbed identity provider');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', `${user}-password`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Fleet overview' })).toBeVisible();
  if (hydrated) await waitHydrated(page);
}

test('a person signs in through the identity provider and gets their team role from their group', async ({ page, browser }) => {
  await mapVisionDeployers(browser);
  await signInThroughProvider(page, 'eve', true);
  await page.screenshot({ path: `${screenshotDir()}/sso-signed-in-1400.png`, fullPage: true });

  // Only her team's deployments, and the deployer's scale form on one of them.
  await page.goto('/workloads');
  await waitHydrated(page);
  const table = page.getByTestId('deployments');
  for (const name of VISION) await expect(table.locator(`tr[data-deployment="${name}"]`)).toHaveCount(1);
  for (const name of NLP_ONLY) await expect(table.locator(`tr[data-deployment="${name}"]`)).toHaveCount(0);
  await page.goto('/clusters/dev/namespaces/vision-dev/deployments/resnet-serve');
  await waitHydrated(page);
  await expect(page.getByTestId('scale-replicas')).toBeVisible();

  // Signing out ends at the provider and comes back to Gantry's sign-in page.
  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/workloads');
  await expect(page).toHaveURL(/\/login/);
});

test('a person in no mapped group is told they are in no team yet', async ({ page }) => {
  await signInThroughProvider(page, 'nora', true);
  await expect(page.getByTestId('no-team')).toContainText('You are not in a team yet');
  await page.screenshot({ path: `${screenshotDir()}/sso-no-team-1400.png`, fullPage: true });
});

test('a refused answer from the provider ends on the sign-in page with the reason', async ({ page }) => {
  await page.goto('/auth/sso/callback?code=stolen&state=not-this-browsers');
  await expect(page).toHaveURL(/\/login$/);
  await waitHydrated(page);
  await expect(page.getByTestId('sso-problem')).toContainText('Single sign-on failed');
  await page.screenshot({ path: `${screenshotDir()}/sso-refused-1400.png`, fullPage: true });
});

test('a global admin sees the effective single sign-on settings and the group mappings', async ({ page, browser }) => {
  await mapVisionDeployers(browser);
  await signIn(page, 'admin');
  await page.goto('/users');
  await waitHydrated(page);
  const settings = page.getByTestId('sso-settings');
  await expect(settings).toContainText('Testbed IdP');
  await expect(settings).toContainText('set (not shown)');
  await expect(page.getByTestId('group-mappings').locator('tr[data-group="vision-deployers"]')).toContainText('Deployer');
  await page.getByTestId('sso').screenshot({ path: `${screenshotDir()}/sso-settings-1400.png` });
});

test.describe('with JavaScript off', () => {
  test.use({ javaScriptEnabled: false });

  test('"Sign in with …" works as a plain link', async ({ page, browser }) => {
    await mapVisionDeployers(browser);
    await signInThroughProvider(page, 'eve', false);
    await page.goto('/workloads');
    await expect(page.getByTestId('deployments').locator('tr[data-deployment="resnet-serve"]')).toHaveCount(1);
    await expect(page.getByTestId('deployments').locator('tr[data-deployment="bert-serve"]')).toHaveCount(0);
  });
});
