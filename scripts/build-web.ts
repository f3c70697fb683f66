/**
 * `npm run build:web`, after `tsc -b web/tsconfig.json --force` has compiled web/src/ into
 * web/dist/ and shared/ into web/dist/shared/ (web/tsconfig.shared.json; `--force` because a
 * removed web/dist/ would otherwise leave shared/ counted as built): copies the dashboard's browser
 * libraries from node_modules into web/vendor/, where Harper serves them at /vendor/. Nothing is
 * fetched from a CDN, so the dashboard works offline. web/vendor/ and web/dist/ are build output
 * (gitignored).
 */
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, whether this runs from scripts/ or dist/scripts/. */
const here = dirname(fileURLToPath(import.meta.url));
const root = basename(resolve(here, '..')) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');

const VENDOR = [
  'node_modules/uplot/dist/uPlot.iife.min.js',
  'node_modules/uplot/dist/uPlot.min.css',
  'node_modules/mqtt/dist/mqtt.min.js',
];

const target = join(root, 'web', 'vendor');
mkdirSync(target, { recursive: true });
for (const file of VENDOR) {
  const source = join(root, file);
  if (!existsSync(source)) {
    console.error(`build:web: ${file} is missing; run npm install`);
    process.exit(1);
  }
  copyFileSync(source, join(target, basename(file)));
}

for (const compiled of ['app.js', 'shared/codes.js']) {
  if (!existsSync(join(root, 'web', 'dist', compiled))) {
    console.error(`build:web: web/dist/${compiled} is missing; run tsc -b web/tsconfig.json --force first`);
    process.exit(1);
  }
}
const kib = (path: string) => `${(statSync(path).size / 1024).toFixed(0)} KiB`;
console.log(
  `build:web: web/dist/ compiled, web/vendor/ has ${VENDOR.map((file) => `${basename(file)} (${kib(join(target, basename(file)))})`).join(', ')}`,
);
