/**
 * The LED signs panel: the fleet (every sign, from one SSE stream on the whole `signs` table,
 * with its device's presence and a preview of its message) and the selected sign (?sign=<id>,
 * or the demo sign), drawn by SignDisplay as its device reported it. The controls change what it
 * should show (desired), one field at a time with PATCH /signs/<id>; the line under the sign
 * says whether the sign shows it yet: pending until its device reports it, queued while the
 * device is offline, and once shown, how long that took. A refusal
 * (400 {"error","field","rule","message"}) is shown next to the control it concerns.
 */
import { HttpError, describeError, idPath, request } from './api.js';
import { byId, el, formatDateTime, formatTime, frameScheduler, setText } from './dom.js';
import type { PresenceState, PresenceStore } from './presence.js';
import { SignDisplay, type SignLook } from './sign-display.js';
import { SseTransport } from './transport/sse.js';
import type { Frame, Session, Sign, SignField, SignState } from './types.js';
import { MAX_MESSAGE } from './shared/records.js';

const DEFAULT_SIGN = '2FE598';
/** Signs listed; the rest are reachable with ?sign=<id>. */
const LISTED = 50;
const FIELDS: readonly SignField[] = ['message', 'brightness', 'power', 'color'];

/** The sign this page drives: ?sign=<id>, or the demo sign. */
export function signIdFromUrl(): string {
  const requested = new URLSearchParams(location.search).get('sign')?.trim();
  return requested ? requested : DEFAULT_SIGN;
}

function desiredOf(sign: Sign): SignState | undefined {
  if (FIELDS.some((field) => sign[field] === undefined)) return undefined;
  return { message: sign.message!, brightness: sign.brightness!, power: sign.power!, color: sign.color! };
}

/** What the sign shows: its report, completed by what it was asked for where it reported nothing. */
function shownOf(sign: Sign): Partial<SignState> {
  return { ...desiredOf(sign), ...sign.reported };
}

/** The device whose presence counts for a sign: the one that reports it, else the one named like it. */
function deviceOf(sign: Sign | undefined, id: string): string {
  return sign?.reportedBy ?? id;
}

function duration(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

export type SyncState = 'unset' | 'reported' | 'pending' | 'queued' | 'shown';

/** Where a sign's latest change stands, in a word and in a sentence. */
export function syncOf(
  sign: Sign | undefined,
  presence: PresenceState,
): { state: SyncState; text: string; tookMs?: number } {
  if (!sign) return { state: 'unset', text: 'Nobody has set this sign and its device has not reported.' };
  const desired = desiredOf(sign);
  if (!desired)
    return {
      state: 'reported',
      text: sign.reportedAt
        ? `Showing what its device reported at ${formatTime(sign.reportedAt)}; nobody has changed it yet.`
        : 'Not set yet.',
    };
  const pending = sign.pending ?? [];
  const by = sign.updatedBy ? ` by ${sign.updatedBy}` : '';
  if (pending.length > 0) {
    const what = pending.join(', ');
    if (presence === 'offline')
      return {
        state: 'queued',
        text: `Queued: the sign is offline; it gets the new ${what} when it reconnects (changed${by} at ${formatTime(sign.updatedAt)}).`,
      };
    return {
      state: 'pending',
      text: `Pending: sent the new ${what}${by} at ${formatTime(sign.updatedAt)}; the sign has not shown it yet.`,
    };
  }
  if (typeof sign.shownAt === 'number' && typeof sign.updatedAt === 'number') {
    const tookMs = Math.max(0, sign.shownAt - sign.updatedAt);
    return {
      state: 'shown',
      text: `Shown: the sign showed the change${by} ${duration(tookMs)} after it was sent (${formatDateTime(sign.shownAt)}).`,
      tookMs,
    };
  }
  return { state: 'shown', text: 'Shown.' };
}

export class SignPanel {
  id = signIdFromUrl();
  private readonly signs = new Map<string, Sign>();
  private stream: SseTransport<Sign> | undefined;
  private readonly display: SignDisplay;
  private messageDirty = false;
  private canWrite = true;

  private readonly form = byId('sign-form', HTMLFormElement);
  private readonly message = byId('sign-message', HTMLInputElement);
  private readonly counter = byId('sign-message-count', HTMLElement);
  private readonly send = byId('sign-send', HTMLButtonElement);
  private readonly brightness = byId('sign-brightness', HTMLInputElement);
  private readonly brightnessOut = byId('sign-brightness-value', HTMLOutputElement);
  private readonly power = byId('sign-power', HTMLInputElement);
  private readonly color = byId('sign-color', HTMLInputElement);
  private readonly colorOut = byId('sign-color-value', HTMLOutputElement);
  private readonly status = byId('sign-status', HTMLElement);
  private readonly sync = byId('sign-sync', HTMLElement);
  private readonly presenceBadge = byId('sign-presence', HTMLElement);
  private readonly list = byId('sign-list', HTMLUListElement);
  private readonly badge = byId('sign-id', HTMLElement);
  private readonly renderList = frameScheduler(() => this.drawList());
  private readonly readonlyNote = byId('sign-readonly', HTMLElement);
  private readonly errors: Record<SignField, HTMLElement> = {
    message: byId('sign-message-error', HTMLElement),
    brightness: byId('sign-brightness-error', HTMLElement),
    power: byId('sign-power-error', HTMLElement),
    color: byId('sign-color-error', HTMLElement),
  };

  constructor(
    private readonly presence: PresenceStore,
    private readonly onStream: (stream: SseTransport<Sign>) => void,
    private readonly onSignedOut: () => void,
  ) {
    setText(this.badge, this.id);
    presence.subscribe(() => {
      this.renderList();
      this.showSync();
    });
    this.list.addEventListener('click', (event) => {
      const button = (event.target as Element | null)?.closest<HTMLButtonElement>('button[data-sign-id]');
      const id = button?.dataset.signId;
      if (id !== undefined) this.select(id);
    });
    const canvas = byId('sign-canvas', HTMLCanvasElement);
    const caption = byId('sign-caption', HTMLElement);
    this.display = new SignDisplay(canvas, (look) => {
      const text = look.message ? `“${look.message}”` : 'no message';
      const label =
        look.power === 'on'
          ? `LED sign ${this.id} showing ${text}, brightness ${look.brightness} of 15, colour ${look.color}`
          : `LED sign ${this.id} is switched off (message ${text})`;
      canvas.setAttribute('aria-label', label);
      setText(
        caption,
        look.power === 'on' ? look.message || '(no message)' : `Off · ${look.message || '(no message)'}`,
      );
    });

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.write('message', this.message.value);
    });
    this.message.addEventListener('input', () => {
      this.messageDirty = this.message.value !== (this.signs.get(this.id)?.message ?? '');
      this.updateCounter();
    });
    this.message.addEventListener('keydown', (event) => {
      const sign = this.signs.get(this.id);
      if (event.key === 'Escape' && sign) {
        this.message.value = desiredOf(sign)?.message ?? shownOf(sign).message ?? '';
        this.messageDirty = false;
        this.updateCounter();
        this.clearError('message');
      }
    });
    this.brightness.addEventListener('input', () => setText(this.brightnessOut, this.brightness.value));
    this.brightness.addEventListener('change', () => void this.write('brightness', Number(this.brightness.value)));
    this.power.addEventListener('change', () => void this.write('power', this.power.checked ? 'on' : 'off'));
    this.color.addEventListener('input', () => setText(this.colorOut, this.color.value));
    this.color.addEventListener('change', () => void this.write('color', this.color.value));
    this.updateCounter();
  }

  async start(session: Session): Promise<void> {
    this.canWrite = session.role !== 'viewer';
    this.readonlyNote.hidden = this.canWrite;
    for (const control of [this.message, this.send, this.brightness, this.power, this.color])
      control.disabled = !this.canWrite;
    setText(this.status, 'Loading the sign…');
    try {
      const { data } = await request<Sign>('GET', `/signs/${idPath(this.id)}`);
      if (data) this.store(data);
    } catch (error) {
      if (!(error instanceof HttpError && error.status === 404))
        setText(this.status, `Could not load the sign: ${describeError(error)}`);
    }
    this.show();
    this.stream = new SseTransport<Sign>({
      label: 'Signs',
      path: '/signs/',
      onFrame: (frame) => this.receive(frame),
      onSignedOut: this.onSignedOut,
    });
    this.onStream(this.stream);
    this.stream.start();
  }

  /** Shows another sign of the fleet (a click in the list); the URL says which, for a reload. */
  select(id: string): void {
    if (id === this.id) return;
    this.id = id;
    setText(this.badge, id);
    this.messageDirty = false;
    for (const field of FIELDS) this.clearError(field);
    const url = new URL(location.href);
    url.searchParams.set('sign', id);
    window.history.replaceState(null, '', url);
    this.show();
    this.renderList();
  }

  stop(): void {
    this.stream?.stop();
    this.stream = undefined;
    this.signs.clear();
    this.list.replaceChildren();
  }

  private store(sign: Sign): void {
    this.signs.set(sign.id, sign);
    this.renderList();
  }

  private receive(frame: Frame<Sign>): void {
    const id = frame.id ?? frame.value?.id;
    if (typeof id !== 'string') return;
    if (frame.type === 'delete' || !frame.value) {
      this.signs.delete(id);
      this.renderList();
      if (id === this.id) this.show();
      return;
    }
    // A patch frame may carry only the changed fields.
    this.store({ ...(frame.type === 'patch' ? this.signs.get(id) : undefined), ...frame.value, id });
    if (id === this.id) this.show();
  }

  /** The selected sign as the page knows it: drawn as its device shows it, controls as desired. */
  private show(): void {
    const sign = this.signs.get(this.id);
    this.showSync();
    if (!sign) {
      setText(this.status, `Sign ${this.id} has not been set and has not reported yet.`);
      this.display.show({ message: '', brightness: 0, power: 'off', color: '#ffb020' });
      return;
    }
    const shown = shownOf(sign);
    const look: SignLook = {
      message: typeof shown.message === 'string' ? shown.message : '',
      brightness: typeof shown.brightness === 'number' ? shown.brightness : 0,
      power: shown.power === 'off' ? 'off' : 'on',
      color: typeof shown.color === 'string' ? shown.color : '#ffb020',
    };
    this.display.show(look);
    const wanted: SignLook = { ...look, ...desiredOf(sign) };
    // Controls follow what the sign should show, except a message being edited.
    if (!this.messageDirty || this.message.value === wanted.message) {
      this.message.value = wanted.message;
      this.messageDirty = false;
      this.updateCounter();
    }
    if (document.activeElement !== this.brightness || !this.brightness.matches(':active')) {
      this.brightness.value = String(wanted.brightness);
      setText(this.brightnessOut, String(wanted.brightness));
    }
    this.power.checked = wanted.power === 'on';
    if (/^#[0-9a-f]{6}$/i.test(wanted.color)) {
      this.color.value = wanted.color.toLowerCase();
      setText(this.colorOut, wanted.color.toLowerCase());
    }
    const reported = sign.reportedAt
      ? `reported by ${sign.reportedBy ?? 'its device'} at ${formatDateTime(sign.reportedAt)}`
      : 'never reported by its device';
    setText(
      this.status,
      sign.updatedAt
        ? `Set by ${sign.updatedBy ?? 'someone'} at ${formatDateTime(sign.updatedAt)}; ${reported}`
        : `Not set by an operator; ${reported}`,
    );
  }

  /** The line that says whether the sign shows what it was asked to, and its device's presence. */
  private showSync(): void {
    const sign = this.signs.get(this.id);
    const presence = this.presence.stateOf(deviceOf(sign, this.id));
    const sync = syncOf(sign, presence);
    this.sync.dataset.state = sync.state;
    if (sync.tookMs === undefined) delete this.sync.dataset.tookMs;
    else this.sync.dataset.tookMs = String(sync.tookMs);
    setText(this.sync, sync.text);
    this.presenceBadge.dataset.presence = presence;
    setText(this.presenceBadge, presence === 'unknown' ? 'presence unknown' : presence);
  }

  private drawList(): void {
    const ids = [...this.signs.keys()].sort();
    const items = ids.slice(0, LISTED).map((id) => {
      const sign = this.signs.get(id)!;
      const presence = this.presence.stateOf(deviceOf(sign, id));
      const sync = syncOf(sign, presence).state;
      const shown = shownOf(sign);
      const preview = shown.power === 'off' ? `off · ${shown.message ?? ''}` : shown.message || '(no message)';
      const button = el(
        'button',
        {
          type: 'button',
          class: 'sign-item',
          'data-sign-id': id,
          'data-presence': presence,
          'data-sync': sync,
          'aria-pressed': String(id === this.id),
        },
        el('span', { class: 'presence-dot', 'aria-hidden': 'true' }),
        el('span', { class: 'sign-item-id mono' }, id),
        el('span', { class: 'sign-item-preview' }, preview),
        el(
          'span',
          { class: 'visually-hidden' },
          `, device ${presence === 'unknown' ? 'presence unknown' : presence}${sync === 'pending' || sync === 'queued' ? `, change ${sync}` : ''}`,
        ),
      );
      return el('li', {}, button);
    });
    if (ids.length > LISTED)
      items.push(el('li', { class: 'muted small' }, `and ${ids.length - LISTED} more: open one with ?sign=<id>`));
    this.list.replaceChildren(...items);
  }

  private updateCounter(): void {
    const length = [...this.message.value].length;
    setText(this.counter, `${length}/${MAX_MESSAGE}`);
    this.counter.classList.toggle('over', length > MAX_MESSAGE);
  }

  private control(field: SignField): HTMLInputElement {
    return { message: this.message, brightness: this.brightness, power: this.power, color: this.color }[field];
  }

  private showError(field: SignField, text: string): void {
    const slot = this.errors[field];
    setText(slot, text);
    slot.hidden = false;
    this.control(field).setAttribute('aria-invalid', 'true');
  }

  private clearError(field: SignField): void {
    const slot = this.errors[field];
    setText(slot, '');
    slot.hidden = true;
    this.control(field).removeAttribute('aria-invalid');
  }

  /** PATCH one field; the new state then arrives on the stream (or in the answer's body). */
  private async write(field: SignField, value: string | number): Promise<void> {
    if (!this.canWrite) return;
    const group = this.control(field).closest('.control');
    group?.setAttribute('aria-busy', 'true');
    try {
      const { data } = await request<Sign>('PATCH', `/signs/${idPath(this.id)}`, { [field]: value });
      this.clearError(field);
      if (field === 'message') this.messageDirty = false;
      if (data && typeof data === 'object' && 'id' in data) {
        this.store(data);
        this.show();
      }
    } catch (error) {
      const reported = error instanceof HttpError ? error.body?.field : undefined;
      const target: SignField =
        reported === 'message' || reported === 'brightness' || reported === 'power' || reported === 'color'
          ? reported
          : field;
      this.showError(target, describeError(error));
      // The sign did not change: the controls go back to what it shows (a message stays to be fixed).
      if (field !== 'message') this.show();
      if (field === 'message') this.message.focus();
    } finally {
      group?.removeAttribute('aria-busy');
    }
  }
}
