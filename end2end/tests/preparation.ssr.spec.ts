// Issue 13, JavaScript off: the banner is in the server-rendered page, and a
// failed step says which, why and what to do (see preparation.ts).
import { expect, test } from '@playwright/test';
import { signInLate, STEPS, writeProgress } from './preparation';

test('the preparation banner, and a failed step, without JavaScript', async ({ page }) => {
  writeProgress(STEPS);
  await signInLate(page, false);
  await expect(page.getByTestId('preparing')).toContainText('step 3 of 5, start the demo fleet');
  await page.goto(`${process.env.GANTRY_LATE_URL}/clusters`);
  await expect(page.getByTestId('preparing')).toContainText('start the demo fleet');

  writeProgress(
    STEPS.map((s) => (s.name === 'fleet' ? { ...s, state: 'failed' } : s)),
    {
      failed: {
        step: 'fleet',
        title: 'start the demo fleet',
        why: 'error: etcd did not start: port 2379 is in use',
        hint: 'Stop what holds the port, then run scripts/run.sh again; it resumes from this step.',
        log: '/root/.cache/gantry/logs/run/fleet.log',
      },
      remaining_seconds: 0,
    },
  );
  await page.goto(`${process.env.GANTRY_LATE_URL}/`);
  const banner = page.getByTestId('preparing');
  await expect(banner).toContainText('start the demo fleet failed');
  await expect(banner.getByTestId('preparing-failure')).toContainText('port 2379 is in use');
  await expect(banner.getByTestId('preparing-failure')).toContainText('it resumes from this step');
  await expect(banner.getByTestId('preparing-failure')).toContainText('logs/run/fleet.log');

  // Back to running, for whichever test comes next.
  writeProgress(STEPS);
});
