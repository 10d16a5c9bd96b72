// The UI files never hand data to an HTML parser, and load nothing from
// outside (no CDN: the appliance may have no internet).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const UI = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

test('no HTML sinks in the UI scripts', () => {
  const sinks = /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser|eval|new Function)\b/;
  for (const f of files(UI).filter((p) => p.endsWith('.js'))) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      assert.doesNotMatch(line, sinks, `${f}:${i + 1}: ${line.trim()}`);
    });
  }
});

test('nothing is loaded from another host, no inline script or style', () => {
  for (const f of files(UI).filter((p) => /\.(html|js|css)$/.test(p))) {
    const text = readFileSync(f, 'utf8');
    assert.doesNotMatch(text, /(src|href)\s*=\s*["']?(https?:)?\/\//i, `${f} loads from another host`);
    assert.doesNotMatch(text, /@import\s+url\(\s*["']?https?:/i, `${f} imports remote CSS`);
    if (f.endsWith('.html')) {
      assert.doesNotMatch(text, /<script(?![^>]*\bsrc=)[^>]*>/i, `${f} has an inline script`);
      assert.doesNotMatch(text, /<style|\sstyle=|\son[a-z]+=/i, `${f} has inline style or handlers`);
    }
  }
});
