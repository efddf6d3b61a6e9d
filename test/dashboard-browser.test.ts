// The dashboard in a real browser (the system's chromium, headless) during a real small sweep
// started with --dashboard: the page, loaded once, shows a round recorded after it loaded, with
// its chart, without a reload. Skips with a message where chromium is not installed.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestData } from './helpers/experiment.ts';
import { startRole, stopAll, tempDir, writeJson } from './helpers/roles.ts';
import { browserMissing, launchBrowser, type TestBrowser } from './helpers/browser.ts';

let dir: string;
let dataDir: string;
let browser: TestBrowser | null = null;

if (browserMissing) console.warn(browserMissing);

beforeAll(() => {
  dir = tempDir('fedslice-dashboard-browser-');
  dataDir = makeTestData(dir);
});
afterEach(async () => {
  await browser?.close();
  browser = null;
  await stopAll();
});

describe.skipIf(browserMissing !== null)('dashboard in a browser', () => {
  it('shows a new round of a running sweep without a reload', async () => {
    // the page must open while the run still has rounds to record: the browser, slow to start
    // under load, is started before the sweep, whose run lasts a few seconds
    browser = await launchBrowser();
    const rounds = 12;
    const file = writeJson(join(dir, 'live.json'), {
      name: 'live',
      base: {
        dataset: { name: 'synthetic', dir: dataDir, fraction: 0.1 },
        model: { width: 0.0625, numClasses: 10 },
        federation: { worldSize: 1, rounds, roundTimeoutS: 120 },
        train: { learningRate: 0.001, epochs: 1, maxStepsPerEpoch: 2 },
        eval: { batchSize: 500 },
        log: { everySteps: 1 },
      },
      grid: { seed: [1] },
    });
    const sweep = startRole('runner', ['runner', 'sweep', '--config', file, '--results', join(dir, 'results'), '--dashboard', '0'], { CI: 'true' });
    const url = (await sweep.waitFor(/dashboard: (http:\/\/\S+)/, 180_000))[1];

    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('requestfailed', (r) => errors.push(`${r.url()}: ${r.failure()?.errorText}`));
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });
    await page.goto(url);
    await page.waitForSelector('#live[data-state="live"]', { timeout: 240_000 });
    await page.evaluate(() => Object.assign(window, { loadedOnce: true }));
    const roundCell = '#runs tbody tr[data-run] td.round';
    /** The round the page shows for the run: -1 before it has one (or before the run is listed). */
    const roundAt = () =>
      page.evaluate((sel) => {
        const text = document.querySelector(sel)?.textContent ?? '-';
        return text.startsWith('-') ? -1 : Number(text.split('/')[0]);
      }, roundCell);
    const first = await roundAt();
    expect(first).toBeLessThan(rounds); // the sweep has rounds left to record while the page is open

    // the page changes on its own as the aggregator records rounds: no reload, no navigation
    await page.waitForFunction(
      ({ sel, before }) => {
        const text = document.querySelector(sel)?.textContent ?? '-';
        return !text.startsWith('-') && Number(text.split('/')[0]) > Math.max(before, 0);
      },
      { sel: roundCell, before: first },
      { timeout: 300_000 },
    );
    const later = await roundAt();
    expect(later).toBeGreaterThan(first);
    expect(await page.locator('#chart-learning-curves svg').count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
    expect(navigations).toBe(1); // the first load only
    expect(errors).toEqual([]);

    // the sweep's dashboard closes with the sweep (the open page then retries its stream);
    // `fedslice dashboard` serves the store after it
    expect((await sweep.exited).code).toBe(0);
    errors.length = 0;
    page.removeAllListeners('requestfailed');
    const standalone = startRole('dashboard', ['dashboard', '--results', join(dir, 'results'), '--port', '0']);
    const after = (await standalone.waitFor(/dashboard: (http:\/\/\S+)/, 120_000))[1];
    await page.goto(after);
    await page.waitForSelector(`${roundCell}:text("${rounds}/${rounds}")`, { timeout: 120_000 });
    // the run's own page: config, rounds, the tail of its logs
    await page.click('#runs tbody tr[data-run] a');
    await page.waitForSelector(`#rounds tbody tr[data-round="${rounds}"]`, { timeout: 120_000 });
    expect(await page.locator('#config').textContent()).toContain('"worldSize": 1');
    expect(await page.locator('#logs pre.log').first().textContent()).toMatch(/completed/);
    expect(errors).toEqual([]);
  }, 600_000);
});
