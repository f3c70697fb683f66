/** The header's connection list: one entry per live stream, its state in words and colour. */
import { el, setText } from './dom.js';
import type { LiveStream, StreamState } from './stream.js';

const WORDS: Record<StreamState, string> = {
  idle: 'idle',
  connecting: 'connecting',
  waiting: 'no events yet',
  live: 'live',
  reconnecting: 'reconnecting',
  'signed-out': 'signed out',
  stopped: 'stopped',
};

export class StatusBar {
  private items = new Map<string, { item: HTMLLIElement; unsubscribe: () => void }>();

  constructor(private readonly list: HTMLUListElement) {}

  /** Shows a stream under its label, replacing an earlier stream of the same label. */
  track<T>(stream: LiveStream<T>): void {
    this.items.get(stream.label)?.unsubscribe();
    const state = el('span', { class: 'state' });
    const item = this.items.get(stream.label)?.item ?? el('li', { class: 'stream', 'data-stream': stream.label.toLowerCase() });
    item.replaceChildren(el('span', { class: 'dot', 'aria-hidden': 'true' }), el('span', { class: 'name' }, stream.label), ' ', state);
    const unsubscribe = stream.onState((current, detail) => {
      item.dataset.state = current;
      setText(state, WORDS[current]);
      item.title = detail ? `${stream.label}: ${WORDS[current]} (${detail})` : `${stream.label}: ${WORDS[current]}`;
    });
    if (!item.isConnected) this.list.append(item);
    this.items.set(stream.label, { item, unsubscribe });
  }

  clear(): void {
    for (const { unsubscribe } of this.items.values()) unsubscribe();
    this.items.clear();
    this.list.replaceChildren();
  }
}
