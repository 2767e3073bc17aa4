import { expect, test } from '@playwright/test';
import { signIn } from './helpers';

test('the home page sends a stranger to sign in, and hydration makes it interactive', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  // "Show password" works only once the wasm has hydrated the page.
  await expect(page.getByTestId('password')).toHaveAttribute('type', 'password');
  await page.getByTestId('reveal').click();
  await expect(page.getByTestId('password')).toHaveAttribute('type', 'text');
});

test('signing in is a server-function round trip that lands on the overview', async ({ page }) => {
  await signIn(page, 'admin');
  await expect(page.getByTestId('clusters-count')).toHaveText('3');
  await expect(page.getByTestId('gpu-models')).toContainText('NVIDIA-H100-80GB-HBM3');
});

test('a wrong password is refused with a clear message', async ({ page }) => {
  await page.goto('/login');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', 'not-the-password');
  await page.click('form button[type=submit]');
  await expect(page.getByRole('alert')).toContainText('wrong username or password');
});

test("a page's bundle comes compressed against the first wasm (Compression Dictionary Transport), and the page hydrates from it", async ({ page }) => {
  const first: { dictionary?: string } = {};
  const bundle: { encoding?: string; offered?: string } = {};
  const wasm: string[] = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.endsWith('.wasm')) wasm.push(path.split('/').slice(3).join('/'));
  });
  page.on('response', async (response) => {
    const path = new URL(response.url()).pathname;
    if (path.endsWith('/gantry.wasm')) first.dictionary = await response.headerValue('use-as-dictionary') ?? undefined;
    if (/\/pages\/[^/]+\.wasm$/.test(path)) {
      bundle.encoding = (await response.headerValue('content-encoding')) ?? undefined;
      bundle.offered = (await response.request().headerValue('available-dictionary')) ?? undefined;
    }
  });
  // A first visit: nothing cached, the first wasm arrives before the bundle is asked for.
  await page.goto('/login');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect.poll(() => bundle.encoding).toBe('dcb');
  expect(first.dictionary).toMatch(/^match="\/pkg\/[0-9a-f]{16}\/pages\/\*"$/);
  expect(bundle.offered).toMatch(/^:[A-Za-z0-9+/]{43}=:$/);
  // The page's own code came from that bundle (a bundle the browser could
  // not decode would have sent the loader for each chunk alone): it works.
  expect(wasm.sort()).toEqual(['gantry.wasm', expect.stringMatching(/^pages\/__login_route_view_\d+\.wasm$/)]);
  await page.getByTestId('reveal').click();
  await expect(page.getByTestId('password')).toHaveAttribute('type', 'text');
});

test("a page's first load takes its wasm chunks in one file; a page opened in the app fetches only what it lacks", async ({ page }) => {
  const wasm: string[] = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    // `/pkg/<hash>/name.wasm` → `name.wasm`
    if (path.endsWith('.wasm')) wasm.push(path.split('/').slice(3).join('/'));
  });
  await signIn(page, 'admin');
  wasm.length = 0;
  await page.reload();
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByTestId('clusters-count')).toHaveText('3');
  expect(wasm.sort()).toEqual(['gantry.wasm', expect.stringMatching(/^pages\/__overview_route_view_\d+\.wasm$/)]);
  wasm.length = 0;
  // Opened from the navigation, the deployments page's chunks come one by
  // one, none of those the overview already had.
  await page.locator('nav.mainnav').getByRole('link', { name: 'Deployments', exact: true }).click();
  await expect(page).toHaveURL(/\/workloads$/);
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await expect.poll(() => wasm.length).toBeGreaterThan(0);
  expect(wasm.filter((name) => name.startsWith('pages/'))).toEqual([]);
  expect(new Set(wasm).size).toBe(wasm.length);
});
