import { expect, Page, TestInfo } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where screenshots are kept for people to look at (not compared pixel by pixel). */
export function screenshotDir(): string {
  const dir = process.env.GANTRY_SCREENSHOTS ?? path.resolve(__dirname, '..', 'screenshots');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Full-page screenshots of each page at 1400 and 390 px wide, saved as
 * `<name>-<width>[-nojs].png` and attached to the test's report. With
 * JavaScript on, waits for every chart on the page to be drawn.
 */
export async function screenshots(page: Page, testInfo: TestInfo, pages: Array<[string, string]>, hydrated: boolean) {
  const dir = screenshotDir();
  // A panic in the browser (a hydration mismatch, say) leaves the page half
  // alive: say so, rather than time out waiting for a chart.
  const panics: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && m.text().includes('panicked')) panics.push(m.text().split('\n').slice(0, 2).join(' '));
  });
  for (const width of [1400, 390]) {
    await page.setViewportSize({ width, height: 900 });
    for (const [name, url] of pages) {
      await page.goto(url);
      if (hydrated) {
        await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
        expect(panics, `${name} at ${width} px panicked in the browser`).toEqual([]);
        const charts = page.locator('figure.chart');
        const count = await charts.count();
        for (let i = 0; i < count; i++) {
          const chart = charts.nth(i);
          if ((await chart.getByTestId('chart-empty').count()) === 0) {
            await expect(async () => {
              expect(panics, `${name} at ${width} px panicked in the browser`).toEqual([]);
              await expect(chart).toHaveClass(/\blive\b/, { timeout: 1_000 });
            }).toPass({ timeout: 30_000 });
          }
        }
      }
      // Nothing overflows the page sideways: wide tables scroll in their own box.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} at ${width} px is ${overflow} px wider than the screen`).toBeLessThanOrEqual(1);
      const file = path.join(dir, `${name}-${width}${hydrated ? '' : '-nojs'}.png`);
      await page.screenshot({ path: file, fullPage: true });
      await testInfo.attach(`${name}-${width}`, { path: file, contentType: 'image/png' });
    }
  }
}
