// lezer.test.mjs: conformance of the LogQL corpus (corpus.txt) against Grafana's Lezer grammar
// (@grafana/lezer-logql 0.4.2). A tree with an error node counts as invalid. Every query must get
// the corpus verdict unless it is listed in divergences.txt, and every listed query must really
// diverge. Run with: node --test tests/logql/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parser } from '@grafana/lezer-logql';

const here = dirname(fileURLToPath(import.meta.url));

function readCorpus() {
  const out = [];
  for (const line of readFileSync(join(here, 'corpus.txt'), 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split('\t');
    assert.ok(parts[0] === 'OK' || parts[0] === 'ERR', `bad corpus line: ${line}`);
    out.push({ verdict: parts[0], query: parts[1] ?? '' });
  }
  return out;
}

function readDivergences() {
  const set = new Set();
  for (const line of readFileSync(join(here, 'divergences.txt'), 'utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    set.add(line);
  }
  return set;
}

function lezerVerdict(query) {
  const tree = parser.parse(query);
  let bad = false;
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) bad = true;
    },
  });
  return bad ? 'ERR' : 'OK';
}

const corpus = readCorpus();
const divergences = readDivergences();

test('corpus is large enough', () => {
  assert.ok(corpus.length >= 300, `only ${corpus.length} queries`);
});

test('lezer agrees with the corpus except for listed divergences', () => {
  const problems = [];
  for (const { verdict, query } of corpus) {
    const got = lezerVerdict(query);
    if (divergences.has(query)) {
      if (got === verdict) problems.push(`listed as divergent but lezer agrees (${verdict}): ${query}`);
    } else if (got !== verdict) {
      problems.push(`corpus ${verdict}, lezer ${got}: ${query}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('every divergence is a corpus query', () => {
  const queries = new Set(corpus.map((c) => c.query));
  const stale = [...divergences].filter((d) => !queries.has(d));
  assert.deepEqual(stale, []);
});
