/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the test
 * Harper: sign-in with a cookie session, the live sensor grid fed by MQTT devices, the LED signs
 * (the fleet listed and selectable; a change driven from the page, pending until the simulated
 * sign reports it, also while the sign is offline; per-field device reports), the server's
 * refusals shown next to the controls, the protocol panel with gap-free resume, and the README's
 * screenshot.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { COMPONENT_DIR, type AdminCredentials } from '../launcher/harper-process.js';
import { launchBrowser, openPage, type DashboardPage } from './harness/browser.js';
import { valueField, type Subscriber } from './harness/inbox.js';
import { connectMqtt, mqttSubscriber } from './harness/mqtt.js';
import { simulator, type Simulator } from './harness/devices.js';
import { rest } from './harness/rest.js';
import { createUser } from './harness/users.js';

const harper = inject('harper');
const run = Date.now().toString(36);
const SIGN = '2FE598';
/**
 * The README's picture is refreshed only on request (UPDATE_SCREENSHOT=1 npm test), so a test run
 * leaves the work tree clean; otherwise the same picture is rendered to .tmp/ and checked.
 */
const SCREENSHOT =
  process.env.UPDATE_SCREENSHOT === '1'
    ? join(COMPONENT_DIR, 'docs', 'dashboard.png')
    : join(COMPONENT_DIR, '.tmp', 'dashboard.png');

let browser: Browser;
let device: MqttClient;
let operator: AdminCredentials;
let tab: DashboardPage;
let page: Page;
/** The sign device of SIGN (a device user named like it), simulated over MQTT. */
let signDevice: AdminCredentials;
let signSimulator: Simulator | undefined;

/** Starts the simulated sign of `device` (its sign is named like it). */
function startSign(device = signDevice, args: string[] = []): Simulator {
  return simulator(harper, 'sign-device.js', ['--quiet', ...args], device);
}

/** What the device of a sign has not reported yet, straight from the server. */
async function pendingOf(id: string): Promise<string[]> {
  return (await rest<{ pending?: string[] }>(harper, 'GET', `/signs/${id}`)).body.pending ?? [];
}

/**
 * The word the page should show for a change the offline sign has not shown: "queued" once the
 * server says the device is offline (presence), "pending" on a server without presence (the path
 * then belongs to the catch-all topic space and answers 404).
 */
async function offlineWord(device: string): Promise<'queued' | 'pending'> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const presence = await rest<{ state?: string }>(harper, 'GET', `/presence/${device}`);
    if (presence.status === 404) return 'pending';
    if (presence.body.state === 'offline') return 'queued';
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`presence of ${device} never became offline`);
}

/** Signs in through the form (if the page is not signed in already) and waits for the dashboard. */
async function signIn(target: Page, user: AdminCredentials): Promise<void> {
  await target.waitForSelector('#login-view:not([hidden]), #main:not([hidden])');
  if (await target.isVisible('#login-view')) {
    await target.waitForSelector('#login-username:enabled');
    await target.fill('#login-username', user.username);
    await target.fill('#login-password', user.password);
    await target.click('#login-submit');
    await target.waitForSelector('#main:not([hidden]), #login-error:not([hidden])');
    if (await target.isVisible('#login-error'))
      throw new Error(`sign-in refused: ${await target.textContent('#login-error')}`);
  }
  await target.waitForSelector('#main:not([hidden])');
  await target.waitForSelector(`#user-name:text-is("${user.username}")`);
}

/** Waits until a stream in the header's connection list is live. */
async function streamLive(target: Page, name: 'sensors' | 'alerts' | 'signs'): Promise<void> {
  await target.waitForSelector(`#stream-status li[data-stream="${name}"][data-state="live"]`, { timeout: 10_000 });
}

function publish(topic: string, payload: unknown): Promise<unknown> {
  return device.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), {
    qos: 1,
    retain: true,
  });
}

beforeAll(async () => {
  browser = await launchBrowser();
  device = await connectMqtt(harper);
  operator = await createUser(harper, 'operator', `${run}-dash-op`);
  // Known state before the page opens: a sensor (so the table stream opens with its snapshot at
  // once, proving it live) and the demo sign.
  expect(
    (await rest(harper, 'PUT', `/sensors/${run}-canary`, { json: { location: 'dashboard test', temperature: 20 } }))
      .status,
  ).toBe(204);
  expect(
    (
      await rest(harper, 'PUT', `/signs/${SIGN}`, {
        json: { message: 'Ready', brightness: 9, power: 'on', color: '#ffb020' },
      })
    ).status,
  ).toBe(204);
  // The sign's device shows what the page asks for and reports it.
  signDevice = await createUser(harper, 'device', SIGN);
  const watch = await mqttSubscriber(harper, `signs/${SIGN}`);
  signSimulator = startSign();
  await watch.inbox.waitFor(
    (item) =>
      (valueField(item, 'pending') as string[] | undefined)?.length === 0 && valueField(item, 'reportedBy') === SIGN,
    10_000,
    'the sign device in step',
  );
  await watch.close();
  tab = await openPage(browser);
  page = tab.page;
  await page.goto(harper.httpUrl + '/');
});

afterAll(async () => {
  await signSimulator?.stop();
  await tab?.close();
  await browser?.close();
  await device?.endAsync();
});

describe('dashboard in a browser', () => {
  it('signs in through the form with a cookie session, and keeps no password anywhere', async () => {
    // The page itself is public; its data is not: the sign-in form comes first.
    await page.waitForSelector('#login-view:not([hidden])');
    expect(await page.isHidden('#main')).toBe(true);
    await signIn(page, operator);
    expect(await page.textContent('#user-role')).toBe('operator');
    await streamLive(page, 'sensors');
    await streamLive(page, 'signs');

    // The session is Harper's HttpOnly cookie; the password is nowhere the page keeps things.
    const cookies = await tab.context.cookies();
    expect(cookies.some((cookie) => cookie.name.endsWith('hdb-session') && cookie.httpOnly)).toBe(true);
    const kept = await page.evaluate(() => ({
      url: location.href,
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
      html: document.documentElement.outerHTML,
      inputs: [...document.querySelectorAll('input')].map((input) => input.value),
    }));
    for (const place of [kept.url, kept.local, kept.session, kept.cookie, kept.html, ...kept.inputs]) {
      expect(place).not.toContain(operator.password);
    }
    expect(kept.url).toBe(harper.httpUrl + '/');
    expect(tab.errors.filter((error) => error.startsWith('pageerror'))).toEqual([]);

    // A reload keeps the session (GET /login), without asking again.
    await page.reload();
    await page.waitForSelector('#main:not([hidden])');
    expect(await page.textContent('#user-name')).toBe(operator.username);
  });

  it('shows a reading published by an MQTT device in the grid within 2 s', async () => {
    await signIn(page, operator);
    await streamLive(page, 'sensors');
    const id = `${run}-mqtt-1`;
    // Other test files write sensors at the same time: filter the grid to this one.
    await page.fill('#sensor-filter', id);
    const started = Date.now();
    await publish(`sensors/${id}`, { location: 'greenhouse', temperature: 23.4, humidity: 41 });
    const card = `li.sensor-card[data-sensor-id="${id}"]`;
    await page.waitForSelector(`${card} .sensor-temperature[data-value="23.4"]`, { timeout: 2000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await page.textContent(`${card} .sensor-location`)).toBe('greenhouse');
    expect(await page.textContent(`${card} .sensor-extra`)).toContain('41.0 %');

    // The next reading updates the same card.
    await publish(`sensors/${id}`, { location: 'greenhouse', temperature: 24.1, humidity: 40 });
    await page.waitForSelector(`${card} .sensor-temperature[data-value="24.1"]`, { timeout: 2000 });
    expect(await page.locator('li.sensor-card').count()).toBe(1);
    await page.fill('#sensor-filter', '');
  });

  it('a message changed in the page reaches MQTT subscribers of the sign and is stored', async () => {
    await signIn(page, operator);
    await streamLive(page, 'signs');
    const subscriber: Subscriber = await mqttSubscriber(harper, `signs/${SIGN}`);
    try {
      const message = `From the dashboard ${run}`;
      await page.fill('#sign-message', message);
      await page.press('#sign-message', 'Enter');
      const received = await subscriber.inbox.waitFor(
        (item) => valueField(item, 'message') === message,
        5000,
        'the new message over MQTT',
      );
      expect(received.value).toMatchObject({ id: SIGN, message, updatedBy: operator.username });
      const stored = await rest<Record<string, unknown>>(harper, 'GET', `/signs/${SIGN}`);
      expect(stored.body).toMatchObject({ message, updatedBy: operator.username });
      // And the page's own sign follows the stored state.
      await page.waitForFunction(
        (text) => document.querySelector<HTMLCanvasElement>('#sign-canvas')?.dataset.message === text,
        message,
      );
      expect(await page.isHidden('#sign-message-error')).toBe(true);

      // The other controls write their own field.
      await page.fill('#sign-brightness', '4');
      await subscriber.inbox.waitFor((item) => valueField(item, 'brightness') === 4, 5000, 'brightness 4 over MQTT');
      await page.click('#sign-power');
      await subscriber.inbox.waitFor((item) => valueField(item, 'power') === 'off', 5000, 'power off over MQTT');
      await page.waitForSelector('#sign-canvas[data-power="off"]');
      await page.click('#sign-power');
      await page.waitForSelector('#sign-canvas[data-power="on"][data-brightness="4"]');
    } finally {
      await subscriber.close();
    }
  });

  it('shows what the sign device reports on a per-field topic (led-sign/<id>/message) as what the sign shows, apart from what it was asked', async () => {
    await signIn(page, operator);
    await streamLive(page, 'signs');
    const asked = `asked ${run}`;
    expect((await rest(harper, 'PATCH', `/signs/${SIGN}`, { json: { message: asked } })).status).toBe(204);
    await page.waitForSelector(`#sign-canvas[data-message="${asked}"]`);
    await page.waitForSelector('#sign-sync[data-state="shown"]');
    // The simulated sign would correct a report that is not what it shows: it steps aside.
    await signSimulator?.stop();
    const perField = await connectMqtt(harper, { credentials: signDevice });
    try {
      await perField.publishAsync(`led-sign/${SIGN}/message`, 'Hello from the sign', { qos: 1, retain: true });
    } finally {
      await perField.endAsync();
    }
    await page.waitForSelector('#sign-canvas[data-message="Hello from the sign"]', { timeout: 5000 });
    expect(await page.getAttribute('#sign-canvas', 'aria-label')).toContain('Hello from the sign');
    expect(await page.textContent('#sign-caption')).toContain('Hello from the sign');
    // The controls keep what the sign was asked to show, and the page says it is not shown.
    expect(await page.inputValue('#sign-message')).toBe(asked);
    await page.waitForSelector('#sign-sync:is([data-state="pending"], [data-state="queued"])');
    // Back, the sign shows what it was asked to again.
    signSimulator = startSign();
    await page.waitForSelector(`#sign-canvas[data-message="${asked}"]`, { timeout: 10_000 });
    await page.waitForSelector('#sign-sync[data-state="shown"]');
  });

  it("shows the server's refusal next to the control, and the sign keeps its state", async () => {
    await signIn(page, operator);
    await streamLive(page, 'signs');
    const before = (await rest<{ message: string; brightness: number }>(harper, 'GET', `/signs/${SIGN}`)).body;
    // What the server says about each bad input (the page must show exactly that).
    const tooLong = 'x'.repeat(65);
    const longRefusal = await rest<{ message: string; field: string }>(harper, 'PATCH', `/signs/${SIGN}`, {
      json: { message: tooLong },
    });
    const brightRefusal = await rest<{ message: string; field: string }>(harper, 'PATCH', `/signs/${SIGN}`, {
      json: { brightness: 16 },
    });
    expect([longRefusal.status, longRefusal.body.field, brightRefusal.status, brightRefusal.body.field]).toEqual([
      400,
      'message',
      400,
      'brightness',
    ]);

    await page.fill('#sign-message', tooLong);
    expect(await page.textContent('#sign-message-count')).toBe('65/64');
    await page.press('#sign-message', 'Enter');
    await page.waitForSelector('#sign-message-error:not([hidden])');
    expect(await page.textContent('#sign-message-error')).toBe(longRefusal.body.message);
    expect(await page.getAttribute('#sign-message', 'aria-invalid')).toBe('true');

    // A slider cannot go past 15: force it through the DOM, as a tampered page would.
    await page.evaluate(() => {
      const slider = document.querySelector<HTMLInputElement>('#sign-brightness');
      if (!slider) throw new Error('no brightness slider');
      slider.max = '16';
      slider.value = '16';
      slider.dispatchEvent(new Event('change', { bubbles: true }));
    });
    await page.waitForSelector('#sign-brightness-error:not([hidden])');
    expect(await page.textContent('#sign-brightness-error')).toBe(brightRefusal.body.message);
    // The slider goes back to what the sign shows.
    expect(await page.inputValue('#sign-brightness')).toBe(String(before.brightness));

    expect((await rest(harper, 'GET', `/signs/${SIGN}`)).body).toMatchObject({
      message: before.message,
      brightness: before.brightness,
    });
    expect(await page.getAttribute('#sign-canvas', 'data-message')).toBe(before.message);

    // A good message clears the error.
    await page.fill('#sign-message', `fixed ${run}`);
    await page.press('#sign-message', 'Enter');
    await page.waitForSelector('#sign-message-error', { state: 'hidden' });
    await page.waitForSelector(`#sign-canvas[data-message="fixed ${run}"]`);
  });

  it('lists every sign with its presence and what it shows; a click selects one, and ?sign=<id> opens one', async () => {
    await signIn(page, operator);
    await streamLive(page, 'signs');
    const other = `${run}-lobby`;
    expect(
      (
        await rest(harper, 'PUT', `/signs/${other}`, {
          json: { message: 'Lobby sign', brightness: 5, power: 'on', color: '#00ff00' },
        })
      ).status,
    ).toBe(204);
    const item = (id: string) => `#sign-list button[data-sign-id="${id}"]`;
    await page.waitForSelector(`${item(other)} .sign-item-preview:text-is("Lobby sign")`);
    await page.waitForSelector(`${item(SIGN)}[aria-pressed="true"]`);
    expect(await page.getAttribute(item(other), 'data-presence')).toMatch(/^(online|offline|unknown)$/);
    // A sign that never reported: nothing confirmed, what it was asked is pending.
    expect(await page.getAttribute(item(other), 'data-sync')).toMatch(/^(pending|queued)$/);

    await page.click(item(other));
    await page.waitForSelector(`${item(other)}[aria-pressed="true"]`);
    expect(await page.getAttribute(item(SIGN), 'aria-pressed')).toBe('false');
    expect(await page.textContent('#sign-id')).toBe(other);
    expect(new URL(page.url()).searchParams.get('sign')).toBe(other);
    expect(await page.inputValue('#sign-message')).toBe('Lobby sign');
    await page.waitForSelector('#sign-sync:is([data-state="pending"], [data-state="queued"])');

    // The URL opens it directly, after a reload too.
    await page.reload();
    await signIn(page, operator);
    await page.waitForSelector(`${item(other)}[aria-pressed="true"]`);
    expect(await page.textContent('#sign-id')).toBe(other);
    await page.goto(harper.httpUrl + '/');
    await signIn(page, operator);
    await page.waitForSelector(`${item(SIGN)}[aria-pressed="true"]`);
  });

  /** Records every state the sync line takes from now on, in order. */
  async function recordSync(target: Page): Promise<() => Promise<string[]>> {
    await target.evaluate(() => {
      const line = document.querySelector<HTMLElement>('#sign-sync');
      if (!line) throw new Error('no #sign-sync');
      const seen: string[] = [];
      (window as unknown as { syncSeen: string[] }).syncSeen = seen;
      new MutationObserver(() => {
        const state = line.dataset.state ?? '';
        if (seen[seen.length - 1] !== state) seen.push(state);
      }).observe(line, { attributes: true, attributeFilter: ['data-state'] });
    });
    return () => target.evaluate(() => (window as unknown as { syncSeen: string[] }).syncSeen);
  }

  it('a change made in the page is pending until the simulated sign reports it, then shown with how long it took', async () => {
    const id = `${run}-slow`;
    const device = await createUser(harper, 'device', id);
    // A sign whose display takes a second to change: the pending state lasts at least that long.
    const slow = startSign(device, ['--delay', '1000', '--message', 'Booted']);
    try {
      await expect
        .poll(
          async () =>
            (await rest<{ reported?: { message?: string } }>(harper, 'GET', `/signs/${id}`)).body.reported?.message,
          { timeout: 10_000 },
        )
        .toBe('Booted');
      await page.goto(`${harper.httpUrl}/?sign=${id}`);
      await signIn(page, operator);
      await streamLive(page, 'signs');
      await page.waitForSelector('#sign-canvas[data-message="Booted"]');
      const seen = await recordSync(page);
      const message = `Slowly ${run}`;
      await page.fill('#sign-message', message);
      await page.press('#sign-message', 'Enter');
      await page.waitForSelector('#sign-sync[data-state="shown"]', { timeout: 10_000 });
      await page.waitForSelector(`#sign-canvas[data-message="${message}"]`);
      expect(await seen()).toEqual(['pending', 'shown']);
      const took = Number(await page.getAttribute('#sign-sync', 'data-took-ms'));
      expect(took).toBeGreaterThanOrEqual(1000);
      expect(await page.textContent('#sign-sync')).toContain(
        took < 10_000 ? `${(took / 1000).toFixed(1)} s` : `${(took / 1000).toFixed(0)} s`,
      );
      const stored = (
        await rest<{ shownAt: number; updatedAt: number; updatedBy: string; reported: { message: string } }>(
          harper,
          'GET',
          `/signs/${id}`,
        )
      ).body;
      expect(stored).toMatchObject({ message, updatedBy: operator.username, reported: { message }, pending: [] });
      expect(stored.shownAt - stored.updatedAt).toBe(took);
    } finally {
      await slow.stop();
    }
  });

  it('with the sign offline a change from the page waits; when the sign comes back it catches up and the page shows it', async () => {
    const id = `${run}-away`;
    const device = await createUser(harper, 'device', id);
    let sign = startSign(device, ['--message', 'Before']);
    await expect
      .poll(
        async () =>
          (await rest<{ reported?: { message?: string } }>(harper, 'GET', `/signs/${id}`)).body.reported?.message,
        { timeout: 10_000 },
      )
      .toBe('Before');
    await sign.stop();
    await page.goto(`${harper.httpUrl}/?sign=${id}`);
    await signIn(page, operator);
    await streamLive(page, 'signs');
    await page.waitForSelector('#sign-canvas[data-message="Before"]');
    const word = await offlineWord(id);
    const message = `While away ${run}`;
    await page.fill('#sign-message', message);
    await page.press('#sign-message', 'Enter');
    await page.waitForSelector(`#sign-sync[data-state="${word}"]`);
    expect(await page.textContent('#sign-sync')).toContain('message');
    // The sign still shows what it showed; the control holds what it was asked.
    expect(await page.getAttribute('#sign-canvas', 'data-message')).toBe('Before');
    expect(await page.inputValue('#sign-message')).toBe(message);
    expect(await pendingOf(id)).toEqual(['message']);

    sign = startSign(device, ['--message', 'Before']);
    try {
      await page.waitForSelector(`#sign-canvas[data-message="${message}"]`, { timeout: 10_000 });
      await page.waitForSelector('#sign-sync[data-state="shown"]');
      expect(await pendingOf(id)).toEqual([]);
    } finally {
      await sign.stop();
    }
  });

  it('shows one sensor over SSE, WebSocket and MQTT side by side, and resumes a dropped stream without a gap', async () => {
    try {
      await protocolPanel();
    } catch (error) {
      // What the panel showed, to tell a missing event from a slow one.
      const shown = await page.evaluate(() => ({
        lanes: [...document.querySelectorAll<HTMLElement>('.lane')].map(
          (lane) =>
            `${lane.id} ${lane.dataset.state} connections=${lane.dataset.connections} received=${lane.dataset.received} duplicates=${lane.dataset.duplicates}`,
        ),
        rows: [...document.querySelectorAll('#protocol-events tr')].map((row) =>
          row.textContent?.replace(/\s+/g, ' ').trim(),
        ),
      }));
      throw new Error(`${(error as Error).message}\npanel: ${JSON.stringify(shown, null, 1)}`, { cause: error });
    }
  });

  async function protocolPanel(): Promise<void> {
    await signIn(page, operator);
    const id = `${run}-proto`;
    await publish(`sensors/${id}`, { location: 'protocols', temperature: 10 });
    await page.fill('#protocol-sensor', id);
    await page.press('#protocol-sensor', 'Enter');
    for (const lane of ['sse', 'ws', 'mqtt'])
      await page.waitForSelector(`#lane-${lane}[data-state="live"]`, { timeout: 10_000 });

    // A live reading arrives on all three, each with a latency and an arrival order.
    await publish(`sensors/${id}`, { location: 'protocols', temperature: 11 });
    // By locator, not element handle: the panel re-renders its rows, which detaches a held handle.
    const row = page.locator('#protocol-events tr:has(td:text-is("11.0"))');
    await expect.poll(() => row.locator('td.lane-cell[data-latency]').count(), { timeout: 10_000 }).toBe(3);
    const cells = await row.locator('td.lane-cell').evaluateAll((tds) =>
      tds.map((td) => ({
        latency: Number(td.getAttribute('data-latency')),
        rank: td.querySelector('.rank')?.textContent,
      })),
    );
    expect(cells.map((cell) => cell.rank).sort()).toEqual(['1st', '2nd', '3rd']);
    for (const cell of cells) expect(cell.latency).toBeGreaterThanOrEqual(0);

    // Hold the SSE lane's reconnection while three readings are written: it must resume from its
    // last event (?startTime=) and replay exactly those.
    const held: { url: string; resume(): Promise<void> }[] = [];
    const resumption = (url: URL) => url.pathname === `/sensors/${id}` && url.searchParams.has('startTime');
    await page.route(resumption, (route) => {
      held.push({ url: route.request().url(), resume: () => route.continue() });
    });
    await page.click('#lane-sse-reconnect');
    await expect.poll(() => held.length).toBe(1);
    for (const temperature of [12, 13, 14]) await publish(`sensors/${id}`, { location: 'protocols', temperature });
    await page.waitForSelector('#protocol-events tr:has(td:text-is("14.0")) td[data-protocol="ws"][data-latency]');
    const lastSeen = Number(new URL(held[0].url).searchParams.get('startTime'));
    expect(lastSeen).toBeGreaterThan(0);
    await held[0].resume();
    await page.unroute(resumption);
    for (const temperature of ['12.0', '13.0', '14.0']) {
      await page.waitForSelector(
        `#protocol-events tr:has(td:text-is("${temperature}")) td[data-protocol="sse"]:not(.pending)`,
        { timeout: 5000 },
      );
    }
    await page.waitForSelector('#lane-sse[data-state="live"]');
    // Nothing twice: the resumed stream delivered only what it had missed.
    expect(await page.getAttribute('#lane-sse', 'data-duplicates')).toBe('0');

    // Resuming when nothing was missed repeats nothing either (Harper then starts a record
    // subscription with the current state, the last event seen), and the next reading arrives.
    for (const lane of ['sse', 'ws']) {
      const connections = Number(await page.getAttribute(`#lane-${lane}`, 'data-connections'));
      await page.click(`#lane-${lane}-reconnect`);
      await page.waitForSelector(
        `#lane-${lane}[data-connections="${connections + 1}"]:is([data-state="live"], [data-state="waiting"])`,
      );
    }
    await publish(`sensors/${id}`, { location: 'protocols', temperature: 15 });
    for (const lane of ['sse', 'ws']) {
      await page.waitForSelector(
        `#protocol-events tr:has(td:text-is("15.0")) td[data-protocol="${lane}"]:not(.pending)`,
        { timeout: 5000 },
      );
      expect(await page.getAttribute(`#lane-${lane}`, 'data-duplicates')).toBe('0');
    }
    const rows = await page.$$eval('#protocol-events tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    expect(rows.filter((t) => ['11.0', '12.0', '13.0', '14.0'].includes(t ?? '')).sort()).toEqual([
      '11.0',
      '12.0',
      '13.0',
      '14.0',
    ]);
  }

  it('signs out: the session ends and the data is gone from the page', async () => {
    await signIn(page, operator);
    await page.click('#logout');
    await page.waitForSelector('#login-view:not([hidden])');
    expect(await page.isHidden('#main')).toBe(true);
    expect(await page.locator('li.sensor-card').count()).toBe(0);
    // The cookie no longer opens a session: a reload asks to sign in.
    await page.reload();
    await page.waitForSelector('#login-view:not([hidden])');
  });
});

describe('accessible and responsive', () => {
  it('on a phone (390 px): nothing scrolls sideways, every control has a label, the sign is driven from the keyboard', async () => {
    const phone = await openPage(browser, { width: 390, height: 844 });
    try {
      const { page: small } = phone;
      await small.goto(harper.httpUrl + '/');
      await signIn(small, operator);
      await streamLive(small, 'signs');
      // Nothing wider than the screen.
      expect(await small.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      // Every visible form control has an accessible name.
      const unnamed = await small.evaluate(() =>
        [
          ...document.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLSelectElement>(
            'input, button, select, textarea',
          ),
        ]
          .filter((control) => control.offsetParent !== null)
          .filter((control) => {
            const labelled =
              control.labels?.length || control.getAttribute('aria-label') || control.getAttribute('aria-labelledby');
            const text = control instanceof HTMLButtonElement && control.textContent?.trim();
            return !labelled && !text && !control.title;
          })
          .map((control) => control.id || control.outerHTML.slice(0, 60)),
      );
      expect(unnamed).toEqual([]);
      // Keyboard only: focus the message field, type, Enter; the sign takes it.
      const message = `keys ${run}`;
      await small.focus('#sign-message');
      await small.keyboard.press('Control+A');
      await small.keyboard.type(message);
      await small.keyboard.press('Enter');
      await small.waitForSelector(`#sign-canvas[data-message="${message}"]`);
      expect((await rest<{ message: string }>(harper, 'GET', `/signs/${SIGN}`)).body.message).toBe(message);
    } finally {
      await phone.close();
    }
  });
});

describe('history chart ranges', () => {
  it('draws raw readings for the last hour, minute rollups for a day and hour rollups for a week, picked from the keyboard', async () => {
    const id = `${run}-ranges`;
    for (const temperature of [18.5, 19, 19.5]) {
      expect(
        (await rest(harper, 'PUT', `/sensors/${id}`, { json: { location: 'attic', temperature, humidity: 50 } }))
          .status,
      ).toBe(204);
    }
    // Minute parts are written once a second, hour parts once a minute: wait until both are stored.
    const stored = async (resolution: string) =>
      (await rest<unknown[]>(harper, 'GET', `/rollups/?sensorId=${encodeURIComponent(id)}&resolution=${resolution}`))
        .body.length;
    const deadline = Date.now() + 120_000;
    while ((await stored('1m')) === 0 || (await stored('1h')) === 0) {
      if (Date.now() > deadline) throw new Error(`no minute and hour rollups of ${id} after 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }

    const tab = await openPage(browser);
    try {
      const { page: view } = tab;
      const asked: string[] = [];
      view.on('request', (request) => asked.push(decodeURIComponent(request.url())));
      await view.goto(`${harper.httpUrl}/?sensor=${encodeURIComponent(id)}`);
      await signIn(view, harper.admin);
      const chart = (range: string, source: string) =>
        view.waitForSelector(`#history-chart[data-range="${range}"][data-source="${source}"][data-points]`, {
          timeout: 15_000,
        });
      const points = async () => Number(await view.getAttribute('#history-chart', 'data-points'));

      await chart('hour', 'readings');
      expect(await points()).toBe(3);
      expect(asked.some((url) => url.includes(`/readings/?sensorId=${id}&time=ge=`))).toBe(true);

      // A radio group: focus the checked range, then the arrow keys pick the next one.
      const hour = view.getByRole('radio', { name: 'Last hour' });
      expect(await hour.isChecked()).toBe(true);
      await hour.focus();
      await view.keyboard.press('ArrowRight');
      await chart('day', '1m');
      expect(await view.getByRole('radio', { name: 'Day' }).isChecked()).toBe(true);
      expect(await points()).toBeGreaterThanOrEqual(1);
      expect(asked.some((url) => url.includes(`/rollups/?sensorId=${id}&resolution=1m&time=ge=`))).toBe(true);

      await view.keyboard.press('ArrowRight');
      await chart('week', '1h');
      expect(await view.getByRole('radio', { name: 'Week' }).isChecked()).toBe(true);
      expect(await points()).toBeGreaterThanOrEqual(1);
      expect(asked.some((url) => url.includes(`/rollups/?sensorId=${id}&resolution=1h&time=ge=`))).toBe(true);
      expect(await view.textContent('#history-chart-note')).toMatch(/hour means of the last 7 days \([1-9]\d*\)/);
      expect(tab.errors.filter((error) => error.startsWith('pageerror'))).toEqual([]);
    } finally {
      await tab.close();
    }
  }, 180_000);
});

describe('screenshot', () => {
  it('renders the dashboard at a desktop size into docs/dashboard.png', async () => {
    // A small plant: five sensors with some history, a rule that fires, the sign on.
    const sensors = [
      ['plant-a/boiler-room', 'boiler room', 24, 38],
      ['plant-a/cold-store', 'cold store', 4, 71],
      ['plant-a/office', 'office', 21, 45],
      ['plant-a/roof', 'roof', 12, 60],
      ['plant-a/server-room', 'server room', 27, 30],
    ] as const;
    const rule = await rest(harper, 'PUT', '/rules/server-room-hot', {
      json: { sensorId: 'plant-a/server-room', field: 'temperature', above: 29, hysteresis: 1 },
    });
    expect(rule.status).toBe(204);
    for (let step = 0; step < 24; step++) {
      // Paced a little, so that the history has a time axis.
      if (step > 0) await new Promise((resolve) => setTimeout(resolve, 60));
      await Promise.all(
        sensors.map(([id, location, base, humidity], index) =>
          rest(harper, 'PUT', `/sensors/${id}`, {
            json: {
              location,
              temperature: Math.round((base + 3 * Math.sin(step / 3 + index) + (index === 4 ? step / 6 : 0)) * 10) / 10,
              humidity: Math.round((humidity + 4 * Math.cos(step / 4 + index)) * 10) / 10,
              battery: 96 - index * 7 - Math.floor(step / 8),
            },
          }),
        ),
      );
    }
    expect(
      (
        await rest(harper, 'PATCH', `/signs/${SIGN}`, {
          json: {
            message: 'Harper IoT backbone: MQTT, WebSocket, SSE, REST',
            brightness: 12,
            power: 'on',
            color: '#ffb020',
          },
        })
      ).status,
    ).toBe(204);

    // Reduced motion, for a still picture: the sign shows its first page, no card is flashing.
    const shot = await openPage(browser, { width: 1440, height: 900, reducedMotion: true });
    try {
      const { page: desk } = shot;
      await desk.goto(`${harper.httpUrl}/?sensor=${encodeURIComponent('plant-a/server-room')}`);
      await signIn(desk, harper.admin);
      await desk.fill('#sensor-filter', 'plant-a/');
      await streamLive(desk, 'sensors');
      await desk.waitForFunction(() => document.querySelectorAll('li.sensor-card').length === 5);
      await desk.waitForSelector('#history-rows tr');
      await desk.waitForSelector('#history-stats table');
      for (const lane of ['sse', 'ws', 'mqtt'])
        await desk.waitForSelector(`#lane-${lane}[data-state="live"]`, { timeout: 10_000 });
      // Two live readings for the protocol panel.
      for (const temperature of [30.2, 30.6]) {
        await publish('sensors/plant-a/server-room', {
          location: 'server room',
          temperature,
          humidity: 31,
          battery: 68,
        });
        await desk.waitForSelector(
          `#protocol-events tr:has(td:text-is("${temperature.toFixed(1)}")) td.lane-cell:not(.pending) >> nth=2`,
        );
      }
      await desk.waitForSelector('#alerts-list li.alert');
      await desk.waitForSelector('#sign-canvas[data-power="on"]');
      await desk.evaluate(() => {
        (document.activeElement as HTMLElement | null)?.blur();
        window.scrollTo(0, 0);
      });
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      // Latencies (and the time the sign took to show its change) are masked: the harperdb licence forbids publishing figures about Harper's speed,
      // and this picture goes into the README.
      await desk.screenshot({
        path: SCREENSHOT,
        fullPage: true,
        mask: [desk.locator('.latency'), desk.locator('.lane-summary'), desk.locator('#sign-sync')],
        maskColor: '#2a303c',
      });
    } finally {
      await shot.close();
    }
    const png = readFileSync(SCREENSHOT);
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    // IHDR: width and height, big-endian, at bytes 16-23.
    expect(png.readUInt32BE(16)).toBe(1440);
    expect(png.readUInt32BE(20)).toBeGreaterThan(900);
  });
});
