/**
 * A real browser for the dashboard tests: Debian's Chromium (`apt-get install chromium`, which
 * .ci/run does), driven by playwright-core. No browser is ever downloaded.
 */
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface DashboardPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions and console errors seen on the page (a test can assert there are none). */
  errors: string[];
  close(): Promise<void>;
}

/** A fresh browser context (its own cookies and storage) with one page. */
export async function openPage(
  browser: Browser,
  options: { width?: number; height?: number; reducedMotion?: boolean } = {},
): Promise<DashboardPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
    // Reduced motion: no highlight animations and a sign that turns pages instead of scrolling.
    reducedMotion: options.reducedMotion ? 'reduce' : 'no-preference',
  });
  const page = await context.newPage();
  // Shorter than a test's own timeout, so that a failing step names itself.
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return { context, page, errors, close: () => context.close() };
}
