/**
 * The README and bench/README.md name files and link to sections; each must exist. A path is
 * checked when it starts at a name tracked at the top of the repository (`lib/...`,
 * `config.yaml`); paths git ignores (build output, benchmark results) and paths with placeholders
 * (`<id>`, `…`) are not files of the repository and are skipped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCUMENTS = ['README.md', 'bench/README.md'];

const git = (...args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
const tracked = git('ls-files').split('\n').filter(Boolean);
const topLevel = new Set(tracked.map((file) => file.split('/')[0]));

/** Which of `paths` git ignores (generated output: web/dist/, bench/results/, ...), in one call. */
function ignoredOf(paths: string[]): Set<string> {
  if (paths.length === 0) return new Set();
  try {
    const out = execFileSync('git', ['check-ignore', '--no-index', '--stdin'], {
      cwd: root,
      encoding: 'utf8',
      input: paths.join('\n'),
    });
    return new Set(out.split('\n').filter(Boolean));
  } catch (error) {
    if ((error as { status?: number }).status === 1) return new Set(); // none ignored
    throw error;
  }
}

/** The text outside fenced code blocks, line by line with line numbers. */
function proseLines(text: string): [number, string][] {
  let fenced = false;
  const out: [number, string][] = [];
  text.split('\n').forEach((line, index) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    else if (!fenced) out.push([index + 1, line]);
  });
  return out;
}

/** GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, line] of proseLines(readFileSync(join(root, file), 'utf8'))) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = anchorOf(heading[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** What `document` refers to that does not exist, one line per problem. */
function brokenReferences(document: string): string[] {
  const problems: string[] = [];
  const paths: [string, string][] = [];
  const text = readFileSync(join(root, document), 'utf8');
  for (const [number, line] of proseLines(text)) {
    const where = `${document}:${number}`;
    for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path === '' ? document : relative(root, resolve(root, dirname(document), path));
      if (!existsSync(join(root, file))) problems.push(`${where}: link to ${target}: no file ${file}`);
      else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(file).has(anchor))
        problems.push(`${where}: link to ${target}: no section #${anchor} in ${file}`);
    }
    for (const [, code] of line.matchAll(/`([^`\s]+)`/g)) {
      const path = code.replace(/[.,:;]$/, '');
      if (!/^[\w.-]+(\/[\w.-]*)*$/.test(path) || !/[/.]/.test(path)) continue; // not a path, or has placeholders
      if (!topLevel.has(path.split('/')[0]) || (!path.includes('/') && !tracked.includes(path))) continue;
      paths.push([where, path]);
    }
  }
  const generated = ignoredOf(paths.map(([, path]) => path));
  for (const [where, path] of paths) {
    if (!generated.has(path) && !existsSync(join(root, path))) problems.push(`${where}: \`${path}\` does not exist`);
  }
  return problems;
}

describe('documentation references', () => {
  it('computes anchors as GitHub does', () => {
    expect(anchorOf('Two nodes on this machine: `npm run cluster`')).toBe('two-nodes-on-this-machine-npm-run-cluster');
    expect(anchorOf('History, replay and alerts')).toBe('history-replay-and-alerts');
  });

  it('finds a missing file and a missing section', () => {
    const anchors = anchorsOf('README.md');
    expect(anchors.has('run-it')).toBe(true);
    expect(anchors.has('no-such-section')).toBe(false);
    expect(existsSync(join(root, 'lib/no-such-file.ts'))).toBe(false);
  });

  it.each(DOCUMENTS)('%s names only files and sections that exist', (document) => {
    expect(brokenReferences(document)).toEqual([]);
  });
});
