import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

/** Every Markdown file at the top of the repository and in docs/. */
const MARKDOWN = [
  ...readdirSync(ROOT).filter((f) => f.endsWith('.md')),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** A target with a scheme (https:, mailto:) or only an anchor is not a file of this repository. */
const NOT_A_FILE = /^(?:[a-z][a-z0-9+.-]*:|#)/i;

/** Inline links and images `[text](target "title")` and reference definitions `[id]: target`, outside fenced code. */
function linkTargets(text: string): string[] {
  const prose = text.replace(/^(```|~~~)[^]*?^\1/gm, '');
  const inline = [...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const defined = [...prose.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!);
  return [...inline, ...defined];
}

/** Where a relative path written in `file` leads, or why it is wrong. */
function problem(file: string, target: string): string | null {
  const path = decodeURI(target.replace(/[#?].*$/, ''));
  if (path === '') return null;
  const to = path.startsWith('/') ? join(ROOT, path) : resolve(ROOT, dirname(file), path);
  const inside = relative(ROOT, to);
  if (inside === '..' || inside.startsWith(`..${sep}`)) return `${target} leaves the repository`;
  if (!existsSync(to)) return `${target}: no such file in the repository (${inside})`;
  return null;
}

describe('Markdown links stay inside the repository and lead to files that exist', () => {
  it('finds the Markdown files', () => {
    expect(MARKDOWN).toEqual(expect.arrayContaining(['README.md', 'docs/security.md']));
  });

  it.each(MARKDOWN)('%s: every relative link resolves to a file of the repository', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const problems = linkTargets(text)
      .filter((t) => !NOT_A_FILE.test(t))
      .map((t) => problem(file, t))
      .filter((p) => p !== null);
    expect(problems).toEqual([]);
  });

  it.each(MARKDOWN)('%s: no path in the text climbs out of the repository (e.g. ../shared/...)', (file) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const climbs = [...text.matchAll(/(?<![\w.])(?:\.\.\/)+[\w.-][\w./-]*/g)].map((m) => m[0]);
    expect(climbs.filter((p) => problem(file, p)?.endsWith('leaves the repository'))).toEqual([]);
  });

  it('catches what it is meant to catch', () => {
    expect(linkTargets('see [a](docs/x.md#y), ![i](img.png "t") and\n[ref]: ../shared/notes.md\n```\n[no](in-code.md)\n```\n')).toEqual(['docs/x.md#y', 'img.png', '../shared/notes.md']);
    expect(problem('README.md', '../shared/notes.md')).toMatch(/leaves the repository/);
    expect(problem('docs/a.md', '../README.md')).toBeNull();
    expect(problem('docs/a.md', 'missing.md')).toMatch(/no such file/);
  });
});
