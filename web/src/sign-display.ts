/**
 * The LED sign drawn as one: a canvas of round dots, 9 rows (a 5×7 font with a row of margin above
 * and below). Brightness 0–15 dims the lit dots, power "off" darkens them all, the colour tints them,
 * and a message wider than the sign scrolls (or, with reduced motion, turns page by page).
 */
import { CHAR_ADVANCE, GLYPH_HEIGHT, columnsOf } from './font.js';
import { prefersReducedMotion } from './dom.js';
import type { Power } from './types.js';

const ROWS = GLYPH_HEIGHT + 2;
const COLUMNS = 80;
/** Blank columns between the end of a scrolling message and its start. */
const SCROLL_GAP = 12;
const STEP_MS = 55;
const PAGE_MS = 2600;

export interface SignLook {
  message: string;
  brightness: number;
  power: Power;
  color: string;
}

function rgb(color: string): [number, number, number] {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (!match) return [255, 176, 32];
  return [parseInt(match[1] ?? 'ff', 16), parseInt(match[2] ?? 'b0', 16), parseInt(match[3] ?? '20', 16)];
}

export class SignDisplay {
  private look: SignLook = { message: '', brightness: 8, power: 'off', color: '#ffb020' };
  private columns: number[] = [];
  private offset = 0;
  private lastStep = 0;
  private frame = 0;
  private width = 0;
  private readonly context: CanvasRenderingContext2D;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly describe: (look: SignLook) => void,
  ) {
    const context = canvas.getContext('2d');
    if (!context) throw new Error('no 2D canvas');
    this.context = context;
    // The canvas takes its container's width (CSS width: 100%); its height follows from the dot pitch.
    new ResizeObserver(() => this.resize()).observe(canvas);
    document.addEventListener('visibilitychange', () => this.animate());
    this.resize();
  }

  show(look: SignLook): void {
    const changedText = look.message !== this.look.message;
    this.look = { ...look };
    if (changedText) {
      this.columns = columnsOf(look.message);
      this.offset = 0;
      this.lastStep = performance.now();
    }
    this.canvas.dataset.message = look.message;
    this.canvas.dataset.power = look.power;
    this.canvas.dataset.brightness = String(look.brightness);
    this.canvas.dataset.color = look.color;
    this.describe(this.look);
    this.draw();
    this.animate();
  }

  private scrolls(): boolean {
    return this.look.power === 'on' && this.columns.length > COLUMNS;
  }

  private animate(): void {
    cancelAnimationFrame(this.frame);
    if (!this.scrolls() || document.hidden) return;
    const tick = (now: number) => {
      const reduced = prefersReducedMotion();
      const interval = reduced ? PAGE_MS : STEP_MS;
      if (now - this.lastStep >= interval) {
        const loop = this.columns.length + SCROLL_GAP;
        if (reduced) {
          // Page by page, on character boundaries.
          const page = Math.floor(COLUMNS / CHAR_ADVANCE) * CHAR_ADVANCE;
          this.offset = this.offset + page >= this.columns.length ? 0 : this.offset + page;
        } else {
          this.offset = (this.offset + 1) % loop;
        }
        this.lastStep = now;
        this.draw();
      }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
  }

  private resize(): void {
    const width = Math.max(160, Math.floor(this.canvas.clientWidth));
    if (width === this.width) return;
    this.width = width;
    const pitch = width / COLUMNS;
    const height = Math.round(pitch * ROWS);
    const ratio = window.devicePixelRatio || 1;
    this.canvas.style.height = `${height}px`;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.draw();
  }

  /** Which dots are lit: a column bitmask per sign column. */
  private litColumns(): number[] {
    const shown = new Array<number>(COLUMNS).fill(0);
    if (this.look.power !== 'on' || this.columns.length === 0) return shown;
    if (!this.scrolls()) {
      const start = Math.floor((COLUMNS - this.columns.length) / 2);
      this.columns.forEach((bits, index) => (shown[start + index] = bits));
      return shown;
    }
    const loop = this.columns.length + SCROLL_GAP;
    const reduced = prefersReducedMotion();
    // With reduced motion a page holds whole characters only.
    const page = Math.floor(COLUMNS / CHAR_ADVANCE) * CHAR_ADVANCE;
    for (let column = 0; column < COLUMNS; column++) {
      if (reduced && column >= page - 1) break;
      const source = reduced ? this.offset + column : (this.offset + column) % loop;
      shown[column] = this.columns[source] ?? 0;
    }
    return shown;
  }

  private draw(): void {
    const { context, canvas } = this;
    const pitch = canvas.width / COLUMNS;
    const radius = pitch * 0.36;
    context.fillStyle = '#06080b';
    context.fillRect(0, 0, canvas.width, canvas.height);
    const lit = this.litColumns();
    const [r, g, b] = rgb(this.look.color);
    // Brightness 0 is the faintest visible level, 15 full power.
    const level = 0.16 + 0.84 * (Math.min(15, Math.max(0, this.look.brightness)) / 15);
    const off = 'rgba(255, 255, 255, 0.055)';
    for (let column = 0; column < COLUMNS; column++) {
      const bits = lit[column] ?? 0;
      for (let row = 0; row < ROWS; row++) {
        const on = row >= 1 && row <= GLYPH_HEIGHT && (bits >> (row - 1)) & 1;
        const x = (column + 0.5) * pitch;
        const y = (row + 0.5) * pitch;
        if (on) {
          context.fillStyle = `rgba(${r}, ${g}, ${b}, ${0.22 * level})`;
          context.beginPath();
          context.arc(x, y, pitch * 0.62, 0, Math.PI * 2);
          context.fill();
          context.fillStyle = `rgba(${r}, ${g}, ${b}, ${level})`;
        } else {
          context.fillStyle = off;
        }
        context.beginPath();
        context.arc(x, y, radius, 0, Math.PI * 2);
        context.fill();
      }
    }
  }
}
