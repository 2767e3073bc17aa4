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
