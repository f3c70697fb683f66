/** The header's connection list: one entry per live connection, its state in words and colour. */
import { el, setText } from './dom.js';
import type { Transport, TransportState } from './transport/transport.js';

/** Every transport state in words, here and in the protocol panel's lanes. */
export const STATE_WORDS: Record<TransportState, string> = {
  idle: 'idle',
  connecting: 'connecting',
  waiting: 'no events yet',
  live: 'live',
  reconnecting: 'reconnecting',
  'signed-out': 'signed out',
  'needs-password': 'needs password',
  denied: 'denied',
  stopped: 'stopped',
};

export class StatusBar {
  private items = new Map<string, { item: HTMLLIElement; unsubscribe: () => void }>();

  constructor(private readonly list: HTMLUListElement) {}

  /** Shows a connection under its label, replacing an earlier one of the same label. */
  track(stream: Transport): void {
    this.items.get(stream.label)?.unsubscribe();
    const state = el('span', { class: 'state' });
    const item =
      this.items.get(stream.label)?.item ?? el('li', { class: 'stream', 'data-stream': stream.label.toLowerCase() });
    item.replaceChildren(
      el('span', { class: 'dot', 'aria-hidden': 'true' }),
      el('span', { class: 'name' }, stream.label),
      ' ',
      state,
    );
    const unsubscribe = stream.onState((current, detail) => {
      item.dataset.state = current;
      setText(state, STATE_WORDS[current]);
      item.title = detail
        ? `${stream.label}: ${STATE_WORDS[current]} (${detail})`
        : `${stream.label}: ${STATE_WORDS[current]}`;
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
