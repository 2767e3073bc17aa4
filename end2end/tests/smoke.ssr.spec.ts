import { expect, test } from '@playwright/test';
import { signIn } from './helpers';

test('with JavaScript off the server renders the sign-in form', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);
  await expect(page.locator('form[action="/fn/login"] input[name=username]')).toBeVisible();
  await expect(page.locator('form[action="/fn/login"] input[name=password]')).toBeVisible();
  await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', 'true');
});

test('with JavaScript off a plain form post signs in and the overview is server-rendered', async ({ page }) => {
  await signIn(page, 'admin', false);
  await expect(page.getByTestId('gpu-models')).toContainText('NVIDIA-L4');
  await expect(page.locator('table[data-testid=gpu-models] tbody tr')).toHaveCount(4);
});
