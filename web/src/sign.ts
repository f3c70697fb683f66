/**
 * The LED sign panel: its state from GET /signs/<id> and then SSE /signs/<id>, drawn by
 * SignDisplay; the controls write one field at a time with PATCH /signs/<id>. A refusal
 * (400 {"error","field","rule","message"}) is shown next to the control it concerns.
 */
import { HttpError, describeError, idPath, request } from './api.js';
import { byId, formatDateTime, setText } from './dom.js';
import { SignDisplay, type SignLook } from './sign-display.js';
import { SseTransport } from './transport/sse.js';
import type { Frame, Session, Sign, SignField } from './types.js';

export const MESSAGE_MAX = 64;
const DEFAULT_SIGN = '2FE598';

/** The sign this page drives: ?sign=<id>, or the demo sign. */
export function signIdFromUrl(): string {
  const requested = new URLSearchParams(location.search).get('sign')?.trim();
  return requested ? requested : DEFAULT_SIGN;
}

export class SignPanel {
  readonly id = signIdFromUrl();
  private sign: Sign | undefined;
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
  private readonly readonlyNote = byId('sign-readonly', HTMLElement);
  private readonly errors: Record<SignField, HTMLElement> = {
    message: byId('sign-message-error', HTMLElement),
    brightness: byId('sign-brightness-error', HTMLElement),
    power: byId('sign-power-error', HTMLElement),
    color: byId('sign-color-error', HTMLElement),
  };

  constructor(
    private readonly onStream: (stream: SseTransport<Sign>) => void,
    private readonly onSignedOut: () => void,
  ) {
    setText(byId('sign-id', HTMLElement), this.id);
    const canvas = byId('sign-canvas', HTMLCanvasElement);
    const caption = byId('sign-caption', HTMLElement);
    this.display = new SignDisplay(canvas, (look) => {
      const text = look.message ? `“${look.message}”` : 'no message';
      const label = look.power === 'on' ? `LED sign ${this.id} showing ${text}, brightness ${look.brightness} of 15, colour ${look.color}` : `LED sign ${this.id} is switched off (message ${text})`;
      canvas.setAttribute('aria-label', label);
      setText(caption, look.power === 'on' ? (look.message || '(no message)') : `Off · ${look.message || '(no message)'}`);
    });

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.write('message', this.message.value);
    });
    this.message.addEventListener('input', () => {
      this.messageDirty = this.message.value !== (this.sign?.message ?? '');
      this.updateCounter();
    });
    this.message.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.sign) {
        this.message.value = this.sign.message;
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
    for (const control of [this.message, this.send, this.brightness, this.power, this.color]) control.disabled = !this.canWrite;
    setText(this.status, 'Loading the sign…');
    try {
      const { data } = await request<Sign>('GET', `/signs/${idPath(this.id)}`);
      if (data) this.apply(data);
    } catch (error) {
      setText(this.status, error instanceof HttpError && error.status === 404 ? `Sign ${this.id} has not reported yet.` : `Could not load the sign: ${describeError(error)}`);
    }
    this.stream = new SseTransport<Sign>({
      label: 'Sign',
      path: `/signs/${idPath(this.id)}`,
      onFrame: (frame) => this.receive(frame),
      onSignedOut: this.onSignedOut,
    });
    this.onStream(this.stream);
    this.stream.start();
  }

  stop(): void {
    this.stream?.stop();
    this.stream = undefined;
  }

  private receive(frame: Frame<Sign>): void {
    if (frame.type === 'delete' || !frame.value) {
      setText(this.status, `Sign ${this.id} was removed.`);
      return;
    }
    // A patch frame may carry only the changed fields.
    this.apply({ ...(this.sign ?? {}), ...frame.value } as Sign);
  }

  private apply(sign: Sign): void {
    this.sign = sign;
    const look: SignLook = {
      message: typeof sign.message === 'string' ? sign.message : '',
      brightness: typeof sign.brightness === 'number' ? sign.brightness : 0,
      power: sign.power === 'off' ? 'off' : 'on',
      color: typeof sign.color === 'string' ? sign.color : '#ffb020',
    };
    this.display.show(look);
    // Controls follow the sign, except a message being edited.
    if (!this.messageDirty || this.message.value === look.message) {
      this.message.value = look.message;
      this.messageDirty = false;
      this.updateCounter();
    }
    if (document.activeElement !== this.brightness || !this.brightness.matches(':active')) {
      this.brightness.value = String(look.brightness);
      setText(this.brightnessOut, String(look.brightness));
    }
    this.power.checked = look.power === 'on';
    if (/^#[0-9a-f]{6}$/i.test(look.color)) {
      this.color.value = look.color.toLowerCase();
      setText(this.colorOut, look.color.toLowerCase());
    }
    const by = sign.updatedBy ? ` by ${sign.updatedBy}` : '';
    setText(this.status, sign.updatedAt ? `Last changed${by} at ${formatDateTime(sign.updatedAt)}` : 'Live');
  }

  private updateCounter(): void {
    const length = [...this.message.value].length;
    setText(this.counter, `${length}/${MESSAGE_MAX}`);
    this.counter.classList.toggle('over', length > MESSAGE_MAX);
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
      if (data && typeof data === 'object' && 'id' in data) this.apply({ ...(this.sign ?? {}), ...data } as Sign);
    } catch (error) {
      const reported = error instanceof HttpError ? error.body?.field : undefined;
      const target: SignField = reported === 'message' || reported === 'brightness' || reported === 'power' || reported === 'color' ? reported : field;
      this.showError(target, describeError(error));
      // The sign did not change: the controls go back to what it shows (a message stays to be fixed).
      if (this.sign && field !== 'message') this.apply(this.sign);
      if (field === 'message') this.message.focus();
    } finally {
      group?.removeAttribute('aria-busy');
    }
  }
}
