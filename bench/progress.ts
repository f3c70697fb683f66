/** The benchmark's console output: one progress line on a terminal, and lines that stay. */
const tty = process.stderr.isTTY;
export function progress(text: string): void {
  if (tty) process.stderr.write(`\r\x1b[K${text}`);
}
export function say(text: string): void {
  if (tty) process.stderr.write('\r\x1b[K');
  process.stderr.write(text + '\n');
}
