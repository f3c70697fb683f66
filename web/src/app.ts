/**
 * The dashboard's entry point: sign-in, then the live panels. Everything is served by Harper from
 * this component (web/), on the same origin as the data: no CDN, no CORS, works offline.
 */
import { AlertsPanel } from './alerts.js';
import { describeError } from './api.js';
import { currentSession, forget, login, logout } from './auth.js';
import { byId, el, frameScheduler, setText } from './dom.js';
import { HistoryPanel } from './history.js';
import { PresenceStore } from './presence.js';
import { ProtocolPanel } from './protocols.js';
import { SensorGrid, SensorStore } from './sensors.js';
import { SignPanel } from './sign.js';
import { StatusBar } from './status.js';
import { SseTransport } from './transport/sse.js';
import type { Session, Sensor } from './types.js';

const loginView = byId('login-view', HTMLElement);
const loginForm = byId('login-form', HTMLFormElement);
const loginFields = byId('login-fields', HTMLFieldSetElement);
const loginUser = byId('login-username', HTMLInputElement);
const loginPassword = byId('login-password', HTMLInputElement);
const loginError = byId('login-error', HTMLElement);
const loginSubmit = byId('login-submit', HTMLButtonElement);
const main = byId('main', HTMLElement);
const userBox = byId('user-box', HTMLElement);
const logoutButton = byId('logout', HTMLButtonElement);

let session: Session | undefined;
let sensorStream: SseTransport<Sensor> | undefined;
let selected: string | undefined;

const status = new StatusBar(byId('stream-status', HTMLUListElement));
const store = new SensorStore();
const presence = new PresenceStore();

function select(id: string | undefined): void {
  selected = id;
  grid.setSelected(id);
  void history.select(id);
  if (id !== undefined) protocols.watch(id);
  const url = new URL(location.href);
  if (id === undefined) url.searchParams.delete('sensor');
  else url.searchParams.set('sensor', id);
  window.history.replaceState(null, '', url);
}

const grid = new SensorGrid(
  store,
  byId('sensor-grid', HTMLUListElement),
  byId('sensor-filter', HTMLInputElement),
  byId('sensors-summary', HTMLElement),
  byId('sensors-more', HTMLButtonElement),
  byId('sensors-empty', HTMLElement),
  (id) => {
    select(id);
    byId('history-panel', HTMLElement).scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  },
  presence,
);

const history = new HistoryPanel(
  store,
  {
    title: byId('history-title', HTMLElement),
    status: byId('history-status', HTMLElement),
    body: byId('history-body', HTMLElement),
    chart: byId('history-chart', HTMLElement),
    chartNote: byId('history-chart-note', HTMLElement),
    range: byId('history-range', HTMLFieldSetElement),
    stats: byId('history-stats', HTMLElement),
    table: byId('history-rows', HTMLTableSectionElement),
    close: byId('history-close', HTMLButtonElement),
  },
  () => select(undefined),
);

const sign = new SignPanel(
  presence,
  (stream) => status.track(stream),
  () => signedOut('Your session has ended: sign in again.'),
);
const alerts = new AlertsPanel(
  byId('alerts-list', HTMLOListElement),
  byId('alerts-summary', HTMLElement),
  (stream) => status.track(stream),
  () => signedOut('Your session has ended: sign in again.'),
);
const protocols = new ProtocolPanel(
  () => session,
  () => undefined,
  () => signedOut('Your session has ended: sign in again.'),
);

// Known sensor ids for the protocol panel's input.
const datalist = byId('sensor-ids', HTMLDataListElement);
const refreshIds = frameScheduler(() => {
  const ids = [...store.entries.keys()].sort().slice(0, 500);
  if (datalist.options.length === ids.length && ids.every((id, index) => datalist.options[index]?.value === id)) return;
  datalist.replaceChildren(...ids.map((id) => el('option', { value: id })));
});
// Until a sensor is selected, the protocol panel watches the most recently updated one.
let autoWatch: ReturnType<typeof setTimeout> | undefined;
store.subscribe(() => {
  refreshIds();
  if (!session || protocols.watching !== undefined || selected !== undefined || autoWatch !== undefined) return;
  autoWatch = setTimeout(() => {
    autoWatch = undefined;
    if (!session || protocols.watching !== undefined || selected !== undefined) return;
    let newest: { id: string; at: number } | undefined;
    for (const [id, entry] of store.entries) {
      const at = entry.sensor.updatedAt ?? entry.receivedAt;
      if (!newest || at > newest.at) newest = { id, at };
    }
    if (newest) protocols.watch(newest.id);
  }, 300);
});

function showLogin(message?: string): void {
  main.hidden = true;
  userBox.hidden = true;
  loginView.hidden = false;
  loginFields.disabled = false;
  loginError.hidden = !message;
  setText(loginError, message ?? '');
  loginPassword.value = '';
  loginUser.focus();
}

function startDashboard(current: Session): void {
  session = current;
  loginView.hidden = true;
  main.hidden = false;
  userBox.hidden = false;
  setText(byId('user-name', HTMLElement), current.username);
  setText(byId('user-role', HTMLElement), current.role);
  document.body.dataset.role = current.role;

  sensorStream = new SseTransport<Sensor>({
    label: 'Sensors',
    path: '/sensors/',
    onFrame: (frame) => store.apply(frame),
    onSignedOut: () => signedOut('Your session has ended: sign in again.'),
  });
  status.track(sensorStream);
  sensorStream.start();
  void alerts.start();
  presence.start(
    (stream) => status.track(stream),
    () => signedOut('Your session has ended: sign in again.'),
  );
  void sign.start(current);
  const wanted = new URL(location.href).searchParams.get('sensor');
  if (wanted) select(wanted);
}

function stopDashboard(): void {
  sensorStream?.stop();
  sensorStream = undefined;
  alerts.stop();
  sign.stop();
  presence.stop();
  protocols.stop();
  status.clear();
  store.clear();
  grid.reset();
  selected = undefined;
  void history.select(undefined);
  session = undefined;
  forget();
}

function signedOut(message: string): void {
  if (!session) return;
  stopDashboard();
  showLogin(message);
}

/**
 * The new session, once the server honours it. Harper answers POST /login before it has stored the
 * session: a request sent at once with the new cookie is sometimes refused (about one in four
 * here), a few milliseconds later it is not. No stream starts before this succeeds, since a stream
 * refused for want of a session gets Harper's Basic challenge, that is the browser's password dialog.
 */
async function sessionAfterLogin(): Promise<Session | undefined> {
  for (const wait of [0, 25, 50, 100, 200, 400, 800]) {
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const current = await currentSession();
    if (current) return current;
  }
  return undefined;
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = loginUser.value.trim();
  const password = loginPassword.value;
  if (!username || !password) {
    loginError.hidden = false;
    setText(loginError, 'Enter your username and password.');
    (username ? loginPassword : loginUser).focus();
    return;
  }
  loginSubmit.disabled = true;
  loginError.hidden = true;
  try {
    await login(username, password);
    loginPassword.value = '';
    const current = await sessionAfterLogin();
    if (!current) {
      forget();
      throw new Error('Signed in, but this browser did not keep the session cookie: allow cookies for this site.');
    }
    startDashboard(current);
    main.focus();
  } catch (error) {
    loginError.hidden = false;
    setText(
      loginError,
      describeError(error).replace(/^Your session has ended: sign in again\.$/, 'Wrong username or password.'),
    );
    loginPassword.select();
  } finally {
    loginSubmit.disabled = false;
  }
});

logoutButton.addEventListener('click', async () => {
  try {
    await logout();
  } catch (error) {
    console.warn('sign-out failed', error);
  }
  session = session ?? { username: '', role: '' };
  signedOut('You have signed out.');
});

async function boot(): Promise<void> {
  try {
    const current = await currentSession();
    if (current) startDashboard(current);
    else showLogin();
  } catch (error) {
    showLogin(`The server cannot answer: ${describeError(error)}`);
  }
  document.body.classList.remove('booting');
}

void boot();
